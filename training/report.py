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


def _heldout(s) -> str:
    """How a scheme separates the held-out window's outcomes, in words (empty: not measured)."""
    parts = []
    if "tree_heldout_eta2" in s.metrics:
        parts.append(
            f"{s.params.get('learned_how', '')}: the leaves explain "
            f"{s.metrics['tree_heldout_eta2']:.1%} of the {s.params.get('target')} variance there"
        )
    if "heldout_eta2_repurchase" in s.metrics:
        parts.append(
            "on the common held-out window (90 days before the as-of date) the segments explain "
            f"{s.metrics['heldout_eta2_repurchase']:.1%} of the variance of repurchase and "
            f"{s.metrics.get('heldout_eta2_spend', float('nan')):.1%} of net spend"
        )
    return "; ".join(parts)


def write_report(
    path: Path,
    *,
    as_of: str,
    audit: dict,
    schemes: list,
    predictions: dict,
    skipped: dict[str, str],
    value=None,
    clv=None,
    tags: dict | None = None,
    notes: list[str],
    run_id: str | None,
    offers: list | None = None,
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
                "tree": _png(splots.tree(s)) if s.kind == "tree" and "model" in s.extras else None,
                "heldout": _heldout(s),
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
        value=value_section(value, clv),
        tags=tags,
        metrics=METRIC_LABELS,
        value_metrics=VALUE_METRICS,
        skipped=skipped,
        notes=notes,
        run_id=run_id,
        offers=offers or [],
    )
    path.write_text(html, "utf-8")
    return path


VALUE_METRICS = {
    "spearman": "Spearman",
    "gini": "Gini (normalised)",
    "capture_top_decile": "revenue captured, top 10%",
    "predicted_total": "predicted revenue",
    "actual_total": "actual revenue",
    "mae": "mean absolute error",
}


def concentration(clv) -> list[tuple[str, float]]:
    """Share of the predicted revenue held by the top 1%, 5%, 10%, 25% and 50% of customers."""
    import numpy as np

    v = np.sort(np.nan_to_num(np.asarray(clv, float)).clip(min=0))[::-1]
    total = v.sum() or 1.0
    return [(f"top {int(s * 100)}%", float(v[: max(int(np.ceil(len(v) * s)), 1)].sum() / total))
            for s in (0.01, 0.05, 0.10, 0.25, 0.50)]  # fmt: skip


def value_section(value, clv) -> dict | None:
    """The value model's page part: what scores, the candidates on the held-out window, the
    decile and orders checks, the CLV distribution and its concentration."""
    if value is None:
        return None
    from training.prediction import value_plots
    from training.prediction.clv import LABELS

    model, label = value.scored_by()
    return {
        "plan": value.plan,
        "scored_by": label,
        "chosen": LABELS[value.chosen],
        "discount": model.btyd.cfg.monthly_discount,
        "correlation": value.correlation,
        "rows": [(LABELS[k], m, k == value.chosen) for k, m in value.candidates.items()],
        "decision": value.decision,
        "deciles": value.deciles.reset_index().to_dict("records"),
        "orders": value.orders_check.reset_index().to_dict("records"),
        "concentration": concentration(clv) if clv is not None else [],
        "total": float(sum(c for c in clv if c == c)) if clv is not None else None,
        "plots": [
            p
            for p in (
                _png(value_plots.distribution(clv, value.plan.horizon_days))
                if clv is not None
                else None,
                _png(value_plots.deciles(value.deciles)) if len(value.deciles) else None,
                _png(value_plots.orders(value.orders_check)) if len(value.orders_check) else None,
            )
            if p
        ],
    }
