"""Log fitted schemes to MLflow (`history` reads them back for compare and diff).

Layout: one child run per scheme under the caller's active run (the main job's run or a
`segment` run), with params, metrics, the profile table, plots and the segmenter model; Optuna
trials of a clustering scheme are grandchild runs. Each segmenter is registered as
`custseg-segmenter-<scheme>`; the caller promotes (`core.registry.publish`). A reused fit (same
definition, same data) is a child run pointing at the run that made it.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from core import catalog
from core.catalog import REFERENCE_DIR, REFERENCE_FILE, REFERENCE_TAG, segmenter_name
from core.outputs import csv_text
from core.tracking import (
    example_rows,
    flatten,
    output_signature,
    pip_requirements,
    register_model,
)
from training.segmentation import quality
from training.segmentation.base import FittedScheme, Strategy
from training.segmentation.model import SegmenterModel
from training.segmentation.profile import rounded

TREE_LEAVES = "tree/leaves.csv"  # per leaf of the served tree: rule, customers, outcome, 95% CI
TREE_HELDOUT = "tree/heldout_leaves.csv"  # per leaf of the tree measured on the held-out window
REFERENCE_ROWS = 200_000  # a seeded sample beyond this: drift and health sample anyway


def log_reference(features: pd.DataFrame) -> str:
    """Log the feature snapshot the schemes are fitted on to the active run (the monitoring
    reference: drift and segment health compare new data with it); returns the run id."""
    import tempfile

    import mlflow

    from features.snapshot import write_snapshot

    table = features
    if len(table) > REFERENCE_ROWS:
        table = table.sample(REFERENCE_ROWS, random_state=0).sort_index()
        table.attrs = features.attrs
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / REFERENCE_FILE
        write_snapshot(table, path, sampled_from=len(features))
        mlflow.log_artifact(str(path), REFERENCE_DIR)
    return mlflow.active_run().info.run_id


def log_scheme(
    scheme: FittedScheme,
    features: pd.DataFrame,
    strategies: dict[str, Strategy],
    snapshot: dict,
    register: bool = True,
    promote: bool = True,
    reference_run: str | None = None,
    data_hash: str | None = None,
) -> dict:
    """One nested run for `scheme`; returns {run_id, model_uri, version, champion}."""
    import matplotlib.pyplot as plt
    import mlflow

    from features.snapshot import fingerprint
    from training.segmentation import plots
    from training.segmentation.spec import definition_hash

    spec_hash = definition_hash(scheme.definition)

    with mlflow.start_run(run_name=scheme.name, nested=True) as run:
        mlflow.set_tags(
            {
                "custseg.stage": "segmentation",
                "custseg.scheme": scheme.name,
                "custseg.project": catalog.project(),
                "custseg.kind": scheme.kind,
                "custseg.serve": str(scheme.serve).lower(),
                "features.as_of": str(snapshot.get("as_of")),
                "features.definition_hash": str(snapshot.get("definition_hash")),
                "mlflow.note.content": scheme.description,
                catalog.SPEC_HASH_TAG: spec_hash,
                catalog.DATA_HASH_TAG: data_hash or fingerprint(features),
                **({REFERENCE_TAG: reference_run} if reference_run else {}),
            }
        )
        params = flatten("", {k: v for k, v in scheme.params.items()})
        mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
        mlflow.log_metrics({k: v for k, v in scheme.metrics.items() if math.isfinite(v)})
        mlflow.log_table(scheme.profile, catalog.PROFILE_TABLE)
        mlflow.log_text(csv_text(rounded(scheme.profile), index=False), catalog.PROFILE_CSV)
        mlflow.log_dict(scheme.definition, catalog.SCHEME_DEFINITION)
        _log_assignments(features["customer_id"], scheme.labels)
        rows = quality.eval_rows(len(features), 3000, 0)
        for name, fig in plots.figures(scheme, features, rows).items():
            mlflow.log_figure(fig, f"{catalog.PLOTS}/{name}")
            plt.close(fig)
        if scheme.kind == "clustering":
            mlflow.log_text(csv_text(scheme.extras["trials"], index=False), catalog.TUNING_TRIALS)
            mlflow.log_text(csv_text(scheme.extras["elbow"], index=False), catalog.TUNING_ELBOW)
            _log_trials(scheme.extras["trials"])
        if scheme.kind == "tree":
            for key, path in (("leaves", TREE_LEAVES), ("heldout_leaves", TREE_HELDOUT)):
                if key in scheme.extras:
                    mlflow.log_text(csv_text(scheme.extras[key], index=False), path)
            if "trials" in scheme.extras:
                mlflow.log_text(
                    csv_text(scheme.extras["trials"], index=False), catalog.TUNING_TRIALS
                )
        example = example_rows(features, scheme.assigner.columns)
        model = SegmenterModel(scheme, strategies, snapshot)
        info = mlflow.pyfunc.log_model(
            name="segmenter",
            python_model=model,
            signature=output_signature(example, model.predict(None, example)),
            input_example=example,
            pip_requirements=pip_requirements("scikit-learn"),
            metadata={"scheme": scheme.name, "kind": scheme.kind, **model.snapshot},
        )
        out = {
            "run_id": run.info.run_id,
            "model_uri": info.model_uri,
            "version": None,
            "champion": False,
        }
        if register:
            client = mlflow.MlflowClient()
            out["version"] = register_model(
                client,
                segmenter_name(scheme.name),
                info,
                run.info.run_id,
                description=f"custseg segmenter for scheme {scheme.name}",
                tags={"scheme": scheme.name, "kind": scheme.kind, catalog.SPEC_HASH_TAG: spec_hash},
            )
            # to be served: the caller promotes the whole set at once (core.registry.publish)
            out["champion"] = promote and scheme.serve
            mlflow.set_tag("custseg.model_version", str(out["version"]))
    return out


def log_reused(reused, promote: bool) -> dict:
    """A nested run for a scheme whose earlier fit is reused (same definition, same data): its
    tags and metrics, pointing at the run that made the fit; returns what `log_scheme` does."""
    import mlflow

    with mlflow.start_run(run_name=f"{reused.name} (reused v{reused.version})", nested=True) as run:
        mlflow.set_tags(reused.tags | {catalog.REUSED_TAG: reused.run_id})
        mlflow.log_metrics({k: v for k, v in reused.metrics.items() if math.isfinite(v)})
        mlflow.log_dict(reused.definition, catalog.SCHEME_DEFINITION)
    return {
        "run_id": run.info.run_id,
        "model_uri": f"models:/{segmenter_name(reused.name)}/{reused.version}",
        "version": reused.version,
        "champion": promote and reused.serve,
        "reused": True,
    }


def _log_assignments(customers: pd.Series, labels) -> None:
    """customer_id -> segment as Parquet: `segment diff` crosstabs two fits' customers."""
    import tempfile

    import mlflow

    table = pd.DataFrame({"customer_id": customers.to_numpy(), "segment": labels})
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / catalog.ASSIGNMENTS
        table.to_parquet(path, index=False)
        mlflow.log_artifact(str(path))


def _log_trials(trials: pd.DataFrame) -> None:
    """Each Optuna trial as a grandchild run: its parameters and scores."""
    import mlflow

    params = [c for c in ("subset", "scaling", "family", "k") if c in trials]
    for row in trials.to_dict("records"):
        with mlflow.start_run(run_name=f"trial-{row['trial']}", nested=True):
            mlflow.set_tag("custseg.stage", "tuning")
            mlflow.log_params({p: row[p] for p in params})
            mlflow.log_metrics(
                {
                    k: float(v)
                    for k, v in row.items()
                    if k not in params and isinstance(v, int | float) and math.isfinite(v)
                }
            )
