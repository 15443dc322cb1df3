"""report.html: the one page an analyst reads after `custseg run`.

Segments of every served scheme (size, revenue share, strategy), each model against its
baselines on the same held-out window with the promotion decision, the top drivers and the
calibration curves. Self-contained: plots are embedded, the page needs no server.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape

from core.formats import number, pct

METRIC_LABELS = {
    "roc_auc": "ROC-AUC",
    "pr_auc": "PR-AUC",
    "brier": "Brier",
    "log_loss": "log loss",
    "lift_top_decile": "lift, top 10%",
    "capture_top_decile": "capture, top 10%",
}
BASELINE_LABELS = {
    "recency_rule": "recency rule",
    "logistic_rfm": "logistic regression on RFM",
    "bg_nbd": "BG/NBD (buy till you die)",
}


def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    # "tight": the image grows to hold every label, legend and title (none is ever cut off)
    fig.savefig(buf, format="png", dpi=80, bbox_inches="tight", pad_inches=0.1)
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _defined_by(kind: str) -> str:
    """What the definition column of a scheme's segments says."""
    if kind == "clustering":
        return "sets it apart (segment mean vs everyone's, in standard deviations)"
    return "defined by"


def write_report(
    path: Path,
    *,
    as_of: str,
    audit: dict,
    schemes: list,
    predictions: dict,
    skipped: dict[str, str],
    notes: list[str],
    run_id: str | None,
) -> Path:
    from training.prediction import plots as pplots
    from training.prediction.predictor import driver_label
    from training.segmentation import plots as splots

    segments = []
    for s in schemes:
        p = s.profile[(s.profile["segment"] != "all") & (s.profile["customers"] > 0)]
        segments.append(
            {
                "name": s.name,
                "kind": s.kind,
                "description": s.description,
                "serve": s.serve,
                "rows": p.head(15).to_dict("records"),
                "defined_by": _defined_by(s.kind),
                "more": max(len(p) - 15, 0),
                "plot": _png(splots.sizes_revenue(s)) if s.serve else None,
            }
        )
    models = []
    for target, r in predictions.items():
        _, label = r.scored_by()
        rows = []
        if r.metrics:
            name = f"LightGBM, calibrated ({r.model.calibrator.method})"
            rows.append((name, r.metrics, r.chosen == "lightgbm", None))
        rows += [
            (BASELINE_LABELS.get(n, n), m, r.chosen == n, r.comparison.get(n))
            for n, m in r.baselines.items()
        ]
        models.append(
            {
                "target": target,
                "plan": r.plan,
                "rows": rows,
                "sizes": r.sizes,
                "decision": r.decision,
                "chosen": next((row[0] for row in rows if row[2]), "BG/NBD"),
                "scored_by": label,
                "refit": r.predictor.trained_on,
                "drivers": [
                    (name, driver_label(name), value) for name, value in r.drivers.head(10).items()
                ],
                "plot": _png(pplots.calibration(r.curves, target)) if r.curves else None,
            }
        )
    env = Environment(
        loader=PackageLoader("training", "templates"), autoescape=select_autoescape(["html"])
    )
    env.filters["pct"] = pct
    env.filters["signed"] = lambda v: number(v, "{:+.3f}")
    html = env.get_template("report.html").render(
        as_of=as_of,
        audit=audit,
        segments=segments,
        models=models,
        metrics=METRIC_LABELS,
        skipped=skipped,
        notes=notes,
        run_id=run_id,
    )
    path.write_text(html, "utf-8")
    return path
