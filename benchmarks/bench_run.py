"""Benchmark: the main job, `custseg run`, on 100k customers / ~1M transactions.

    python benchmarks/bench_run.py                      # 100k customers, default settings
    python benchmarks/bench_run.py --customers 25000 --trials 5

Generates the sample (not timed), runs the main job (`training.pipeline.run`, what `custseg run`
calls) in a fresh process with its own state folder (MLflow on SQLite, everything logged and
registered) and prints the wall time of every stage, as the job reports it, and the job's peak
RSS.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from harness import print_stages, timed_job


def job(transactions: str, customers: str, out: str, trials: str) -> None:
    """The child process: the main job as a function, as `custseg run` calls it."""
    from dataclasses import replace

    from training import pipeline

    configs = pipeline.Configs()
    if int(trials):
        configs = replace(configs, prediction=replace(configs.prediction, trials=int(trials)))
    inputs = pipeline.Inputs(Path(transactions), Path(customers))
    pipeline.run(inputs, Path(out), configs=configs, trials=int(trials) or None)


def main() -> None:
    if sys.argv[1:2] == ["--job"]:
        return job(*sys.argv[2:6])
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--customers", type=int, default=100_000)
    ap.add_argument("--orders-scale", type=float, default=1.25, help="about 10 orders a customer")
    ap.add_argument("--trials", type=int, default=None, help="default: the job's default (20)")
    args = ap.parse_args()
    from custseg.sample import SampleConfig, generate, write

    with tempfile.TemporaryDirectory(prefix="custseg-bench-run-") as tmp:
        tmp = Path(tmp)
        files = write(
            generate(
                SampleConfig(customers=args.customers, seed=5, orders_scale=args.orders_scale)
            ),
            tmp / "data",
        )
        with open(files["transactions"], "rb") as f:
            rows = sum(1 for _ in f) - 1
        cmd = [sys.executable, __file__, "--job", str(files["transactions"])]
        cmd += [str(files["customers"]), str(tmp / "out"), str(args.trials or 0)]
        stderr, wall, peak = timed_job(cmd, tmp / "home")
    print(
        f"custseg run: {args.customers:,} customers, {rows:,} transaction rows "
        f"(trials {args.trials or 'default'})"
    )
    print_stages(stderr, wall, peak)


if __name__ == "__main__":
    main()
