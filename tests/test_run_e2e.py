"""The main job end to end, as `make run` runs it: a real subprocess, a real MLflow SQLite store."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import pytest


@pytest.mark.slow
def test_custseg_run_cleans_sample_data_and_tracks_it_in_mlflow(tmp_path):
    home, out = tmp_path / "home", tmp_path / "out"
    env = {**os.environ, "CUSTSEG_HOME": str(home)}
    env.pop("MLFLOW_TRACKING_URI", None)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "custseg",
            "run",
            "--sample-customers",
            "1500",
            "--out",
            str(out),
            "--as-of",
            "2026-03-31",
            "--trials",
            "4",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    for name in (
        "transactions.parquet",
        "customers.parquet",
        "id_map.parquet",
        "changes.parquet",
        "audit.json",
        "audit.html",
        "features.parquet",
        "segments.parquet",
        "profiles.csv",
    ):
        assert (out / name).stat().st_size > 0, name
    audit = json.loads((out / "audit.json").read_text())
    assert all(t["balanced"] for t in audit["tables"].values())
    assert audit["config"]["reference_date"] == "2026-03-31"  # cleaning is as of the cutoff
    assert audit["tables"]["transactions"]["rows_after_as_of"] > 0

    from features.snapshot import read_snapshot

    features, meta = read_snapshot(out / "features.parquet")
    assert meta["as_of"] == "2026-03-31" and len(features) > 1000
    assert features["recency_days"].min() >= 0

    import mlflow
    from mlflow import MlflowClient

    uri = f"sqlite:///{home / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    runs = mlflow.search_runs(experiment_names=["custseg"], output_format="list")
    main = [r for r in runs if r.data.tags.get("custseg.stage") == "run"]
    assert len(main) == 1
    run = main[0]
    schemes = {
        r.data.tags["custseg.scheme"]
        for r in runs
        if r.data.tags.get("custseg.stage") == "segmentation"
        and r.data.tags["mlflow.parentRunId"] == run.info.run_id
    }
    segments = pd.read_parquet(out / "segments.parquet")
    assert {f"segment_{s}" for s in schemes} == set(segments.columns) - {"customer_id"}
    assert len(schemes) == 6 and len(segments) == len(features)
    assert (
        run.data.metrics["transactions.input_rows"] == audit["tables"]["transactions"]["input_rows"]
    )
    assert run.data.metrics["customers.duplicate_customer.drop"] > 0
    assert run.data.params["cleaning.extreme_factor"] == "10.0"
    assert run.data.params["features.definition_hash"] == meta["definition_hash"]
    assert run.data.metrics["features.customers"] == len(features)
    artifacts = {a.path for a in MlflowClient(uri).list_artifacts(run.info.run_id, "cleaning")}
    assert artifacts == {"cleaning/audit.json", "cleaning/audit.html"}
    assert str(home) in run.info.artifact_uri  # the project's store, not the current directory
