"""Cleaning and feature figures on the active MLflow run (the main job's): row counts per rule,
missing rates, the snapshot's as-of date and definition hash, the audit pages."""

from __future__ import annotations

from pathlib import Path

from core import catalog, tracking


def log_clean_and_features(audit: dict, snapshot: dict, paths: dict[str, Path]) -> None:
    """Log the cleaning audit and the feature snapshot's metadata; call inside a run."""
    import mlflow

    params = tracking.flatten("cleaning", dict(audit["config"]))
    mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
    metrics = {}
    for name, t in audit["tables"].items():
        metrics.update(
            {
                f"{name}.input_rows": t["input_rows"],
                f"{name}.kept_rows": t["kept_rows"],
                f"{name}.dropped_rows": t["dropped_rows"],
            }
        )
    for r in audit["rules"]:
        metrics[f"{r['table']}.{r['rule']}.{r['action']}"] = r["rows"]
    for name, cols in audit["missing_rates"].items():
        metrics.update({f"{name}.missing.{c}": m["input"] for c, m in cols.items()})
    metrics["features.customers"] = snapshot["rows"]
    metrics["features.columns"] = len(snapshot["features"])
    mlflow.log_metrics({k: float(v) for k, v in metrics.items()})
    mlflow.log_params(
        {
            "features.as_of": snapshot["as_of"],
            "features.definition_hash": snapshot["definition_hash"],
            "features.engine": snapshot["engine"],
        }
    )
    mlflow.log_dict(snapshot, catalog.SNAPSHOT_META)
    mlflow.set_tags(
        {"custseg.stage": "run", "balanced": all(t["balanced"] for t in audit["tables"].values())}
    )
    for key in ("audit_json", "audit_html"):
        mlflow.log_artifact(str(paths[key]), artifact_path=catalog.RUN_CLEANING)
