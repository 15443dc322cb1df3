"""Benchmark: how close the feature table can come to hand-written RFM on DuckDB.

    python benchmarks/bench_feature_floor.py                  # 1M customers / ~13M transactions
    python benchmarks/bench_feature_floor.py --customers 300000
    python benchmarks/bench_feature_floor.py --transactions clean/transactions.parquet --copies 40

On the clean transactions of `bench_features.py` (same generator or clean log), each in
its own process, rounds interleaved: the full table as custseg builds it from Parquet; its one
DuckDB query alone (the SQL narwhals writes from `features.definitions`); the same SQL with the
inter-purchase gap window replaced by a constant and without the final sort by customer id (the
values are then wrong: a floor, not a product path); and hand-written core RFM in Polars and
DuckDB. The floor's ratio adds what the table costs outside its query (top categories, pandas
conversion), so it is the best ratio the definitions could reach if the window and the sort
cost nothing.
"""

from __future__ import annotations

import time
from pathlib import Path

import bench_features
import harness

# the gap window and the final sort as narwhals 2 writes them for DuckDB (checked: a change of
# either makes the floor phase fail rather than time the wrong query)
GAP_WINDOW = 'lag("day") over (partition by "customer_key" order by "day" asc nulls first )'
FINAL_SORT = 'ORDER BY "customer_id" NULLS FIRST'


def product_sql(path: Path) -> str:
    """The DuckDB SQL of `build_features_from_parquet(path, as_of)`, built by the same calls."""
    import narwhals as nw

    from features import build, definitions

    cfg = definitions.FeatureConfig()
    day = build.as_day(bench_features.as_of(path))
    scanned = build.scan_clean(path, "transactions", "duckdb")
    tx, share, tag_codes, _, tags, _ = build.scanned_plan(scanned, day, cfg, None)
    query = definitions.customer_features(tx, cfg, share, None, tags, tag_codes)
    return nw.to_native(query.sort("customer_id")).sql_query()


def floor_sql(sql: str) -> str:
    for pattern in (GAP_WINDOW, FINAL_SORT):
        if sql.count(pattern) != 1:
            raise SystemExit(f"the query no longer has {pattern!r} once: update this benchmark")
    return sql.replace(GAP_WINDOW, '"day"').replace(FINAL_SORT, "")


def _timed_sql(path: Path, floor: bool) -> dict:
    from features.engines import duckdb_connection

    sql = product_sql(path)
    sql = floor_sql(sql) if floor else sql
    con = duckdb_connection()
    t0 = time.perf_counter()
    rows = con.sql(sql).to_arrow_table().num_rows
    t1 = time.perf_counter()
    return {"total_s": t1 - t0, "compute_s": t1 - t0, "rows": rows}


PHASES = {
    "full_parquet": bench_features.full_parquet,
    "query": lambda path: _timed_sql(path, floor=False),
    "floor": lambda path: _timed_sql(path, floor=True),
    "polars": bench_features.rfm_polars,
    "duckdb": bench_features.rfm_duckdb,
}
LABELS = {
    "full_parquet": bench_features.LABELS["full_parquet"],
    "query": "    its DuckDB query alone",
    "floor": "    that query, no gap window, no sort",
    **{k: bench_features.LABELS[k] for k in ("polars", "duckdb")},
}


def main() -> None:
    phases = harness.on_transactions(PHASES)
    ran = harness.main(
        __file__, __doc__, bench_features.prepare, phases, 1_000_000, rounds=3, clean_log=True
    )
    if ran is None:
        return
    customers, res = ran
    print(
        f"custseg feature floor: {customers:,} customers, "
        f"{res['prepare']['transactions']:,} clean transactions, as of {res['prepare']['as_of']}; "
        f"medians of {len(res['query']['rounds'])} rounds"
    )
    for key, label in LABELS.items():
        print(f"  {label:42} {res[key]['total_s']:6.2f} s")
    best = min(res["polars"]["total_s"], res["duckdb"]["total_s"])
    outside = res["full_parquet"]["total_s"] - res["query"]["total_s"]
    print(
        f"  (a) / fastest (b): {res['full_parquet']['total_s'] / best:.2f}x;  "
        f"without the window and the sort (floor + {outside:.2f} s outside the query): "
        f"{(res['floor']['total_s'] + outside) / best:.2f}x"
    )


if __name__ == "__main__":
    main()
