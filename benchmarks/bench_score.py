"""Benchmark: batch scoring (`custseg score`, serving.batch.score_parquet) against the
service's in-process path (ModelSet.predict in batches of 5,000, the service's limit).

    python benchmarks/bench_score.py                       # trains a small model set (~1 min)
    python benchmarks/bench_score.py --home DIR            # the champions of a state folder
    python benchmarks/bench_score.py --customers 200000 --rounds 2 --spark
    python benchmarks/bench_score.py --real ../shared/data/online_retail.parquet --home retail/

The scored snapshot is `--customers` rows drawn with replacement from the champions' own
feature snapshot (new customer ids; 0: the snapshot as it is), so every row is a realistic
customer. `--real LOG` first trains champions on a real log (Online Retail, mapped as
benchmarks/check_real_log.py does) and scores its features. Each contender runs in a fresh
process (its peak memory is its own), rounds interleaved; figures are medians. Loading the
champions is not timed (it is the same for every path); customers/s counts reading the
snapshot, scoring and (batch paths) writing the Parquet parts. `predict` builds the per-
customer answer dicts and keeps none (a lower bound of writing them anywhere).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import peak_rss_mb, run_phases  # noqa: E402

SERVICE_BATCH = 5000  # serving.service MAX_BATCH's default


def prepare(d: Path, home: Path, source: Path, customers: int) -> dict:
    """The snapshot to score: `customers` rows of `source` drawn with replacement."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(source)
    if customers:
        rows = np.random.default_rng(0).integers(0, table.num_rows, customers)
        table = table.take(pa.array(rows))
        ids = pa.array([f"B{i:09d}" for i in range(customers)], pa.large_string())
        table = table.set_column(table.schema.get_field_index("customer_id"), "customer_id", ids)
    pq.write_table(table, d / "features.parquet", row_group_size=100_000)
    return {"customers": table.num_rows}


def phase(name: str, d: Path, home: Path) -> dict:
    os.environ["CUSTSEG_HOME"] = str(home)
    from serving.models import load_champions

    models = load_champions()
    import duckdb  # noqa: F401 - the engines' imports are loading too, not scoring
    import polars  # noqa: F401

    loaded = peak_rss_mb()
    snapshot = d / "features.parquet"
    if name == "predict":
        import pyarrow.parquet as pq

        from features.snapshot import read_snapshot
        from serving.batch import feature_frame

        start = time.perf_counter()
        as_of = date.fromisoformat(read_snapshot(snapshot)[1]["as_of"])
        rows = 0
        for batch in pq.ParquetFile(snapshot).iter_batches(SERVICE_BATCH):
            answers = models.predict(feature_frame(batch, models), as_of)
            rows += len(answers)
        seconds = time.perf_counter() - start
        extra = {}
    else:
        from serving.batch import score_parquet

        extra = {}
        if name == "spark":
            from features.engines import spark_session

            t = time.perf_counter()
            spark_session()
            extra["session_seconds"] = round(time.perf_counter() - t, 2)
        summary = score_parquet(snapshot, d / f"out-{name}", engine=name, models=models)
        rows, seconds = summary["customers"], summary["scoring_seconds"]
    return {
        "customers": rows,
        "seconds": round(seconds, 3),
        "customers_per_s": round(rows / seconds),
        "rss_after_load_mb": round(loaded),
        **extra,
    }


def train(home: Path, real: Path | None) -> None:
    """Champions in `home`: on 3,000 sample customers, or on the real log (mapped as
    check_real_log.py maps Online Retail)."""
    env = {**os.environ, "CUSTSEG_HOME": str(home)}
    env.pop("MLFLOW_TRACKING_URI", None)
    cmd = [sys.executable, "-m", "custseg", "run", "--trials", "3"]
    if real is None:
        cmd += ["--sample-customers", "3000"]
    else:
        from check_real_log import COLUMNS, COLUMNS_II, CONFIG

        config = home / "retail.toml"
        config.write_text(CONFIG)
        columns = COLUMNS_II if "_ii_" in real.name else COLUMNS
        cmd += ["-t", str(real), "--config", str(config)]
        cmd += [a for t, s in columns.items() for a in ("--column", f"{t}={s}")]
    t = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode:
        sys.exit(f"training the champions failed:\n{proc.stderr[-3000:]}")
    print(f"champions trained in {time.perf_counter() - t:.0f} s -> {home}")


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--home", type=Path, help="state folder with champions (trained there when it has none)"
    )
    ap.add_argument("--real", type=Path, help="train the champions on this real log first")
    ap.add_argument(
        "--features",
        type=Path,
        help="snapshot to draw from (default: HOME/output/features.parquet)",
    )
    ap.add_argument("--customers", type=int, default=200_000, help="rows to score (0: as is)")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--spark", action="store_true", help="also the Spark engine (local mode)")
    ap.add_argument(
        "--phases", help="comma-separated subset of predict,duckdb,polars,spark (default: all)"
    )
    ap.add_argument("--phase", help=argparse.SUPPRESS)
    ap.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--source", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.phase:
        import json

        if args.phase == "prepare":
            result = prepare(args.dir, args.home, args.source, args.customers)
        else:
            result = phase(args.phase, args.dir, args.home)
        print(json.dumps({**result, "peak_rss_mb": round(peak_rss_mb())}))
        return
    tmp = tempfile.TemporaryDirectory(prefix="custseg-bench-score-")
    home = (args.home or Path(tmp.name) / "home").resolve()
    if not (home / "mlflow.db").exists():  # no champions there yet: train them (kept)
        home.mkdir(parents=True, exist_ok=True)
        train(home, args.real)
    source = (args.features or home / "output" / "features.parquet").resolve()
    phases = ["predict", "duckdb", "polars", *(["spark"] if args.spark else [])]
    if args.phases:
        phases = [p for p in args.phases.split(",") if p]
    extra = ["--home", str(home), "--source", str(source), "--customers", str(args.customers)]
    results = run_phases(__file__, ["prepare", *phases], extra, rounds=args.rounds, setup=1)
    n = results["prepare"]["customers"]
    print(f"{n:,} customers ({'sampled from ' if args.customers else ''}{source}), "
          f"{args.rounds} round(s), medians")  # fmt: skip
    rate = {name: n / results[name]["seconds"] for name in phases}  # of the median time
    for name in phases:
        r = results[name]
        spark = (
            f"  (+ Spark session start {r['session_seconds']} s)" if "session_seconds" in r else ""
        )
        print(
            f"  {name:8} {r['seconds']:8.2f} s  {rate[name]:>9,.0f} customers/s  "
            f"x{rate[name] / rate[phases[0]]:5.1f}  peak RSS {r['peak_rss_mb']:,} MB "
            f"(models loaded: {r['rss_after_load_mb']:,} MB){spark}"
        )


if __name__ == "__main__":
    main()
