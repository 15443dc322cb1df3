"""The monitoring charts keep every label, tick, title and legend entry inside the figure:
checked with matplotlib's own renderer (no browser), on long bilingual segment names."""

from __future__ import annotations

import warnings

import matplotlib.axis
import matplotlib.text
import pandas as pd
import pytest

from monitoring import report

KEYS = [f"seg_{i}" for i in range(7)]
NAMES = {
    k: f"high value, frequent, recent, long-standing #{i} / 高价值-高频-近期-老客 #{i}"
    for i, k in enumerate(KEYS)
}
HEALTH = {
    scheme: {
        "score": score,
        "threshold": 60.0,
        "parts": [
            {"name": p, "score": s}
            for p, s in zip(report.PART_LABELS, (100, 91, None, 35, 12, 0), strict=True)
        ],
    }
    for scheme, score in (("rfm_rules", 84.0), ("behaviour_clusters_long_name", 41.0))
}


def _transitions() -> dict:
    return {
        a: {b: (50 if a == b else 3 * (i + j)) for j, b in enumerate(KEYS)}
        for i, a in enumerate(KEYS)
    }


def _history() -> pd.DataFrame:
    rows = [
        {"as_of": pd.Timestamp(day), "scheme": "rfm_rules", "segment": k, "share": 0.1 + i / 100,
         "revenue_share": 0.12}
        for day in ("2026-03-31", "2026-06-30", "2026-09-30")
        for i, k in enumerate(KEYS)
    ]  # fmt: skip
    return pd.DataFrame(rows)


def outside(fig) -> list[str]:
    """The drawn texts whose extent leaves the figure (1 px of tolerance). Tick labels of
    ticks beyond an axis's limits exist but are not drawn: they are left out."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    box = fig.bbox
    undrawn = set()
    for axis in fig.findobj(matplotlib.axis.Axis):
        lo, hi = sorted(axis.get_view_interval())
        pad = 1e-9 * max(abs(lo), abs(hi), 1)
        for tick in axis.get_major_ticks() + axis.get_minor_ticks():
            if not lo - pad <= tick.get_loc() <= hi + pad:
                undrawn |= {id(tick.label1), id(tick.label2)}
    out = []
    for t in fig.findobj(matplotlib.text.Text):
        if not t.get_visible() or not t.get_text().strip() or id(t) in undrawn:
            continue
        e = t.get_window_extent(renderer)
        if e.x0 < box.x0 - 1 or e.y0 < box.y0 - 1 or e.x1 > box.x1 + 1 or e.y1 > box.y1 + 1:
            out.append(t.get_text())
    return out


@pytest.mark.parametrize(
    "chart",
    [
        lambda: report._heatmap("behaviour_clusters", _transitions(), NAMES),
        lambda: report._history_chart("rfm_rules", _history(), NAMES, {}),
        lambda: report._health_chart(HEALTH),
    ],
    ids=["heatmap", "history", "health"],
)
def test_monitoring_charts_keep_every_text_inside_the_figure(chart):
    import matplotlib.pyplot as plt

    with warnings.catch_warnings():  # no CJK font here: glyphs missing is not the point
        warnings.filterwarnings("ignore", message="Glyph .* missing from font")
        fig = chart()
        try:
            assert outside(fig) == []
        finally:
            plt.close(fig)
