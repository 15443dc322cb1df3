"""What a monitoring run leaves behind: summary.json for machines, Evidently pages and the
analyst's report for people, the segment-size history, and an MLflow run with all of it."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from core import catalog
from core.outputs import CSV_ENCODING, write_csv
from monitoring.measure import Monitored


def summary(m: Monitored, models, cfg, reevaluation: dict | None, reports: dict) -> dict:
    return {
        "status": "unhealthy" if m.needed else "healthy",
        "as_of": str(m.as_of),
        "reference_as_of": str(m.reference.as_of),  # the oldest served; per scheme below
        "reference_run": m.reference.run_id,
        "references": {
            s: {"as_of": str(r.as_of), "run": r.run_id} for s, r in m.references.items()
        },
        "customers": {"reference": len(m.reference.table), "current": len(m.current)},
        "drift": {
            **m.drift.to_dict(),
            "threshold_share": cfg.drift_share,
            "triggered": m.drift.share_drifted > cfg.drift_share,
        },
        "health": {s: h.to_dict() for s, h in m.health.items()},
        "segment_names": {
            s: {
                k: f"{seg.name} / {seg.name_zh}" for k, seg in models.segmenters[s].segments.items()
            }
            for s in m.health
        },
        "versions": models.versions,
        "trigger": {"needed": m.needed, "reasons": m.reasons},
        "notes": m.notes,
        "reevaluation": reevaluation,
        "reports": {k: Path(v).name for k, v in reports.items()},
        "tags": tag_prevalence(m, models),
    }


def tag_prevalence(m: Monitored, models) -> dict:
    """Share of customers with each dynamic tag active, now and on the reference (thresholds
    as the serving champions carry them, else as the current table was built with)."""
    from training.scores import tag_matrix

    thresholds = dict(models.tags or m.current.attrs.get("tags") or {})

    def shares(table: pd.DataFrame) -> dict[str, float]:
        table = table.copy()
        table.attrs["tags"] = thresholds
        active = tag_matrix(table)
        return {n: round(float(active[n].mean()), 6) for n in active.columns if len(active)}

    return {"current": shares(m.current), "reference": shares(m.reference.table)}


def update_tag_history(path: Path, m: Monitored, tags: dict) -> list[dict]:
    """Append this run's tag prevalence (`tag_prevalence`) to the history file kept in the
    state folder (one row per as-of date and tag; a rerun for a date replaces its rows);
    returns the whole history, oldest first."""
    new = pd.DataFrame(
        {
            "as_of": str(m.as_of),
            "tag": list(tags["current"]),
            "share": list(tags["current"].values()),
        }
    )
    history = new
    if path.exists():
        old = pd.read_csv(path, dtype={"as_of": str, "tag": str}, encoding=CSV_ENCODING)
        history = pd.concat([old[old["as_of"] != str(m.as_of)], new], ignore_index=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_csv(history, path, index=False)
    return history.sort_values(["as_of", "tag"], kind="stable").to_dict("records")


def update_history(path: Path, m: Monitored) -> pd.DataFrame:
    """Append this run's segment shares (and each reference's, once) to the history file kept
    in the state folder; returns the history of the schemes' current references."""
    rows = []
    for scheme, h in m.health.items():
        seg = h.segments.reset_index()
        ref = m.references[scheme]
        for side, day in (("reference", ref.as_of), ("current", m.as_of)):
            rows.append(
                pd.DataFrame(
                    {
                        "reference_run": ref.run_id,
                        "as_of": str(day),
                        "scheme": scheme,
                        "segment": seg["segment"],
                        "share": seg[f"{side}_share"],
                        "revenue_share": seg[f"{side}_revenue_share"],
                    }
                )
            )
    keys = ["reference_run", "as_of", "scheme", "segment"]
    new = pd.concat(rows, ignore_index=True).drop_duplicates(keys, keep="last")  # ref day == today
    history = new
    if path.exists():
        old = pd.read_csv(
            path,
            dtype={"reference_run": str, "as_of": str, "segment": str},
            encoding=CSV_ENCODING,  # with or without the BOM (files of older versions)
        )
        runs = ["reference_run", "as_of", "scheme"]
        stale = old.set_index(runs).index.isin(new.set_index(runs).index)
        history = pd.concat([old[~stale], new], ignore_index=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_csv(history, path, index=False)  # demographic segment keys are Chinese
    runs = pd.Series({s: m.references[s].run_id for s in m.health})
    mine = history[history["reference_run"].to_numpy() == history["scheme"].map(runs).to_numpy()]
    mine = mine.assign(as_of=pd.to_datetime(mine["as_of"]).dt.date)
    mine[["share", "revenue_share"]] = mine[["share", "revenue_share"]].astype(float)
    return mine.sort_values(["scheme", "as_of", "segment"]).drop(columns="reference_run")


def write(out: Path, data: dict) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / catalog.MONITOR_SUMMARY
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str), "utf-8")
    return path


def log_run(m: Monitored, data: dict, files: list[Path]) -> str:
    """Metrics (health per scheme and part, drift share) and every file of the run, in the
    active MLflow run; returns its id."""
    import mlflow

    mlflow.set_tags(
        {
            "custseg.stage": "monitoring",
            "custseg.status": data["status"],
            "custseg.reference_run": m.reference.run_id,
            "features.as_of": str(m.as_of),
        }
    )
    metrics = {
        "drift_share": m.drift.share_drifted,
        "drifted_features": len(m.drift.drifted_features()),
    }
    for scheme, h in m.health.items():
        metrics[f"health_{scheme}"] = h.score
        metrics |= {f"health_{scheme}_{p.name}": p.score for p in h.parts if p.score is not None}
    mlflow.log_metrics(metrics)
    for f in files:
        mlflow.log_artifact(str(f), catalog.RUN_MONITORING)
    return mlflow.active_run().info.run_id
