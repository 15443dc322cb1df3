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
from training.prediction.clv import VALUE_COLUMNS, VALUE_TIER_SCHEME


def score_table(
    features: pd.DataFrame, fitted: list, predictions: dict, value=None, as_of: date | None = None
) -> pd.DataFrame:
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
    if value is not None:
        model, label = value.scored_by()
        values = model.table(features, as_of)
        for i, col in enumerate(VALUE_COLUMNS):
            scores.insert(at + i, col, values[col].to_numpy())
        scores.insert(at + len(VALUE_COLUMNS), "value_model", label)
        tier = f"segment_{VALUE_TIER_SCHEME}_name"
        at += len(VALUE_COLUMNS) + 1
        if tier in scores:
            scores.insert(at, "value_tier", scores[tier])
            at += 1
    scores.insert(at, "active_tags", active_tag_column(features))
    return scores


def active_tag_column(features: pd.DataFrame) -> list[str]:
    """Per customer, the dynamic tags active as of the cutoff, joined by `;` (empty: none);
    thresholds from the table's own attrs (`features.build`)."""
    from features.build import active_tags

    return [";".join(t) for t in active_tags(features, features.attrs.get("tags") or {})]


def write_scores(
    out: Path,
    features: pd.DataFrame,
    as_of: date,
    audit: dict,
    fitted: list,
    predictions: dict,
    value,
    skipped: dict,
    notes: list,
    run_id: str | None,
    offers=None,
) -> dict[str, Path]:
    """scores.csv and report.html in `out`; returns their paths. `offers`
    (`training.baskets.offers.Offers`) adds next_best_1..3 at the end of scores.csv and "what
    to offer" per segment to the report."""
    from training.report import write_report

    out.mkdir(parents=True, exist_ok=True)
    with stage("scoring customers + report"):
        paths = {"scores": out / catalog.SCORES, "report": out / catalog.RUN_REPORT}
        # customer ids and segment names are text from the data and the scheme file: a cell
        # such as =HYPERLINK(...) must reach spreadsheet users as text, not as a formula
        scores = score_table(features, fitted, predictions, value, as_of)
        if offers is not None:  # last columns: the customer's next-best products
            scores = scores.merge(offers.next_best, on="customer_id", how="left")
        table = spreadsheet_safe(scores)
        write_csv(table, paths["scores"], index=False)  # with BOM: Excel reads Chinese names
        write_report(
            paths["report"],
            as_of=str(as_of),
            audit=audit,
            schemes=fitted,
            predictions=predictions,
            value=value,
            clv=scores["clv"].to_numpy() if "clv" in scores else None,
            tags=tag_section(features, fitted),
            skipped=skipped,
            notes=notes,
            run_id=run_id,
            offers=offers.by_scheme if offers is not None else [],
        )
    return paths


def tag_matrix(features: pd.DataFrame) -> pd.DataFrame:
    """One boolean column per dynamic tag of the table: active (score >= its threshold)."""
    thresholds = features.attrs.get("tags") or {}
    return pd.DataFrame(
        {
            n: features[f"tag_{n}"].to_numpy("float64", na_value=np.nan) >= t
            for n, t in thresholds.items()
            if f"tag_{n}" in features
        },
        index=features.index,
    )


def tag_section(features: pd.DataFrame, fitted: list) -> dict | None:
    """The report's dynamic tags: per tag its threshold, share of customers active and mean
    score; per served scheme, the share of each segment's customers active per tag."""
    active = tag_matrix(features)
    if not len(active.columns):
        return None
    thresholds = features.attrs.get("tags") or {}
    tags = [
        {
            "name": n,
            "threshold": thresholds[n],
            "active": int(active[n].sum()),
            "share": float(active[n].mean()) if len(active) else 0.0,
            "mean_score": float(features[f"tag_{n}"].mean()) if len(active) else 0.0,
        }
        for n in active.columns
    ]
    schemes = []
    for s in fitted:
        if not getattr(s, "serve", True):
            continue
        names = s.profile.iloc[:-1].set_index("segment")["name"]
        labels = pd.Series(np.asarray(s.labels, dtype=object), index=features.index)
        grouped = active.groupby(labels.map(names).fillna(labels).to_numpy())
        shares = grouped.mean()
        sizes = grouped.size()
        order = sizes.sort_values(ascending=False, kind="stable").index
        schemes.append(
            {
                "name": s.name,
                "rows": [
                    (str(seg), int(sizes[seg]), [float(shares.at[seg, n]) for n in active.columns])
                    for seg in order
                ],
            }
        )
    notes = features.attrs.get("tag_notes") or []
    return {"tags": tags, "columns": list(active.columns), "schemes": schemes, "notes": notes}
