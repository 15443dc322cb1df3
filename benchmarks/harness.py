"""Shared by the benchmark scripts: each phase runs in a fresh process so that its peak memory
is its own; a phase prints one JSON line as its last output."""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_phases(script: str, phases: list[str], extra_args: list[str]) -> dict[str, dict]:
    """Run `script --phase P --dir TMP *extra_args` for each phase, in order, sharing TMP."""
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="custseg-bench-") as tmp:
        for phase in phases:
            cmd = [sys.executable, script, "--phase", phase, "--dir", tmp, *extra_args]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                sys.exit(f"phase {phase} failed:\n{proc.stderr[-3000:]}")
            results[phase] = json.loads(proc.stdout.strip().splitlines()[-1])
    return results


def main(script: str, doc: str, prepare, phases: dict, default_customers: int):
    """The shared command line of a phased benchmark. Inside a phase process: run that phase
    (`prepare(dir, customers)` or `phases[name](dir)`), print its JSON line and return None.
    Otherwise: run prepare and every phase, each in a fresh process, and return
    (customers, results by phase)."""
    ap = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--customers", type=int, default=default_customers)
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
        script, ["prepare", *phases], ["--customers", str(args.customers)]
    )
