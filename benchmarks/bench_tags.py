"""Benchmark: what the dynamic tags add to the feature build.

    python benchmarks/bench_tags.py                  # 1M customers / ~10M transactions
    python benchmarks/bench_tags.py --customers 200000

The same clean transactions as bench_features (generated and cleaned once, not timed), built
from Parquet by the default engine (DuckDB) and by Polars, with the default tags and with none
(`FeatureConfig(tags=())`), each in its own process, rounds interleaved; prints the median wall
time and the time the tags add (the goal: < 50%).
"""

from __future__ import annotations

import time
from pathlib import Path

import harness
from bench_features import AS_OF, prepare


def build(path: Path, engine: str, tags: bool) -> dict:
    from features.build import build_features_from_parquet
    from features.definitions import FeatureConfig
    from features.engines import duckdb_connection

    if engine == "duckdb":
        duckdb_connection()
    cfg = FeatureConfig() if tags else FeatureConfig(tags=())
    t0 = time.perf_counter()
    table = build_features_from_parquet(path, AS_OF, cfg, engine=engine)
    t1 = time.perf_counter()
    return {"total_s": t1 - t0, "rows": len(table), "cols": table.shape[1]}


PHASES = {
    f"{engine}_{kind}": (lambda path, e=engine, t=(kind == "tags"): build(path, e, t))
    for engine in ("duckdb", "polars")
    for kind in ("tags", "none")
}


def main() -> None:
    phases = harness.on_transactions(PHASES)
    ran = harness.main(__file__, __doc__, prepare, phases, 1_000_000, rounds=3)
    if ran is None:
        return
    customers, res = ran
    print(
        f"custseg tag benchmark: {customers:,} customers, "
        f"{res['prepare']['transactions']:,} clean transactions, as of {AS_OF}; "
        f"medians of {len(res['duckdb_tags']['rounds'])} rounds, Parquet in"
    )
    for engine in ("duckdb", "polars"):
        a, b = res[f"{engine}_tags"], res[f"{engine}_none"]
        added = a["total_s"] / b["total_s"] - 1
        print(
            f"  {engine:7} without tags {b['total_s']:6.1f} s ({b['cols'] - 1} features), "
            f"with {a['cols'] - b['cols']} tags {a['total_s']:6.1f} s: {100 * added:+.0f}% "
            f"(peak RSS {b['peak_rss_mb']:,.0f} / {a['peak_rss_mb']:,.0f} MB)"
        )
        rounds = zip(a["rounds"], b["rounds"], strict=True)
        print(
            "          round by round (with / without): "
            + ", ".join(f"{x['total_s']:.1f}/{y['total_s']:.1f} s" for x, y in rounds)
        )


if __name__ == "__main__":
    main()
