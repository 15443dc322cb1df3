"""Benchmark: one feature definition through three front ends over the same DuckDB engine.

    pip install 'ibis-framework[duckdb]' sqlframe        # measured here, not custseg dependencies
    python benchmarks/bench_frontends.py                 # 1M customers / ~10M transactions
    python benchmarks/bench_frontends.py --customers 2000

The issue named three ways to write the features once and run them on an embedded engine and on
Spark: narwhals (custseg's choice), Ibis and SQLFrame. narwhals runs on Ibis tables and SQLFrame
DataFrames too, so each contender here runs custseg's own definitions (`features.definitions`)
unchanged; only the front end that turns them into a DuckDB query differs. Each reads the same
clean Parquet file in a fresh process (three rounds, interleaved), builds the full feature table
(43 features) as an Arrow table sorted by customer, and prints the median wall time and the
largest peak RSS; the tables are checked equal. The "keyed" rows partition the gap window by a
64-bit hash of the customer id, as custseg does on DuckDB (`features.definitions.KEY`).
"""

from __future__ import annotations

import time
from pathlib import Path

import harness
from bench_features import AS_OF, prepare


def _load() -> None:
    """Import custseg's feature modules before the clock starts, in every phase alike."""
    import features.build  # noqa: F401


def _build(lf, out: Path, name: str, t0: float) -> dict:
    """custseg's feature query on a narwhals LazyFrame of the clean log (with `day`)."""
    from features import definitions
    from features.build import as_day, top_categories
    from features.definitions import KEY, FeatureConfig
    from features.engines import code_categories, collect_sorted, prepare_scanned

    cfg, day = FeatureConfig(), as_day(AS_OF)
    tx = prepare_scanned(lf, day)
    tx, codes = code_categories(tx, top_categories(tx, day, cfg.top_categories))
    table = collect_sorted(definitions.customer_features(tx, cfg, codes, None))
    seconds = time.perf_counter() - t0
    table = table.drop_columns([KEY]) if KEY in table.column_names else table
    if not (out / f"{name}.parquet").exists():  # the first round keeps its table to compare
        import pyarrow.parquet as pq

        pq.write_table(table, out / f"{name}.parquet")
    return {"total_s": seconds, "rows": table.num_rows, "cols": table.num_columns}


def narwhals_duckdb(out: Path) -> dict:
    import narwhals  # noqa: F401

    from features.build import scan_clean
    from features.engines import duckdb_connection

    duckdb_connection()
    t0 = time.perf_counter()
    return _build(scan_clean(out / "tx.parquet", "transactions", "duckdb"), out, "narwhals", t0)


def ibis_duckdb(out: Path, keyed: bool) -> dict:
    try:
        import ibis
    except ImportError:
        return {"skipped": "pip install 'ibis-framework[duckdb]'"}
    import narwhals as nw

    _load()
    con = ibis.duckdb.connect()
    t0 = time.perf_counter()
    t = con.read_parquet(out / "tx.parquet")
    t = t.mutate(day=t.order_date.date().epoch_days().cast("int32"))
    if keyed:
        t = t.mutate(customer_key=t.customer_id.hash())
    return _build(nw.from_native(t), out, "ibis_keyed" if keyed else "ibis", t0)


def sqlframe_duckdb(out: Path, keyed: bool) -> dict:
    try:
        from sqlframe.duckdb import DuckDBSession
        from sqlframe.duckdb import functions as F
    except ImportError:
        return {"skipped": "pip install sqlframe"}
    import narwhals as nw

    _load()
    session = DuckDBSession()
    t0 = time.perf_counter()
    df = session.read.parquet(str(out / "tx.parquet"))
    df = df.withColumn("day", F.datediff(F.col("order_date"), F.lit("1970-01-01")).cast("int"))
    if keyed:  # DuckDB's hash is unsigned; SQLFrame's schema reader has no UBIGINT
        df = df.withColumn("customer_key", (F.hash("customer_id") % F.lit(2**62)).cast("bigint"))
    return _build(nw.from_native(df), out, "sqlframe_keyed" if keyed else "sqlframe", t0)


PHASES = {
    "narwhals": narwhals_duckdb,
    "ibis": lambda out: ibis_duckdb(out, keyed=False),
    "ibis_keyed": lambda out: ibis_duckdb(out, keyed=True),
    "sqlframe": lambda out: sqlframe_duckdb(out, keyed=False),
    "sqlframe_keyed": lambda out: sqlframe_duckdb(out, keyed=True),
}
LABELS = {
    "narwhals": "narwhals -> DuckDB relation, keyed (custseg)",
    "ibis": "narwhals -> Ibis (DuckDB backend)",
    "ibis_keyed": "narwhals -> Ibis (DuckDB backend), keyed",
    "sqlframe": "narwhals -> SQLFrame (DuckDB session)",
    "sqlframe_keyed": "narwhals -> SQLFrame (DuckDB session), keyed",
}


def _same_tables(out: Path, names: list[str]) -> str:
    import pandas as pd

    tables = {n: pd.read_parquet(out / f"{n}.parquet") for n in names}
    want = tables.pop("narwhals")
    for name, got in tables.items():
        try:
            pd.testing.assert_frame_equal(got[want.columns], want, rtol=1e-9, check_dtype=False)
        except AssertionError as exc:
            raise SystemExit(f"{name} differs from narwhals -> DuckDB: {exc}") from None
    return f"equal tables: narwhals = {', '.join(tables) or '(nothing else ran)'}"


def main() -> None:
    phases = {k: (lambda out, f=f: f(out)) for k, f in PHASES.items()}
    phases["compare"] = lambda out: {
        "equal": _same_tables(
            out, [p.stem for p in out.glob("*.parquet") if p.stem not in ("tx", "compare")]
        )
    }
    ran = harness.main(__file__, __doc__, prepare, phases, 1_000_000, rounds=3)
    if ran is None:
        return
    customers, res = ran
    print(
        f"custseg front-end benchmark: {customers:,} customers, "
        f"{res['prepare']['transactions']:,} clean transactions, as of {AS_OF}; "
        f"medians of {len(res['narwhals']['rounds'])} rounds, one DuckDB engine"
    )
    base = res["narwhals"]["total_s"]
    for key, label in LABELS.items():
        r = res[key]
        if "skipped" in r:
            print(f"  {label:46} not run: {r['skipped']}")
            continue
        print(
            f"  {label:46} {r['total_s']:6.2f} s  ({r['total_s'] / base:4.2f}x)"
            f"  {r['peak_rss_mb']:7,.0f} MB"
        )
    print(f"  {res['compare']['equal']}")


if __name__ == "__main__":
    main()
