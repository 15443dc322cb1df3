"""Team mode against the real parts: PostgreSQL and an MLflow tracking server started here
(custseg.team, free ports, a temporary folder), two projects' `custseg run` at the same time on
them, `custseg serve` answering /predict from the server's champions, and two Optuna workers
adding trials to one study in PostgreSQL."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest

from custseg import team
from custseg.process import running
from tests.conftest import free_port, run_cli, serve_env


def _postgres_missing() -> str | None:
    try:
        team.pg_bin()
    except team.TeamError as exc:
        return str(exc)
    return None


pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(_postgres_missing() is not None, reason=str(_postgres_missing())),
]
SIZES = {"alpha": 600, "beta": 800}  # two projects, two data sets


@pytest.fixture(scope="module")
def servers():
    """PostgreSQL + MLflow server for the module, stopped and removed at the end. Not under
    pytest's tmp folder: as root PostgreSQL runs as `postgres`, who cannot enter it (0700)."""
    folder = Path(tempfile.mkdtemp(prefix="custseg-team-"))
    folder.chmod(0o755)
    started = time.monotonic()
    try:
        t = team.up(folder)
        print(f"team up: {time.monotonic() - started:.1f} s")
        yield t
    finally:
        team.down(folder)
        shutil.rmtree(folder, ignore_errors=True)


def job(home: Path, *args: str, **env: str) -> subprocess.Popen:
    """`custseg ARGS` started as a process of its own (a colleague's shell), with its own state
    folder and no tracking URI but the one given. One OpenMP thread: two LightGBM processes
    with a thread per core each spin-wait for one another on 2 cores (166 s instead of 108 s
    for two `custseg train` at once, measured on a loaded machine)."""
    full = {**os.environ, "CUSTSEG_HOME": str(home), "OMP_NUM_THREADS": "1", **env}
    if "MLFLOW_TRACKING_URI" not in env:
        full.pop("MLFLOW_TRACKING_URI", None)
    return subprocess.Popen(
        [sys.executable, "-m", "custseg", *args],
        env=full,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen, timeout: int = 600) -> str:
    _, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-3000:]
    assert "Traceback" not in err
    return err


@pytest.fixture(scope="module")
def projects(servers, tmp_path_factory):
    """`custseg run` of two projects on two data sets at the same time, each from its own
    state folder: one names the server with --tracking-uri, the other with
    MLFLOW_TRACKING_URI; both keep their Optuna studies in PostgreSQL."""
    root = tmp_path_factory.mktemp("projects")
    procs = {}
    for name, customers in SIZES.items():
        home = root / name
        args = ["run", "--project", name, "--sample-customers", str(customers), "--trials", "2"]
        args += ["--out", str(home / "out"), "--study-storage", servers.study_storage]
        if name == "alpha":
            procs[name] = job(home, *args, "--tracking-uri", servers.tracking_uri)
        else:
            procs[name] = job(home, *args, MLFLOW_TRACKING_URI=servers.tracking_uri)
    for p in procs.values():
        finish(p)
    return {name: root / name for name in SIZES}


def test_two_projects_at_once_do_not_interfere(servers, projects):
    """Each project's runs in its own experiment, its own registered models and model set; the
    runs overlapped in time; nothing went to a local store; each project's tuning had a study
    of its own (its data's), with its own trials only."""
    import mlflow
    import optuna

    client = mlflow.MlflowClient(servers.tracking_uri)
    runs = {}
    for name, home in projects.items():
        assert not (home / "mlflow.db").exists() and not (home / "mlartifacts").exists()
        exp = client.get_experiment_by_name(name)
        assert exp is not None and exp.artifact_location.startswith("mlflow-artifacts:")
        every = client.search_runs([exp.experiment_id])
        top = [r for r in every if "mlflow.parentRunId" not in r.data.tags]
        top = [r for r in top if r.info.run_name.startswith("run ")]  # not a monitoring run
        assert len(top) == 1, [r.info.run_name for r in top]
        assert {r.data.tags.get("custseg.project") for r in top} == {name}
        runs[name] = top[0].info
        served = client.get_model_version_by_alias(f"{name}-model-set", "champion")
        members = [k.removeprefix("member/") for k in served.tags if k.startswith("member/")]
        assert members and all(m.startswith(f"{name}-") for m in members), members
        scores = pd.read_csv(home / "out" / "scores.csv")
        assert abs(len(scores) - SIZES[name]) < 0.1 * SIZES[name]
    a, b = runs["alpha"], runs["beta"]
    assert a.start_time < b.end_time and b.start_time < a.end_time  # at the same time
    names = {m.name for m in client.search_registered_models()}
    assert {f"{p}-model-set" for p in SIZES} <= names
    assert all(n.split("-")[0] in SIZES for n in names), names

    studies = [
        s
        for s in optuna.get_all_study_summaries(servers.study_storage)
        if s.study_name.startswith("custseg-")  # the default prefix
    ]
    assert len(studies) == 4, [s.study_name for s in studies]  # 2 targets x 2 data sets
    for s in studies:
        assert s.n_trials == 2, s.study_name  # two trials each: nobody joined the other's


def test_serve_answers_from_the_servers_champions(servers, projects):
    """`custseg serve --tracking-uri` loads alpha's model set from the MLflow server (registry
    and artifacts) and answers /predict with the numbers of alpha's own `custseg run`."""
    from tests.test_serving_http import call, same_probabilities

    home = projects["alpha"]
    out = home / "out"
    scores = pd.read_csv(out / "scores.csv", dtype={"customer_id": str}).set_index("customer_id")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    args = ["serve", "--port", str(port), "--tracking-uri", servers.tracking_uri]
    with running([*args, "--project", "alpha"], serve_env(home), base + "/readyz", home / "s.log"):
        status, meta = call(base, "/metadata", key=None)
        assert status == 200
        assert {m["name"] for m in meta["models"]} >= {"alpha-segmenter-rfm_rules", "alpha-value"}
        assert all(m["name"].startswith("alpha-") for m in meta["models"])
        cols = [f["name"] for f in meta["features"]]
        table = pd.read_parquet(out / "features.parquet")
        rows = json.loads(table[["customer_id", *cols]].head(8).to_json(orient="records"))
        status, body = call(base, "/predict", {"customers": rows}, key=None)
        assert status == 200, body
        for c in body["customers"]:
            expected = scores.loc[c["customer_id"]]
            same_probabilities(base, c, expected, 1e-6)
            assert c["segments"]["rfm_rules"]["id"] == expected["segment_rfm_rules"]
            assert c["clv"] == pytest.approx(expected["clv"], abs=1e-6)


def test_monitor_reads_the_champions_reference_from_the_server(servers, projects):
    """`custseg monitor --tracking-uri` finds beta's served reference (the features logged by
    beta's run, an artifact on the server) and logs its own run to beta's experiment."""
    import mlflow

    home = projects["beta"]
    data = home / "sample"
    proc = job(
        home, "monitor", "--project", "beta", "-t", str(data / "transactions.csv"),
        "-c", str(data / "customers.csv"), "--tracking-uri", servers.tracking_uri,
        "--out", str(home / "monitoring"),
    )  # fmt: skip
    _, err = proc.communicate(timeout=600)
    assert proc.returncode in (0, 1), err[-3000:]  # 1: unhealthy, not an error
    summary = json.loads((home / "monitoring" / "summary.json").read_text())
    client = mlflow.MlflowClient(servers.tracking_uri)
    exp = client.get_experiment_by_name("beta")
    every = client.search_runs([exp.experiment_id])
    runs = {r.info.run_name.split()[0]: r for r in every if "mlflow.parentRunId" not in r.data.tags}
    assert summary["reference_run"] == runs["run"].info.run_id
    assert runs["monitor"].data.tags["custseg.project"] == "beta"


def test_two_workers_share_one_study_in_postgres(servers, tmp_path):
    """Two `custseg train` processes on the same log and study name join one Optuna study per
    target in PostgreSQL: 3 trials from each, numbered 0-5 without a gap or a repeat."""
    import optuna

    from custseg.sample import SampleConfig, generate, write

    files = write(generate(SampleConfig(customers=400, seed=11)), tmp_path / "data")
    args = ["train", "-t", str(files["transactions"]), "--no-track", "--trials", "3"]
    args += ["--study-storage", servers.study_storage, "--study-name", "shared"]
    workers = [job(tmp_path / f"w{i}", *args, "--out", str(tmp_path / f"out{i}")) for i in (0, 1)]
    for w in workers:
        finish(w)
    names = [
        s.study_name
        for s in optuna.get_all_study_summaries(servers.study_storage)
        if s.study_name.startswith("shared-")
    ]
    assert len(names) == 2, names  # one per target
    for name in names:
        trials = optuna.load_study(study_name=name, storage=servers.study_storage).trials
        assert sorted(t.number for t in trials) == list(range(6)), name
        assert len({tuple(sorted(t.params.items())) for t in trials}) == 6, name


def test_team_commands_print_the_uris_and_refuse_a_taken_port(servers, capsys, tmp_path):
    folder = Path(servers.dir)
    code, out, err = run_cli(["team", "status", "--dir", str(folder)], capsys)
    assert code == 0, err
    assert f"export MLFLOW_TRACKING_URI={servers.tracking_uri}" in out
    assert servers.study_storage in out
    code, out, _ = run_cli(["team", "up", "--dir", str(folder)], capsys)  # already up: a no-op
    assert code == 0 and servers.tracking_uri in out

    code, out, err = run_cli(
        ["team", "up", "--dir", str(tmp_path / "t"), "--pg-port", str(servers.pg_port)], capsys
    )
    assert code == 2 and err.strip() == (
        f"custseg: error: port {servers.pg_port} is in use: pick another --pg-port, or leave it out"
    )
    code, out, _ = run_cli(["team", "status", "--dir", str(tmp_path / "none")], capsys)
    assert code == 1 and "never started" in out


def test_a_server_that_is_down_is_one_line_in_seconds(capsys):
    """Any command reading MLflow (here `segment compare`, which has no job around it) says in
    seconds that the server cannot be reached, instead of a traceback after minutes of
    retries."""
    uri = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    code, _, err = run_cli(["segment", "compare", "--tracking-uri", uri], capsys)
    assert code == 2 and err.strip() == (
        f"custseg: error: MLflow tracking URI {uri}: cannot reach it (Connection refused)"
    )
    assert time.monotonic() - started < 60
