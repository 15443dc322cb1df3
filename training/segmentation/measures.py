"""The quality measures two fits are compared on, each with the side that is better.

Sizes and separation have a better side (no dominant or tiny segment; separated, stable
segments); the segment count and revenue concentration describe a scheme and have none.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Measure:
    metric: str  # the MLflow metric
    label: str  # its short column name
    better: str | None  # "higher", "lower" or None (descriptive)

    @property
    def arrow(self) -> str:
        return {"higher": " ↑", "lower": " ↓"}.get(self.better or "", "")


MEASURES = (
    Measure("segments", "segs", None),
    Measure("largest_share", "largest", "lower"),
    Measure("smallest_share", "smallest", "higher"),
    Measure("revenue_top_share", "top rev", None),
    Measure("revenue_hhi", "rev HHI", None),
    Measure("rfm_silhouette", "RFM silh", "higher"),
    Measure("silhouette", "own silh", "higher"),
    Measure("calinski_harabasz", "CH", "higher"),
    Measure("davies_bouldin", "DB", "lower"),
    Measure("stability_ari", "stability", "higher"),
    Measure("heldout_eta2_repurchase", "repurch eta2", "higher"),
    Measure("heldout_eta2_spend", "spend eta2", "higher"),
)
COMPARED = tuple(m for m in MEASURES if m.metric not in ("calinski_harabasz", "davies_bouldin"))
LEGEND = (
    "↑ higher is better, ↓ lower is better, no arrow: descriptive. largest/smallest: customer "
    "share of the largest/smallest segment; top rev: revenue share of the top segment; rev HHI: "
    "revenue concentration over segments; RFM silh: silhouette in one log-scaled recency/"
    "frequency/monetary space (comparable across schemes); own silh: in the clustering's own "
    "space; CH: Calinski-Harabasz; DB: Davies-Bouldin; stability: mean adjusted Rand index "
    "between the fit and bootstrap refits (1 = refits move nobody); repurch/spend eta2: on the "
    "held-out window (segments assigned on the features 90 days before the as-of date, by a "
    "tree grown before that window for tree schemes), the share of the next 90 days' "
    "repurchase / net spend variance between the segments (`custseg run` only: it needs the log)."
)


def winner(measure: Measure, a: float | None, b: float | None, tol: float = 1e-9) -> str:
    """ "a", "b", "tie" or "" (descriptive, or a value missing)."""
    if measure.better is None or not _finite(a) or not _finite(b):
        return ""
    if abs(a - b) <= tol * max(1.0, abs(a), abs(b)):
        return "tie"
    return "a" if (a > b) == (measure.better == "higher") else "b"


def _finite(x) -> bool:
    return isinstance(x, int | float) and math.isfinite(x)


def fmt(x) -> str:
    """A measure's value as text: "-" when missing, whole numbers bare, else 3 decimals."""
    if not _finite(x):
        return "-"
    return f"{x:.0f}" if float(x).is_integer() and abs(x) > 1 else f"{x:.3f}"
