"""scores.csv and report.html: what the main job and `custseg train` hand to their users, one
row per customer with an order on or before the cutoff."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from core import catalog
from core.catalog import PREDICTION_TARGETS as TARGETS
from core.outputs import write_csv
from core.progress import stage
from features.vector import spreadsheet_safe


def score_table(features: pd.DataFrame, fitted: list, predictions: dict) -> pd.DataFrame:
    """customer_id, then per target its probability and the model that gave it (the gate's
    choice: a model the gate refused is never what scores), then per fitted scheme
    segment_<scheme> (the key) and its _name, _name_zh and _strategy (direction). A target with
    no model at all (nobody to learn from) has empty columns."""
    from training.segmentation.stage import named_assignments

    scores = named_assignments(features, fitted)
    at = 1
    for target in TARGETS:
        r = predictions.get(target)
        model, label = r.scored_by() if r else (None, "")
        p = model.predict_proba(features).round(6) if model else np.nan
        scores.insert(at, f"{target}_probability", p)
        scores.insert(at + 1, f"{target}_model", label)
        at += 2
    return scores


def write_scores(
    out: Path,
    features: pd.DataFrame,
    as_of: date,
    audit: dict,
    fitted: list,
    predictions: dict,
    skipped: dict,
    notes: list,
    run_id: str | None,
) -> dict[str, Path]:
    """scores.csv and report.html in `out`; returns their paths."""
    from training.report import write_report

    out.mkdir(parents=True, exist_ok=True)
    with stage("scoring customers + report"):
        paths = {"scores": out / catalog.SCORES, "report": out / catalog.RUN_REPORT}
        # customer ids and segment names are text from the data and the scheme file: a cell
        # such as =HYPERLINK(...) must reach spreadsheet users as text, not as a formula
        table = spreadsheet_safe(score_table(features, fitted, predictions))
        write_csv(table, paths["scores"], index=False)  # with BOM: Excel reads Chinese names
        write_report(
            paths["report"],
            as_of=str(as_of),
            audit=audit,
            schemes=fitted,
            predictions=predictions,
            skipped=skipped,
            notes=notes,
            run_id=run_id,
        )
    return paths
