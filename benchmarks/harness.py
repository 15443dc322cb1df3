"""Shared by the benchmark scripts: each phase runs in a fresh process so that its peak memory
is its own; a phase prints one JSON line as its last output."""

from __future__ import annotations

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
