"""MLflow set-up shared by every stage: the project's own store, never the current directory."""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager

from core import catalog, paths


def use(experiment: str, tracking_uri: str | None = None) -> str:
    """Point MLflow at the store and experiment (created with artifacts under the state
    folder); a ConfigError when the URI is unusable. Cheap: call it before long work."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    fail_fast()
    import logging

    import mlflow
    from mlflow.exceptions import MlflowException

    logging.getLogger("mlflow").setLevel(logging.WARNING)  # not the store's migration chatter
    uri = tracking_uri or paths.tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        if mlflow.get_experiment_by_name(experiment) is None:
            _create_experiment(experiment, uri)
        mlflow.set_experiment(experiment)
    except MlflowException as exc:
        raise store_error(uri, exc) from None
    return uri


def fail_fast() -> None:
    """A tracking server that is down fails in seconds, not after minutes of retries (MLflow's
    default: 7 retries with backoff, 8 minutes for `custseg serve` to say so)."""
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")


def store_error(uri: str, exc) -> Exception:
    """One line for an MlflowException from the store at `uri`: a server that cannot be reached
    says why (connection refused, unknown host) instead of the HTTP library's retry report."""
    from core.errors import ConfigError

    message = exc.message.strip()
    reason = re.search(r"\[Errno -?\d+\] ([^\"')]+)", message)
    if reason and message.startswith("API request to"):
        message = f"cannot reach it ({reason[1].strip()})"
    return ConfigError(f"MLflow tracking URI {uri}: {message}")


def _create_experiment(experiment: str, uri: str) -> None:
    """Artifacts under the state folder for a store of this machine; a tracking server keeps
    its own (a path of this machine would mean nothing to a colleague's). Another process
    creating it at the same moment is no error."""
    import mlflow
    from mlflow.exceptions import MlflowException

    server = uri.startswith(("http://", "https://"))
    location = None if server else paths.artifact_root() + f"/{experiment}"
    try:
        mlflow.create_experiment(experiment, artifact_location=location)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise


@contextmanager
def run(experiment: str, run_name: str, tracking_uri: str | None = None) -> Iterator[object]:
    """An MLflow run in `experiment` of the project's store, tagged with the project and this
    process, so that the next start can end the runs of a killed process as KILLED."""
    import mlflow

    use(experiment, tracking_uri)
    end_killed_runs(experiment)
    with mlflow.start_run(run_name=run_name) as active:
        mlflow.set_tags(
            {
                PROJECT_TAG: catalog.project(),
                PID_TAG: str(os.getpid()),
                HOST_TAG: socket.gethostname(),
            }
        )
        yield active


PROJECT_TAG, PID_TAG, HOST_TAG = "custseg.project", "custseg.pid", "custseg.host"


def end_killed_runs(experiment: str) -> list[str]:
    """Runs left RUNNING by a process of this machine that no longer exists (killed, or the
    machine stopped) end as KILLED, their nested runs with them; returns their ids. Runs of
    live processes and of other machines are left alone."""
    import mlflow

    from core.outputs import process_alive

    exp = mlflow.get_experiment_by_name(experiment)
    if exp is None:
        return []
    running = mlflow.search_runs(
        [exp.experiment_id], filter_string="attributes.status = 'RUNNING'", output_format="list"
    )
    host = socket.gethostname()
    dead = {
        r.info.run_id
        for r in running
        if r.data.tags.get(HOST_TAG) == host
        and r.data.tags.get(PID_TAG, "").isdigit()
        and not process_alive(int(r.data.tags[PID_TAG]))
    }
    parents = {r.info.run_id: r.data.tags.get("mlflow.parentRunId") for r in running}

    def top(run_id: str | None) -> str | None:  # nested runs go up to their top-level run
        while run_id in parents and parents[run_id]:
            run_id = parents[run_id]
        return run_id

    client = mlflow.MlflowClient()
    ended = [r for r in parents if top(r) in dead]
    for run_id in ended:
        client.set_terminated(run_id, "KILLED")
    return ended


def flatten(prefix: str, value: object) -> dict[str, object]:
    """{"a": {"b": 1}} -> {"prefix.a.b": 1}, for params and metrics. Lists of tables are keyed
    by their `key` entry (or position): segments = [{key = "x", ...}] -> "segments.x.*". Keys
    keep only the characters MLflow accepts (a segment key from a scheme file may hold any)."""
    return {MLFLOW_UNSAFE.sub("_", k): v for k, v in _flatten(prefix, value).items()}


MLFLOW_UNSAFE = re.compile(r"[^\w./ :-]")  # MLflow's param and metric names: \w . / space : -


def _flatten(prefix: str, value: object) -> dict[str, object]:
    if isinstance(value, dict):
        out: dict[str, object] = {}
        for k, v in value.items():
            out.update(_flatten(f"{prefix}.{k}" if prefix else str(k), v))
        return out
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        out = {}
        for i, v in enumerate(value):
            name = v.get("key", i)
            out.update(_flatten(f"{prefix}.{name}", {k: x for k, x in v.items() if k != "key"}))
        return out
    return {prefix: value}


def pip_requirements(*packages: str) -> list[str]:
    """Pins for a logged model from the running environment (MLflow's own inference takes
    10 s a model and adds unrelated packages)."""
    from importlib.metadata import version

    return [f"{p}=={version(p)}" for p in ("custseg", "mlflow", "pandas", "numpy", *packages)]


def register_model(client, name: str, info, run_id: str, description: str, tags: dict) -> int:
    """A new version of registered model `name` for a logged model (through the client API,
    which prints nothing, unlike `mlflow.register_model`)."""
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(name, description=description)
    version = client.create_model_version(
        name, info.model_uri, run_id=run_id, model_id=info.model_id, tags=tags
    )
    return int(version.version)


def log_outputs(run_id: str, tracking_uri: str | None, files) -> None:
    """Attach files written after the run's main work (scores, report) to the finished run."""
    import mlflow

    client = mlflow.MlflowClient(tracking_uri or paths.tracking_uri())
    for f in files:
        client.log_artifact(run_id, str(f), artifact_path=catalog.RUN_OUTPUTS)


def example_rows(features, columns) -> object:
    """A few real rows of `columns` in the feature table's own types, for a model's input
    example and signature (MLflow refuses int64 data for a double column, so the signature
    must match the table; pandas extension types become float64 / object)."""
    import pandas as pd

    sample = features[list(columns)].head(3).copy()
    for c in sample.columns:
        if isinstance(sample[c].dtype, pd.api.extensions.ExtensionDtype):
            numeric = pd.api.types.is_numeric_dtype(sample[c])
            sample[c] = sample[c].astype("float64") if numeric else sample[c].astype(object)
    return sample


def output_signature(example, output):
    """A signature that declares the outputs only. custseg models check their own inputs
    (named columns, numbers, missing values) and accept ints and floats alike, which MLflow's
    input enforcement would not (int64 data for a double column is refused, and vice versa)."""
    from mlflow.models import infer_signature
    from mlflow.models.signature import ModelSignature

    return ModelSignature(inputs=None, outputs=infer_signature(example, output).outputs)
