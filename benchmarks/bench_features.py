"""Benchmark: the full feature table vs hand-written core RFM in Polars, DuckDB and pandas.

    python benchmarks/bench_features.py                  # 1M customers / ~13M transactions
    python benchmarks/bench_features.py --customers 100000
    python benchmarks/bench_features.py --transactions clean/transactions.parquet --copies 40

`--transactions` takes a clean log (`custseg clean --out clean/`, e.g. of Online Retail) instead
of a generated one, as of the day after its last order; `--copies K` repeats it K times with
suffixed customer and order ids: a real log's shape (order lines, cancellations) at scale.

Prepares clean transactions once (generate + clean, not timed), then runs each contender in its
own process on the same Parquet file, three rounds interleaved (--rounds), and prints the median
wall time (read + compute, and compute alone) and the largest peak RSS. (a) runs on the default
engine (DuckDB), and once more on Polars for comparison.
Also times the online path: features for 3 customers from their raw orders.
"""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path

import harness

AS_OF = date(2026, 6, 30)  # the generated log's; a clean log given (--transactions): its own


def as_of(path: Path) -> date:
    """The day the features are built as of: the generated log's AS_OF, or the one a clean
    log's preparation recorded beside it (`harness.clean_copies`: the day after its last order)."""
    recorded = path.parent / harness.AS_OF_FILE
    return date.fromisoformat(recorded.read_text().strip()) if recorded.exists() else AS_OF


def prepare(out: Path, customers: int) -> dict:
    from custseg.sample import SampleConfig, generate
    from features.cleaning import CleaningConfig, clean
    from features.contract import TRANSACTIONS, type_table

    data = generate(SampleConfig(customers=customers, seed=3, orders_scale=1.25))
    t = type_table(data["transactions"], TRANSACTIONS)
    result = clean(t, None, CleaningConfig(reference_date=AS_OF))
    cols = ["customer_id", "order_date", "amount", "is_refund", "channel", "category"]
    result.transactions[cols].to_parquet(out / harness.TX_FILE, index=False)
    return {"transactions": len(result.transactions), "as_of": str(AS_OF)}


def _engine_loaded(engine: str) -> None:
    """Import and connect the engine before the clock starts, as the hand-written (b) do."""
    from features.engines import duckdb_connection

    if engine == "duckdb":
        duckdb_connection()
    elif engine == "polars":
        import polars  # noqa: F401


def full(path: Path) -> dict:
    import pandas as pd

    from features.build import build_features
    from features.engines import DEFAULT_ENGINE

    _engine_loaded(DEFAULT_ENGINE)
    t0 = time.perf_counter()
    tx = pd.read_parquet(path, dtype_backend="pyarrow")
    tx["customer_id"] = tx["customer_id"].astype("string[pyarrow]")
    t1 = time.perf_counter()
    table = build_features(tx, None, as_of(path))
    t2 = time.perf_counter()
    return {"total_s": t2 - t0, "compute_s": t2 - t1, "rows": len(table), "cols": table.shape[1]}


def full_parquet(path: Path, engine: str | None = None) -> dict:
    from features.build import build_features_from_parquet
    from features.engines import DEFAULT_ENGINE

    engine = engine or DEFAULT_ENGINE
    _engine_loaded(engine)
    t0 = time.perf_counter()
    table = build_features_from_parquet(path, as_of(path), engine=engine)
    t1 = time.perf_counter()
    return {"total_s": t1 - t0, "compute_s": t1 - t0, "rows": len(table), "cols": table.shape[1]}


def rfm_polars(path: Path) -> dict:
    import polars as pl

    day = as_of(path)
    t0 = time.perf_counter()
    tx = pl.read_parquet(path)
    t1 = time.perf_counter()
    out = (
        tx.filter(~pl.col("is_refund"))
        .group_by("customer_id")
        .agg(
            recency=(pl.lit(day) - pl.col("order_date").max().dt.date()).dt.total_days(),
            order_days=pl.col("order_date").n_unique(),
            spend=pl.col("amount").sum(),
        )
    )
    t2 = time.perf_counter()
    return {"total_s": t2 - t0, "compute_s": t2 - t1, "rows": out.height}


def rfm_duckdb(path: Path) -> dict:
    import duckdb

    con = duckdb.connect()
    day = as_of(path)
    t0 = time.perf_counter()
    con.execute(f"CREATE TABLE tx AS SELECT * FROM read_parquet('{path}')")
    t1 = time.perf_counter()
    out = con.sql(
        f"""SELECT customer_id, date_diff('day', max(order_date)::DATE, DATE '{day}') AS recency,
                   count(DISTINCT order_date) AS order_days, sum(amount) AS spend
            FROM tx WHERE NOT is_refund GROUP BY customer_id"""
    ).to_arrow_table()
    t2 = time.perf_counter()
    return {"total_s": t2 - t0, "compute_s": t2 - t1, "rows": out.num_rows}


def rfm_pandas(path: Path) -> dict:
    import pandas as pd

    day = as_of(path)
    t0 = time.perf_counter()
    tx = pd.read_parquet(path)
    t1 = time.perf_counter()
    tx = tx[~tx["is_refund"]]
    out = tx.groupby("customer_id").agg(
        last=("order_date", "max"), order_days=("order_date", "nunique"), spend=("amount", "sum")
    )
    out["recency"] = (pd.Timestamp(day) - out["last"]).dt.days
    t2 = time.perf_counter()
    return {"total_s": t2 - t0, "compute_s": t2 - t1, "rows": len(out)}


def online(path: Path) -> dict:
    import numpy as np
    import pandas as pd

    from features.definitions import FeatureConfig
    from features.online import OnlineFeatures

    day = as_of(path)
    tx = pd.read_parquet(path)
    ids = tx["customer_id"].drop_duplicates().head(3)
    few = tx[tx["customer_id"].isin(ids)].reset_index(drop=True)
    top = []  # the top categories by spend, as a served snapshot fixes them
    if "category" in tx:
        spend = tx[~tx["is_refund"]].groupby("category")["amount"].sum()
        top = sorted(spend.nlargest(FeatureConfig().top_categories).index)
    features = OnlineFeatures(top, with_customers=False)
    features(few, day)
    times = []
    for _ in range(200):
        t = time.perf_counter()
        features(few, day)
        times.append(time.perf_counter() - t)
    return {
        "p50_ms": float(np.median(times) * 1000),
        "p99_ms": float(np.percentile(times, 99) * 1000),
        "orders": len(few),
    }


PHASES = {
    "full": full,
    "full_parquet": full_parquet,
    "full_parquet_polars": lambda path: full_parquet(path, "polars"),
    "polars": rfm_polars,
    "duckdb": rfm_duckdb,
    "pandas": rfm_pandas,
    "online": online,
}
LABELS = {
    "full": "(a) full feature table, pandas in",
    "full_parquet": "(a) full feature table, Parquet in",
    "full_parquet_polars": "    same on the Polars engine",
    "polars": "(b) core RFM, hand-written Polars",
    "duckdb": "(b) core RFM, hand-written DuckDB SQL",
    "pandas": "(c) core RFM, plain pandas groupby",
}


def main() -> None:
    phases = harness.on_transactions(PHASES)
    ran = harness.main(__file__, __doc__, prepare, phases, 1_000_000, rounds=3, clean_log=True)
    if ran is None:
        return
    customers, res = ran
    rounds = len(res["full_parquet"]["rounds"])
    print(
        f"custseg feature benchmark: {customers:,} customers, "
        f"{res['prepare']['transactions']:,} clean transactions, as of {res['prepare']['as_of']}; "
        f"medians of {rounds} rounds"
    )
    print(f"  {'':42} {'read+compute':>12} {'compute':>9} {'peak RSS':>10}")
    for key, label in LABELS.items():
        r = res[key]
        times = f"{r['total_s']:10.1f} s {r['compute_s']:7.1f} s"
        print(f"  {label:42} {times} {r['peak_rss_mb']:7,.0f} MB")
    best = min(res["polars"]["total_s"], res["duckdb"]["total_s"])
    print(
        f"  (a, Parquet in) / fastest (b): {res['full_parquet']['total_s'] / best:.2f}x;  "
        f"(a, Parquet in) / (c): {res['full_parquet']['total_s'] / res['pandas']['total_s']:.2f}x"
    )
    print(
        f"  (a) / fastest (b): {res['full']['total_s'] / best:.2f}x;  (a) / (c): "
        f"{res['full']['total_s'] / res['pandas']['total_s']:.2f}x;  "
        f"{res['full']['cols'] - 1} features vs 3"
    )
    per_round = [
        a["total_s"] / min(p["total_s"], d["total_s"])
        for a, p, d in zip(
            res["full_parquet"]["rounds"],
            res["polars"]["rounds"],
            res["duckdb"]["rounds"],
            strict=True,
        )
    ]
    print(
        "  (a, Parquet in) / fastest (b), round by round: "
        + ", ".join(f"{r:.2f}x" for r in per_round)
    )
    o = res["online"]
    print(
        f"  online: 3 customers ({o['orders']} orders): "
        f"p50 {o['p50_ms']:.1f} ms, p99 {o['p99_ms']:.1f} ms"
    )


if __name__ == "__main__":
    main()
