"""MLflow set-up shared by every stage: the project's own store, never the current directory."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from custseg import paths


@contextmanager
def run(experiment: str, run_name: str, tracking_uri: str | None = None) -> Iterator[object]:
    """An MLflow run in `experiment` (created with artifacts under the state folder)."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    import logging

    import mlflow

    logging.getLogger("mlflow").setLevel(logging.WARNING)  # not the store's migration chatter

    mlflow.set_tracking_uri(tracking_uri or paths.tracking_uri())
    if mlflow.get_experiment_by_name(experiment) is None:
        mlflow.create_experiment(
            experiment, artifact_location=paths.artifact_root() + f"/{experiment}"
        )
    mlflow.set_experiment(experiment)
    with mlflow.start_run(run_name=run_name) as active:
        yield active


def flatten(prefix: str, value: object) -> dict[str, object]:
    """{"a": {"b": 1}} -> {"prefix.a.b": 1}, for params and metrics."""
    if isinstance(value, dict):
        out: dict[str, object] = {}
        for k, v in value.items():
            out.update(flatten(f"{prefix}.{k}" if prefix else str(k), v))
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
        client.log_artifact(run_id, str(f), artifact_path="outputs")


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
