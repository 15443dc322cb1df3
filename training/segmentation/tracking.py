"""Log fitted schemes to MLflow and read them back for `custseg segment compare`.

Layout: one child run per scheme under the caller's active run (the main job's run or a
`segment` run), with params, metrics, the profile table, plots and the segmenter model; Optuna
trials of a clustering scheme are grandchild runs. Each segmenter is registered as
`custseg-segmenter-<scheme>`; schemes with `serve = true` get the alias `champion`.
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

COMPARE_METRICS = (
    ("segments", "segs"),
    ("largest_share", "largest"),
    ("smallest_share", "smallest"),
    ("revenue_top_share", "top rev"),
    ("revenue_hhi", "rev HHI"),
    ("rfm_silhouette", "RFM silh"),
    ("silhouette", "own silh"),
    ("stability_ari", "stability"),
)


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
) -> dict:
    """One nested run for `scheme`; returns {run_id, model_uri, version, champion}."""
    import matplotlib.pyplot as plt
    import mlflow

    from training.segmentation import plots

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
                **({REFERENCE_TAG: reference_run} if reference_run else {}),
            }
        )
        params = flatten("", {k: v for k, v in scheme.params.items()})
        mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
        mlflow.log_metrics({k: v for k, v in scheme.metrics.items() if math.isfinite(v)})
        mlflow.log_table(scheme.profile, catalog.PROFILE_TABLE)
        mlflow.log_text(csv_text(rounded(scheme.profile), index=False), catalog.PROFILE_CSV)
        rows = quality.eval_rows(len(features), 3000, 0)
        for name, fig in plots.figures(scheme, features, rows).items():
            mlflow.log_figure(fig, f"{catalog.PLOTS}/{name}")
            plt.close(fig)
        if scheme.kind == "clustering":
            mlflow.log_text(csv_text(scheme.extras["trials"], index=False), catalog.TUNING_TRIALS)
            mlflow.log_text(csv_text(scheme.extras["elbow"], index=False), catalog.TUNING_ELBOW)
            _log_trials(scheme.extras["trials"])
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
                tags={"scheme": scheme.name, "kind": scheme.kind},
            )
            # to be served: the caller promotes the whole set at once (core.registry.publish)
            out["champion"] = promote and scheme.serve
            mlflow.set_tag("custseg.model_version", str(out["version"]))
    return out


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


def compare(experiment: str, all_runs: bool = False, limit: int = 50) -> pd.DataFrame:
    """Scheme runs of `experiment`, newest first: those of the latest fit, or every one."""
    import mlflow

    exp = mlflow.get_experiment_by_name(experiment)
    if exp is None:
        return pd.DataFrame()
    runs = mlflow.search_runs(
        [exp.experiment_id],
        filter_string="tags.`custseg.stage` = 'segmentation' and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"],
        max_results=limit if all_runs else 500,
    )
    if runs.empty:
        return runs
    # fits that did not finish (killed, failed, still running) are not fits to compare
    unfinished = mlflow.search_runs(
        [exp.experiment_id], filter_string="attributes.status != 'FINISHED'", output_format="list"
    )
    runs = runs[~runs["tags.mlflow.parentRunId"].isin({r.info.run_id for r in unfinished})]
    project = runs.get("tags.custseg.project", pd.Series(None, index=runs.index))
    mine = project == catalog.project()
    if catalog.project() == catalog.PROJECT:  # runs from before projects were tagged
        mine |= project.isna()
    runs = runs[mine]
    if runs.empty:
        return runs
    if not all_runs:
        parent = runs["tags.mlflow.parentRunId"].iloc[0]
        runs = runs[runs["tags.mlflow.parentRunId"] == parent].iloc[::-1]  # in fit order
    table = pd.DataFrame({"scheme": runs["tags.custseg.scheme"], "kind": runs["tags.custseg.kind"]})
    for metric, label in COMPARE_METRICS:
        col = f"metrics.{metric}"
        table[label] = runs[col] if col in runs else float("nan")
    versions = runs.get("tags.custseg.model_version", pd.Series(None, index=runs.index))
    table["version"] = versions
    champions = _champions(set(table["scheme"]))
    table["champion"] = [
        "yes" if v is not None and champions.get(s) == str(v) else ""
        for s, v in zip(table["scheme"], versions, strict=True)
    ]
    table["as of"] = runs["tags.features.as_of"]
    table["run"] = runs["run_id"].str[:8]
    table["fit"] = runs["tags.mlflow.parentRunId"].fillna("").str[:8]
    table["started"] = runs["start_time"].dt.strftime("%Y-%m-%d %H:%M")
    return table.reset_index(drop=True)


def _champions(schemes: set[str]) -> dict[str, str]:
    """scheme -> version number served (schemes without one left out)."""
    import mlflow

    from core.registry import served

    members = served(mlflow.MlflowClient())
    return {s: members[segmenter_name(s)] for s in schemes if segmenter_name(s) in members}
