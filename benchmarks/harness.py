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
from pathlib import Path


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


def main(script: str, doc: str, prepare, phases: dict, default_customers: int, rounds: int = 1):
    """The shared command line of a phased benchmark. Inside a phase process: run that phase
    (`prepare(dir, customers)` or `phases[name](dir)`), print its JSON line and return None.
    Otherwise: run prepare and every phase, each in a fresh process, and return
    (customers, results by phase)."""
    ap = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--customers", type=int, default=default_customers)
    ap.add_argument(
        "--rounds",
        type=int,
        default=rounds,
        help=f"run the phases this many times, interleaved; figures are medians (default {rounds})",
    )
    ap.add_argument("--phase", help=argparse.SUPPRESS)
    ap.add_argument("--dir", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.phase:
        from pathlib import Path

        out = Path(args.dir)
        result = (
            prepare(out, args.customers) if args.phase == "prepare" else phases[args.phase](out)
        )
        print(json.dumps({**result, "peak_rss_mb": peak_rss_mb()}))
        return None
    return args.customers, run_phases(
        script,
        ["prepare", *phases],
        ["--customers", str(args.customers)],
        rounds=max(1, args.rounds),
        setup=1,
    )


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
