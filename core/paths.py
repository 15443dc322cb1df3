"""Where custseg keeps its local state, so runs never depend on the current directory.

`CUSTSEG_HOME` wins; otherwise `.custseg/` at the repository root when running from a source
checkout (what `make run` uses), else `~/.custseg`.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def home() -> Path:
    """The state folder (created on first use)."""
    env = os.environ.get("CUSTSEG_HOME")
    if env:
        path = Path(env)
    elif (REPO_ROOT / "pyproject.toml").exists():
        path = REPO_ROOT / ".custseg"
    else:
        path = Path.home() / ".custseg"
    path.mkdir(parents=True, exist_ok=True)
    return path


def tracking_uri() -> str:
    """MLflow tracking URI: MLFLOW_TRACKING_URI if set, else a SQLite store in the state folder."""
    from core.catalog import MLFLOW_DB

    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{home() / MLFLOW_DB}"


def artifact_root() -> str:
    """Where MLflow puts artifacts for experiments this project creates."""
    from core.catalog import MLFLOW_ARTIFACTS

    return (home() / MLFLOW_ARTIFACTS).as_uri()
