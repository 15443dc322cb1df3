"""Shared by the benchmark scripts: each phase runs in a fresh process so that its peak memory
is its own; a phase prints one JSON line as its last output."""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

TX_FILE = "tx.parquet"  # the transactions a benchmark's phases share, in its folder
AS_OF_FILE = "as_of"  # beside a clean log's TX_FILE: the day its features are built as of


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def children_peak_rss_mb() -> float:
    """The peak RSS of this process's live descendants, added up (e.g. the JVM that PySpark
    starts: RUSAGE_CHILDREN counts only children that have ended). Linux /proc; 0 elsewhere."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(stat.parent.name))
    todo, total = list(children.get(os.getpid(), [])), 0.0
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        try:
            status = (Path("/proc") / str(pid) / "status").read_text()
        except OSError:
            continue
        total += sum(int(line.split()[1]) for line in status.splitlines()
                     if line.startswith("VmHWM:")) / 1024  # fmt: skip
    return total


def run_phases(
    script: str,
    phases: list[str],
    extra_args: list[str],
    rounds: int = 1,
    setup: int = 0,
    may_fail: tuple[str, ...] = (),
) -> dict[str, dict]:
    """Run `script --phase P --dir TMP *extra_args` for each phase, in order, sharing TMP.

    The first `setup` phases run once; the others `rounds` times, interleaved (round 1 of every
    phase, then round 2, ...), so that a slow spell of a shared machine hits every contender
    alike. Each phase's figures are then the medians over its rounds, and `rounds` keeps them
    all. A phase of `may_fail` that dies (e.g. under a memory limit) gives {"skipped": why}."""
    runs: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="custseg-bench-") as tmp:
        order = phases[:setup] + phases[setup:] * rounds
        for phase in order:
            cmd = [sys.executable, script, "--phase", phase, "--dir", tmp, *extra_args]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0 and phase in may_fail:
                why = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
                runs.setdefault(phase, []).append({"skipped": f"died: {why[-300:]}"})
                continue
            if proc.returncode != 0:
                sys.exit(f"phase {phase} failed:\n{proc.stderr[-3000:]}")
            runs.setdefault(phase, []).append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return {phase: {**_medians(rs), "rounds": rs} for phase, rs in runs.items()}


def _medians(runs: list[dict]) -> dict:
    """Median of each figure over the rounds; peak memory is the largest (a bound)."""
    out = dict(runs[0])
    for k, v in runs[0].items():
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            values = [r[k] for r in runs]
            if k == "peak_rss_mb":
                out[k] = max(values)
            else:  # counts stay whole numbers
                out[k] = (
                    statistics.median_low(values)
                    if isinstance(v, int)
                    else statistics.median(values)
                )
    return out


def main(
    script: str,
    doc: str,
    prepare,
    phases: dict,
    default_customers: int,
    rounds: int = 1,
    clean_log: bool = False,
):
    """The shared command line of a phased benchmark. Inside a phase process: run that phase
    (`prepare(dir, customers)` or `phases[name](dir)`), print its JSON line and return None.
    Otherwise: run prepare and every phase, each in a fresh process, and return
    (customers, results by phase). `clean_log`: the benchmark's phases read DIR/tx.parquet, so
    `--transactions` may give a clean log to use instead of a generated one (`clean_copies`)."""
    ap = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--customers", type=int, default=default_customers)
    if clean_log:
        ap.add_argument(
            "--transactions",
            type=Path,
            help="a clean transactions Parquet (`custseg clean --out DIR`: DIR/transactions."
            "parquet, e.g. of a real log) instead of a generated log; --customers is ignored",
        )
        ap.add_argument(
            "--copies",
            type=int,
            default=1,
            help="with --transactions: that log this many times over, each copy's customer and "
            "order ids suffixed (a real log's shape at a larger scale; default 1)",
        )
    ap.add_argument(
        "--rounds",
        type=int,
        default=rounds,
        help=f"run the phases this many times, interleaved; figures are medians (default {rounds})",
    )
    ap.add_argument("--phase", help=argparse.SUPPRESS)
    ap.add_argument("--dir", help=argparse.SUPPRESS)
    args = ap.parse_args()
    source = getattr(args, "transactions", None)
    if args.phase:
        out = Path(args.dir)
        if args.phase != "prepare":
            result = phases[args.phase](out)
        elif source:
            result = clean_copies(source, args.copies, out / TX_FILE)
        else:
            result = prepare(out, args.customers)
        print(json.dumps({**result, "peak_rss_mb": peak_rss_mb()}))
        return None
    extra = ["--customers", str(args.customers)]
    if clean_log and args.copies != 1 and not source:
        sys.exit("--copies repeats a clean log: give it with --transactions")
    if source:
        if not source.is_file():
            sys.exit(f"--transactions {source}: no such file")
        extra += ["--transactions", str(source.resolve()), "--copies", str(max(1, args.copies))]
    ran = run_phases(script, ["prepare", *phases], extra, rounds=max(1, args.rounds), setup=1)
    return ran["prepare"].get("customers", args.customers), ran


def on_transactions(phases: dict) -> dict:
    """Phases that read one transactions file, as phases of the shared folder (DIR/TX_FILE:
    what `prepare` or `clean_copies` wrote)."""
    return {name: (lambda out, f=f: f(out / TX_FILE)) for name, f in phases.items()}


def clean_copies(source: Path, copies: int, target: Path) -> dict:
    """A clean transactions file as a benchmark's tx.parquet, `copies` times over: copy k's
    customer and order ids get the suffix "~k" (every copy's customers are new customers with
    the same history). One DuckDB statement, no Python loop over rows. Records the day after
    the last order as the as-of day (AS_OF_FILE)."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    rel = con.read_parquet(str(source))
    ids = [c for c in ("customer_id", "order_id") if c in rel.columns]
    if "customer_id" not in ids:
        sys.exit(f"--transactions {source}: no customer_id column (a clean log has one)")
    scan = f"read_parquet({_text(source)})"
    query = f"SELECT * FROM {scan}"
    if copies > 1:
        copy = '"__copy"'
        suffixed = ", ".join(f'CAST("{c}" AS VARCHAR) || \'~\' || {copy} AS "{c}"' for c in ids)
        query = (
            f"SELECT * EXCLUDE ({copy}) REPLACE ({suffixed}) "
            f"FROM {scan}, range({copies}) AS r({copy})"
        )
    con.execute(f"COPY ({query}) TO {_text(target)} (FORMAT parquet)")
    ((rows, customers, last),) = con.execute(
        "SELECT count(*), count(DISTINCT customer_id), max(CAST(order_date AS DATE)) "
        f"FROM read_parquet({_text(target)})"
    ).fetchall()
    as_of = last + timedelta(days=1)  # every order counts
    (target.parent / AS_OF_FILE).write_text(as_of.isoformat())
    return {"transactions": rows, "customers": customers, "as_of": as_of.isoformat()}


def _text(value) -> str:
    """A SQL string literal."""
    return "'" + str(value).replace("'", "''") + "'"


STAGE_LINE = re.compile(r"^✓ (.+?)\s+([\d.]+) s$")


def timed_job(cmd: list[str], home: Path) -> tuple[str, float, float]:
    """Run a custseg job in a fresh process with its own state folder: (its stderr, wall time,
    peak RSS in MB); exits with the job's error when it fails."""
    env = {**os.environ, "CUSTSEG_HOME": str(home), "COLUMNS": "200"}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode:
        sys.exit(f"the job failed:\n{proc.stderr[-3000:]}")
    return proc.stderr, wall, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def print_stages(stderr: str, wall: float, peak: float) -> None:
    """Each stage's time as the job printed it (`✓ stage  1.2 s`), then the total."""
    for line in stderr.splitlines():
        if m := STAGE_LINE.match(line.strip()):
            print(f"  {m.group(1):44} {float(m.group(2)):7.1f} s")
    print(f"  {'total wall time (incl. imports)':44} {wall:7.1f} s   peak RSS {peak:,.0f} MB")
