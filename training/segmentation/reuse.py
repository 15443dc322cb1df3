"""Fits that need not be redone. A scheme whose definition (its part of the scheme file) and
data (the feature table's fingerprint) equal those of a registered fit gets that fit again:
its segments, profile and version, read back from the run that made it. Editing one threshold
then refits one scheme, not the clustering too.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from core import catalog
from training.segmentation.spec import SchemeFile, definition, definition_hash

# tags a reusing run copies from the run that made the fit
COPIED = (
    "custseg.stage",
    "custseg.scheme",
    "custseg.project",
    "custseg.kind",
    "custseg.serve",
    "custseg.model_version",
    "features.as_of",
    "features.definition_hash",
    catalog.SPEC_HASH_TAG,
    catalog.DATA_HASH_TAG,
)


@dataclass
class Reused:
    """A registered fit taken as it is (what `write` and the displays read of a fit)."""

    name: str
    kind: str
    serve: bool
    version: int
    run_id: str  # the run that made the fit (its artifacts: assignments, profile)
    definition: dict
    metrics: dict
    tags: dict
    labels: np.ndarray = field(repr=False, default=None)
    profile: pd.DataFrame = field(repr=False, default=None)


def reusable(
    experiment: str,
    scheme_file: SchemeFile,
    trials: int | None,
    features: pd.DataFrame,
    data_hash: str,
) -> dict[str, Reused]:
    """Scheme name -> its reusable fit in `experiment`, for the schemes of the file that have
    one (fits of this project only)."""
    import mlflow

    exp = mlflow.get_experiment_by_name(experiment)
    out: dict[str, Reused] = {}
    if exp is None:
        return out
    for spec in scheme_file.schemes:
        d = definition(spec, scheme_file, trials)
        run = _latest(exp.experiment_id, spec.name, definition_hash(d), data_hash)
        if run is not None:
            out[spec.name] = _load(run, spec.kind, spec.serve, d, features)
    return out


def _latest(experiment_id: str, scheme: str, spec_hash: str, data_hash: str):
    """The newest finished scheme run with this definition and data whose fit finished and
    whose segmenter version still exists, or None."""
    import mlflow
    from mlflow.exceptions import MlflowException

    client = mlflow.MlflowClient()
    runs = client.search_runs(
        [experiment_id],
        filter_string=(
            "tags.`custseg.stage` = 'segmentation' and attributes.status = 'FINISHED' and "
            f"tags.`custseg.scheme` = '{scheme}' and tags.`custseg.project` = "
            f"'{catalog.project()}' and tags.`{catalog.SPEC_HASH_TAG}` = '{spec_hash}' and "
            f"tags.`{catalog.DATA_HASH_TAG}` = '{data_hash}'"
        ),
        order_by=["attributes.start_time DESC"],
        max_results=20,
    )
    for run in runs:
        version = run.data.tags.get("custseg.model_version")
        parent = run.data.tags.get("mlflow.parentRunId")
        try:
            if parent and client.get_run(parent).info.status != "FINISHED":
                continue  # a killed fit is no fit to reuse
            if version:
                client.get_model_version(catalog.segmenter_name(scheme), version)
                return run
        except MlflowException:
            continue
    return None


def _load(run, kind: str, serve: bool, d: dict, features: pd.DataFrame) -> Reused:
    import mlflow

    source = run.data.tags.get(catalog.REUSED_TAG, run.info.run_id)
    with tempfile.TemporaryDirectory() as tmp:
        a = mlflow.artifacts.download_artifacts(
            run_id=source, artifact_path=catalog.ASSIGNMENTS, dst_path=tmp
        )
        p = mlflow.artifacts.download_artifacts(
            run_id=source, artifact_path=catalog.PROFILE_CSV, dst_path=tmp
        )
        assigned = pd.read_parquet(a)
        profile = pd.read_csv(Path(p))
    by_id = pd.Series(assigned["segment"].to_numpy(), index=assigned["customer_id"].to_numpy())
    tags = {k: run.data.tags[k] for k in COPIED if k in run.data.tags}
    return Reused(
        run.data.tags["custseg.scheme"],
        kind,
        serve,
        int(run.data.tags["custseg.model_version"]),
        source,
        d,
        dict(run.data.metrics),
        tags,
        by_id.reindex(features["customer_id"].to_numpy()).to_numpy(dtype=object),
        profile,
    )
