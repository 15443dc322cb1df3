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
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STAGE = re.compile(r"^✓ (.+?)\s+([\d.]+) s$")


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
        env = {**os.environ, "CUSTSEG_HOME": str(tmp / "home"), "COLUMNS": "200"}
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if proc.returncode:
            sys.exit(f"custseg run failed:\n{proc.stderr[-3000:]}")
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(
        f"custseg run: {args.customers:,} customers, {rows:,} transaction rows "
        f"(trials {args.trials or 'default'})"
    )
    for line in proc.stderr.splitlines():
        m = STAGE.match(line.strip())
        if m:
            print(f"  {m.group(1):44} {float(m.group(2)):7.1f} s")
    print(f"  {'total wall time (incl. imports)':44} {wall:7.1f} s   peak RSS {peak:,.0f} MB")


if __name__ == "__main__":
    main()
