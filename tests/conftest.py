"""Shared fixtures: an isolated state folder and PII key, and one small generated data set."""

from __future__ import annotations

import datetime
import importlib.util
import os
import shutil
import sys
from pathlib import Path

import pandas as pd
import pytest

os.environ.setdefault("CUSTSEG_PII_KEY", "test-key-not-secret")


def _spark_missing() -> str | None:
    """Why the Spark engine cannot run here, or None. CI installs both (the lock has pyspark,
    the Makefile a JRE); a plain `pip install .` has no Spark (it is the extra custseg[spark])."""
    if importlib.util.find_spec("pyspark") is None:
        return "pyspark is not installed (pip install 'custseg[spark]'; make install has it)"
    if shutil.which("java") is None and not os.environ.get("CI"):
        return "no Java here (make install / CI install one)"
    return None


needs_spark = pytest.mark.skipif(_spark_missing() is not None, reason=str(_spark_missing()))


@pytest.fixture(autouse=True)
def _state_home(tmp_path_factory, monkeypatch):
    """Every test gets a private state folder: no test touches the developer's .custseg/."""
    home = tmp_path_factory.mktemp("custseg-home")
    monkeypatch.setenv("CUSTSEG_HOME", str(home))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("CUSTSEG_PROJECT", raising=False)  # --project sets it in-process
    return home


@pytest.fixture(scope="session")
def sample_dir(tmp_path_factory) -> Path:
    """3,000 customers of generated data with ground truth, written as CSV."""
    from custseg.sample import SampleConfig, generate, write

    out = tmp_path_factory.mktemp("sample")
    write(generate(SampleConfig(customers=3000, seed=7)), out)
    return out


@pytest.fixture(scope="session")
def snapshot(sample_dir, tmp_path_factory):
    """Features of the shared sample as of 2026-06-30, written as a snapshot (read only)."""
    from features.contract import CUSTOMERS, TRANSACTIONS, read_table
    from features.pipeline import features_as_of
    from features.snapshot import write_snapshot

    table, _ = features_as_of(
        read_table(sample_dir / "transactions.csv", TRANSACTIONS),
        read_table(sample_dir / "customers.csv", CUSTOMERS),
        datetime.date(2026, 6, 30),
    )
    path = tmp_path_factory.mktemp("snap") / "features.parquet"
    write_snapshot(table, path)
    return path


@pytest.fixture(scope="session")
def cleaned(sample_dir, tmp_path_factory):
    """The sample cleaned with default settings, written out; returns (result, out_dir)."""
    from features.cleaning import CleaningConfig, clean
    from features.contract import CUSTOMERS, TRANSACTIONS, read_table

    out = tmp_path_factory.mktemp("clean")
    result = clean(
        read_table(sample_dir / "transactions.csv", TRANSACTIONS),
        read_table(sample_dir / "customers.csv", CUSTOMERS),
        CleaningConfig(),
    )
    result.write(out)
    return result, out


@pytest.fixture(scope="session")
def champions(tmp_path_factory) -> tuple[Path, Path]:
    """A state folder where `custseg run` registered champions on 1,200 sample customers (the
    served model set), and that run's output folder: (home, out). One run a session; tests
    that change the registry put it back as they found it."""
    home = tmp_path_factory.mktemp("champions-home")
    out = home / "out"
    proc = run_job(home, "run", "--sample-customers", "1200", "--trials", "3", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return home, out


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    """Run the real `custseg` entry point in-process; returns (exit code, stdout, stderr)."""
    from custseg.cli import main

    old = sys.argv
    sys.argv = ["custseg", *args]
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.argv = old
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def frame(**cols) -> pd.DataFrame:
    return pd.DataFrame(cols)


def run_job(home: Path, *args: str, timeout: int = 900):
    """`custseg ARGS` as a real subprocess with its own state folder (and no tracking URI from
    the environment): what `make run` and a user's shell do."""
    import subprocess

    env = {**os.environ, "CUSTSEG_HOME": str(home)}
    env.pop("MLFLOW_TRACKING_URI", None)
    cmd = [sys.executable, "-m", "custseg", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)


def serve_env(home: Path, **extra: str) -> dict:
    """Environment of a custseg server over `home`'s store: BentoML's files inside it, no usage
    tracking, no tracking URI from the caller's environment (unless given in `extra`)."""
    env = {
        **os.environ,
        "CUSTSEG_HOME": str(home),
        "BENTOML_HOME": str(home / "bentoml"),
        "BENTOML_DO_NOT_TRACK": "True",
    }
    env.pop("MLFLOW_TRACKING_URI", None)
    return env | extra


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
