"""A model set is promoted as one: registered first, served in one step at the end. A run
killed at any point leaves the previous set served and the outputs as they were; its MLflow
runs end as KILLED at the next start, and the next run succeeds. Projects keep data sets apart."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import mlflow
import pytest

from core import catalog, paths
from core.registry import publish, served
from core.tracking import end_killed_runs
from tests.conftest import run_job


def _client():
    from core.tracking import use

    use(catalog.EXPERIMENT)  # this test's store and experiment (MLflow keeps both globally)
    return mlflow.MlflowClient()


def _versions(client, run_id: str, *names: str) -> dict[str, str]:
    """A new registered version of each model name (the source does not matter here)."""
    out = {}
    for name in names:
        try:
            client.get_registered_model(name)
        except mlflow.exceptions.MlflowException:
            client.create_registered_model(name)
        source = f"runs:/{run_id}/m"
        out[name] = client.create_model_version(name, source, run_id=run_id).version
    return {k: str(v) for k, v in out.items()}


def test_publish_serves_a_set_in_one_step_and_never_mixes_definitions(monkeypatch):
    client = _client()
    with mlflow.start_run() as run:
        pass
    run_id = run.info.run_id
    seg, rep = catalog.segmenter_name("rfm"), catalog.predictor_name("repurchase")
    assert served(client) == {}
    first = _versions(client, run_id, seg, rep)
    version, dropped = publish(client, first, run_id, "hash-a")
    assert version == "1" and dropped == [] and served(client) == first
    assert str(client.get_model_version_by_alias(seg, catalog.CHAMPION).version) == "1"

    second = _versions(client, run_id, seg)  # a new segmenter; the predictor stays served
    assert publish(client, second, run_id, "hash-a") == ("2", [])
    assert served(client) == {seg: "2", rep: "1"}
    assert publish(client, {}, run_id, "hash-a") == (None, [])  # nothing promoted: no change

    # another data set's features: the old members are not mixed with the new one
    third = _versions(client, run_id, rep)
    version, dropped = publish(client, third, run_id, "hash-b")
    assert version == "3" and dropped == [seg] and served(client) == {rep: "2"}

    monkeypatch.setenv(catalog.PROJECT_ENV, "shop2")  # another project: its own set
    assert catalog.segmenter_name("rfm") == "shop2-segmenter-rfm" and served(client) == {}
    mine = _versions(client, run_id, catalog.segmenter_name("rfm"))
    publish(client, mine, run_id, "hash-z")
    monkeypatch.delenv(catalog.PROJECT_ENV)
    assert served(client) == {rep: "2"}


def test_a_bad_project_name_is_a_clear_error(sample_dir, capsys):
    from tests.conftest import run_cli

    code, _, err = run_cli(
        ["train", "-t", str(sample_dir / "transactions.csv"), "--project", "../x"], capsys
    )
    assert code == 2 and "--project '../x': letters, digits" in err and "Traceback" not in err


KILLED_RUN = """
import sys, time
from core import tracking
with tracking.run("custseg", "run"):
    import mlflow
    with mlflow.start_run(run_name="child", nested=True):
        print("ready", flush=True)
        time.sleep(600)
"""


def test_runs_of_a_killed_process_end_as_killed_at_the_next_start():
    env = {**os.environ, "CUSTSEG_HOME": str(paths.home())}
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_RUN], env=env, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "ready"
    _client()
    live = mlflow.search_runs(experiment_names=["custseg"], output_format="list")
    assert end_killed_runs("custseg") == []  # alive: left alone
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert sorted(end_killed_runs("custseg")) == sorted(r.info.run_id for r in live)
    after = mlflow.search_runs(experiment_names=["custseg"], output_format="list")
    assert {r.info.status for r in after} == {"KILLED"}


STAGES = (  # a line the job prints, and what has happened by then
    "✓ behaviour_clusters: tuning + fit",  # schemes fitted, nothing logged
    "✓ logging schemes to MLflow",  # segmenters registered, predictors not
    "✓ logging repurchase model to MLflow",  # almost everything registered, nothing promoted
)


@pytest.mark.slow
def test_a_run_killed_at_any_stage_leaves_the_previous_set_served(sample_dir, tmp_path):
    home, out = tmp_path / "home", tmp_path / "out"
    data = ["-t", str(sample_dir / "transactions.csv"), "-c", str(sample_dir / "customers.csv")]
    job = ["run", *data, "--out", str(out), "--trials", "2"]
    proc = run_job(home, *job, "--as-of", "2026-02-28")
    assert proc.returncode == 0, proc.stderr[-3000:]
    os.environ["CUSTSEG_HOME"] = str(home)  # the fixture's private home, pointed at this store
    client = _client()
    before = served(client)
    assert len(before) >= 6  # segmenters of the served schemes and the predictors that won
    files = {p.name: p.read_bytes() for p in out.iterdir()}

    env = {**os.environ, "CUSTSEG_HOME": str(home)}
    env.pop("MLFLOW_TRACKING_URI", None)
    for marker in STAGES:
        child = subprocess.Popen(
            [sys.executable, "-m", "custseg", *job, "--as-of", "2026-03-31"],
            env=env,
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
        )
        deadline = time.monotonic() + 600
        for line in child.stderr:
            if line.startswith(marker) or time.monotonic() > deadline:
                break
        child.send_signal(signal.SIGKILL)
        child.wait()
        assert line.startswith(marker), f"the run ended before {marker!r}"
        assert served(client) == before, marker  # the service would still answer with these
        assert {p.name: p.read_bytes() for p in out.iterdir()} == files, marker
    compare = run_job(home, "segment", "compare")  # a killed fit is no fit to compare
    assert compare.returncode == 0 and "as of 2026-02-28" in compare.stdout, compare.stdout[:500]

    proc = run_job(home, *job, "--as-of", "2026-03-31")
    assert proc.returncode == 0, proc.stderr[-3000:]
    now = served(client)
    assert now != before and "served now: custseg-model-set v2" in proc.stderr
    runs = mlflow.search_runs(experiment_names=["custseg"], output_format="list")
    statuses = {r.info.status for r in runs if "mlflow.parentRunId" not in r.data.tags}
    assert statuses == {"FINISHED", "KILLED"}  # no run left RUNNING
    killed = [
        r for r in runs if r.info.status == "KILLED" and "mlflow.parentRunId" not in r.data.tags
    ]
    assert len(killed) == 2  # the first kill came before the job's MLflow run started
    assert (out / "scores.csv").read_bytes() != files["scores.csv"]
    assert not list(tmp_path.glob(".out.partial-*"))
