"""README.md runs as written: the ```bash blocks from "Using it on your data" on, and the
```python blocks marked `<!-- readme-test: run -->`, executed in order in an empty folder with a
private state folder, as a user in the repository root after `make install` would.

A block marked `<!-- readme-test: skip: REASON -->` is left out (it reads data outside the
repository, or is a benchmark). Only the substitutions in SUBSTITUTIONS and PORTS change a
command: fewer Optuna trials, free ports instead of 3000/5000. `custseg serve` runs in the
background until the end (the curl examples call it), `custseg ui` until it answers.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from custseg.process import running
from tests.conftest import free_port, serve_env

README = Path(__file__).resolve().parent.parent / "README.md"
FIRST_SECTION = "## Using it on your data"
MARK = re.compile(r"<!--\s*readme-test:\s*(run|skip)\b(.*?)-->")

SUBSTITUTIONS = {
    # the README's trials are for results, the test's for time (about 3 s per trial)
    "--trials 20": "--trials 2",
}
DROPPED = {"source .venv/bin/activate"}  # the test puts this venv's bin/ first on PATH
MAY_FAIL = {"custseg monitor": {0, 1}}  # documented: exit code 1 = unhealthy, not an error


@dataclass
class Block:
    lang: str
    code: str
    mark: str | None  # "run", "skip" or None
    line: int  # 1-based line of the opening fence


def blocks(text: str) -> list[Block]:
    """The fenced blocks from FIRST_SECTION on, with the readme-test mark just before each."""
    lines = text.splitlines()
    start = lines.index(FIRST_SECTION)
    out, i = [], start
    while i < len(lines):
        if lines[i].startswith("```"):
            lang, j = lines[i][3:].strip(), i + 1
            while not lines[j].startswith("```"):
                j += 1
            before = next((x for x in reversed(lines[start:i]) if x.strip()), "")
            mark = MARK.search(before)
            out.append(Block(lang, "\n".join(lines[i + 1 : j]), mark and mark[1], i + 1))
            i = j
        i += 1
    return out


def commands(code: str) -> list[str]:
    """A bash block's commands, one per entry: continued lines (trailing \\, open quotes)
    joined; comment-only lines dropped."""
    out, buf = [], ""
    for line in code.splitlines():
        if not buf and (not line.strip() or line.lstrip().startswith("#")):
            continue
        buf += line + "\n"
        if line.endswith("\\"):
            continue
        try:
            shlex.split(buf, comments=True)
        except ValueError:  # an open quote: the command goes on
            continue
        out.append(buf.strip())
        buf = ""
    assert not buf, f"unfinished command: {buf}"
    return out


def substituted(cmd: str, ports: dict[str, str]) -> str:
    for old, new in {**SUBSTITUTIONS, **ports}.items():
        cmd = cmd.replace(old, new)
    return cmd


def test_readme_blocks_are_found():
    """The parser sees the commands the README shows (a broken fence would hide them)."""
    found = blocks(README.read_text("utf-8"))
    bash = [c for b in found if b.lang == "bash" and b.mark != "skip" for c in commands(b.code)]
    assert bash[0] == "source .venv/bin/activate"
    assert any(c.startswith("custseg serve") for c in bash)
    assert any(c.startswith("curl -s localhost:3000/predict") for c in bash)
    assert sum(b.lang == "python" and b.mark == "run" for b in found) == 2
    assert all(b.mark != "run" or b.lang == "python" for b in found)


def test_readme_feature_counts():
    """Counts the README states that the feature registry determines."""
    from custseg.sample import CATEGORIES
    from features import registry
    from features.definitions import DEFAULT_TAGS
    from monitoring.measure import NOT_FEATURES

    text = README.read_text("utf-8")
    behaviour = len(registry.CORE) + len(CATEGORIES)  # the sample has fewer than 10 categories
    table = behaviour + len(registry.ATTRIBUTES)  # with a customer table
    named = {f.name for f in (*registry.CORE, *registry.ATTRIBUTES)}
    drift = table - len((NOT_FEATURES - {"customer_id", "as_of"}) & named)  # of the table's
    tagged = len(DEFAULT_TAGS)  # the sample has a channel and categories: every default tag
    # the feature benchmark (no customers) computes the default tags; the monitoring one was
    # measured before them
    table_columns = f"({behaviour + tagged} columns: {behaviour} features and {tagged} default"
    assert f"full feature table {table_columns} dynamic tags)" in " ".join(text.split())
    assert re.search(rf"\b\d+ of {drift} features drifted", text)
    assert f"{table + tagged} features with a customer table, {behaviour + tagged} without" in text


def group_size(pgid: int) -> int:
    """Processes in a process group (what `custseg ui` costs)."""
    count = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[3]) == pgid:
                count += 1
    return count


def check_curl(out: str, text: str) -> None:
    """An answer of the service: an error is shown verbatim in the README, else it scored."""
    answer = json.loads(out)
    if "error" in answer:
        assert out.strip() in text, f"README does not show this answer: {out}"
    else:
        assert answer["customers"] and answer["customers"][0]["segments"], out


@pytest.mark.slow
def test_readme_runs_as_written(tmp_path, _state_home):
    text = README.read_text("utf-8")
    work = tmp_path / "work"
    work.mkdir()
    port, ui_port = free_port(), free_port()
    ports = {
        "--port 3000": f"--port {port}",
        "localhost:3000": f"localhost:{port}",
        "custseg ui": f"custseg ui --port {ui_port}",
    }
    env = serve_env(_state_home)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(README.parent), env.get("PYTHONPATH")]))
    timings: list[tuple[float, str]] = []
    with contextlib.ExitStack() as servers:
        for block in blocks(text):
            if block.lang == "python" and block.mark == "run":
                todo = [("python", block.code)]
            elif block.lang == "bash" and block.mark != "skip":
                todo = [("bash", c) for c in commands(block.code) if c not in DROPPED]
            else:
                continue
            for kind, code in todo:
                started = time.monotonic()
                cmd = substituted(code, ports)
                args = shlex.split(cmd, comments=True)
                if kind == "bash" and args[:2] == ["custseg", "serve"]:
                    ready = f"http://127.0.0.1:{port}/readyz"
                    servers.enter_context(running(args[1:], env, ready, tmp_path / "serve.log"))
                elif kind == "bash" and args[:2] == ["custseg", "ui"]:
                    health = f"http://127.0.0.1:{ui_port}/health"
                    with running(args[1:], env, health, tmp_path / "ui.log") as ui:
                        assert group_size(ui.pid) <= 3  # sized for the machine (was 13)
                else:
                    argv = [sys.executable, "-c", cmd] if kind == "python" else ["bash", "-c", cmd]
                    proc = subprocess.run(
                        argv, cwd=work, env=env, capture_output=True, text=True, timeout=600
                    )
                    ok = next((v for k, v in MAY_FAIL.items() if cmd.startswith(k)), {0})
                    assert proc.returncode in ok, (
                        f"README line {block.line}: {cmd}\n{proc.stdout[-2000:]}\n"
                        f"{proc.stderr[-3000:]}"
                    )
                    if args[0] == "curl":
                        check_curl(proc.stdout, text)
                timings.append((time.monotonic() - started, cmd.splitlines()[0][:70]))
    for seconds, cmd in timings:
        print(f"{seconds:6.1f} s  {cmd}")
    # the state went to the state folder, nothing of MLflow's to the working directory
    assert not {"mlflow.db", "mlruns", ".custseg"} & {p.name for p in work.iterdir()}
    assert (_state_home / "mlflow.db").exists()
