"""campaign_report.html: the evaluation as one self-contained page (autoescaped: segment keys,
names and strategies from the data are text, never markup)."""

from __future__ import annotations

from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape

from core.formats import number, pct
from training.campaigns.config import DIMENSION_LABELS, DIMENSIONS


def write_report(evaluation, path: Path) -> Path:
    e = evaluation
    env = Environment(
        loader=PackageLoader("training", "templates"), autoescape=select_autoescape(["html"])
    )
    env.filters["pct"] = pct
    env.filters["pctpt"] = lambda v: pct(v, 2, signed=True)
    env.filters["num2"] = lambda v: number(v, "{:,.2f}")
    env.filters["signed2"] = lambda v: number(v, "{:+,.2f}")
    env.filters["money"] = lambda v: number(v, "{:,.0f}")
    env.filters["p"] = lambda v: number(v, "{:.3g}")
    rows = e.segments.reset_index().to_dict("records")
    dims = []
    if e.benefit:
        dims = [
            {
                "label": DIMENSION_LABELS[d],
                "score": e.benefit.scores[d],
                "weight": e.benefit.weights[d],
            }
            for d in DIMENSIONS
        ]
    responded = int(
        (
            (e.segments["conversion_significant"] & (e.segments["conversion_uplift"] > 0))
            | (e.segments["revenue_significant"] & (e.segments["revenue_uplift"] > 0))
        ).sum()
    )
    html = env.get_template("campaign.html").render(
        e=e,
        rows=rows,
        has_ltv="ltv_cac" in e.segments and e.totals["has_costs"],
        funnel=e.funnel.to_dict("records") if e.funnel is not None else None,
        pairs=", ".join(f"{a} + {b}" for a, b in e.mergeable),
        dims=dims,
        responded=responded,
    )
    path.write_text(html, "utf-8")
    return path
