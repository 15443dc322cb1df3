"""`pip install .` in a fresh venv, without the lock, gives a working custseg: pyproject.toml
declares every library the code imports. (`make install` uses the lock; users of the package
do not.)"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("core", "features", "training", "serving", "monitoring", "custseg")


def _sh(args: list, env: dict, cwd: Path, timeout: int) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(a) for a in args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.slow
def test_pip_install_in_a_fresh_venv_gives_a_working_custseg(tmp_path):
    src = tmp_path / "src"  # a copy: an in-tree build would leave build/ in the checkout
    for pkg in SOURCES:
        shutil.copytree(ROOT / pkg, src / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    for f in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / f, src / f)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))}
    env.pop("MLFLOW_TRACKING_URI", None)
    env |= {"CUSTSEG_HOME": str(tmp_path / "home"), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    venv = tmp_path / "v"
    proc = _sh([sys.executable, "-m", "venv", venv], env, tmp_path, 120)
    assert proc.returncode == 0, proc.stderr
    proc = _sh([venv / "bin/pip", "install", "--quiet", src], env, tmp_path, 1500)
    assert proc.returncode == 0, proc.stderr[-3000:]

    custseg = venv / "bin/custseg"
    proc = _sh([custseg, "sample", "--customers", "800", "--out", "data"], env, tmp_path, 300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    tx, cust = tmp_path / "data/transactions.csv", tmp_path / "data/customers.csv"
    args = ["run", "-t", tx, "-c", cust, "--as-of", "2026-03-31", "--trials", "2", "-o", "out"]
    proc = _sh([custseg, *args], env, tmp_path, 900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    for name in ("scores.csv", "report.html", "features.parquet", "audit.html"):
        assert (tmp_path / "out" / name).stat().st_size > 0, name
    assert (tmp_path / "home" / "mlflow.db").exists()  # tracked in the state folder

    # Spark is an extra: without it, a clear line instead of a traceback
    args = ["features", "-t", tx, "--engine", "spark", "-o", "f.parquet"]
    proc = _sh([custseg, *args], env, tmp_path, 300)
    assert proc.returncode == 2 and "custseg[spark]" in proc.stderr, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
