"""What puts a customer in a segment, as one line of text per segment (the report's and
profiles.csv's `definition`): a reader should not need the scheme file or the model.

Rules, score maps, matrices, ABC classes and value tiers are their fitted thresholds written
out ("recency_days ≤ 30 and orders_180d ≥ 5", "clv ≥ 1,234.5 (top 1%)"); demographic segments
their attribute values; clusters, which have no threshold, the features that set them apart
most: the largest standardized differences of the segment's mean from everyone's.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from training.segmentation.abc import AbcAssigner
from training.segmentation.base import numeric
from training.segmentation.demographic import OTHER, UNKNOWN, DemographicAssigner
from training.segmentation.matrix import MatrixAssigner
from training.segmentation.rules import RuleAssigner
from training.segmentation.scores import ScoreAssigner
from training.segmentation.tiers import TierAssigner, share
from training.segmentation.tree import TreeAssigner

SYMBOLS = {"min": "≥", "max": "≤", "above": ">", "below": "<"}
TOP_FEATURES = 3


def definitions(
    assigner, features: pd.DataFrame, labels: np.ndarray, keys: list[str]
) -> dict[str, str]:
    """Segment key -> its definition, for every key in `keys`."""
    if isinstance(assigner, TreeAssigner):
        return tree_rules(assigner)
    if isinstance(assigner, RuleAssigner):
        return _rules(assigner)
    if isinstance(assigner, ScoreAssigner):
        return {k: _score_cells(assigner, i) for i, k in enumerate(assigner.keys)}
    if isinstance(assigner, MatrixAssigner):
        return _matrix(assigner)
    if isinstance(assigner, AbcAssigner):
        return _abc(assigner)
    if isinstance(assigner, TierAssigner):
        return _tiers(assigner)
    if isinstance(assigner, DemographicAssigner):
        return {k: _demographic(assigner, k) for k in keys}
    return distinctive(features, labels, keys, list(assigner.columns))


def _num(value: float) -> str:
    """A threshold as people write it: 2000, 12.5, 1,234.57."""
    return f"{value:,.2f}".rstrip("0").rstrip(".") if abs(value) >= 1000 else f"{value:.4g}"


def _mean(value: float) -> str:
    """A mean to three figures or so: 14,955, 30.4, 0.03."""
    size = abs(value)
    return f"{value:,.0f}" if size >= 100 else f"{value:.1f}" if size >= 1 else f"{value:.2f}"


LOWER = {"min": "≤", "above": "<"}  # a lower bound written before its column: 2 ≤ orders


def _conditions(conditions) -> str:
    """`2 ≤ orders_180d ≤ 4` for a column bounded on both sides, `column ≥ x` otherwise."""
    by_column: dict[str, list] = {}
    for c in conditions:
        by_column.setdefault(c.column, []).append(c)
    parts = []
    for column, conds in by_column.items():
        low = [c for c in conds if c.bound in LOWER]
        high = [c for c in conds if c.bound not in LOWER]
        if len(low) == 1 and len(high) == 1:
            lo, hi = low[0], high[0]
            text = [
                f"{_num(lo.value)} {LOWER[lo.bound]} {column} {SYMBOLS[hi.bound]} {_num(hi.value)}"
            ]
        else:
            text = [f"{column} {SYMBOLS[c.bound]} {_num(c.value)}" for c in conds]
        if all(c.missing for c in conds):
            text = [f"({' and '.join(text)} or {column} missing)"]
        parts += text
    return " and ".join(parts) or "everyone"


def _rules(assigner: RuleAssigner) -> dict[str, str]:
    out = {r.segment.key: _conditions(r.conditions) for r in assigner.rules}
    otherwise = "none of the rules above" if assigner.rules else "everyone"
    out.setdefault(assigner.default.key, otherwise)
    return out


def tree_rules(assigner: TreeAssigner) -> dict[str, str]:
    """Each leaf's own path (the default leaf's too: the leaves do not overlap)."""
    out = {r.segment.key: _conditions(r.conditions) for r in assigner.rules}
    out[assigner.default.key] = _conditions(assigner.last)
    return out


def _score_range(column: str, edges: np.ndarray, lo: int, hi: int) -> list[str]:
    """Bounds on `column` for scores lo..hi (score = 1 + edges strictly below the value)."""
    low = f"{_num(float(edges[lo - 2]))} < " if lo > 1 else ""
    high = f" ≤ {_num(float(edges[hi - 1]))}" if hi < 5 else ""
    return [f"{low}{column}{high}"] if low or high else []


def _span(scores: list[int]) -> str:
    lo, hi = min(scores), max(scores)
    return f"{lo}" if lo == hi else f"{lo}-{hi}"


def _score_cells(a: ScoreAssigner, index: int) -> str:
    """The (R, F) cells of segment `index`: as score ranges and the feature bounds they stand
    for when they form a rectangle, else cell by cell."""
    cells = [(r + 1, f + 1) for r, f in zip(*np.nonzero(a.grid == index), strict=True)]
    if not cells:
        return "no (R, F) cell (every one taken by an earlier entry)"
    rs, fs = sorted({r for r, _ in cells}), sorted({f for _, f in cells})
    if len(cells) != (rs[-1] - rs[0] + 1) * (fs[-1] - fs[0] + 1):
        return "(R, F) in " + ", ".join(f"({r}, {f})" for r, f in cells)
    # R is reversed (recent = 5): R in [lo, hi] is a recency score 6-hi .. 6-lo
    bounds = _score_range(a.recency, a.edges["r"], 6 - rs[-1], 6 - rs[0])
    bounds += _score_range(a.frequency, a.edges["f"], fs[0], fs[-1])
    text = f"R {_span(rs)}, F {_span(fs)}"
    return f"{text}: {' and '.join(bounds)}" if bounds else text


def _matrix(a: MatrixAssigner) -> dict[str, str]:
    from training.segmentation.matrix import QUADRANTS

    def side(column: str, split: float, high: bool) -> str:
        return f"{column} {'>' if high else '≤'} {_num(split)}"

    return {
        s.key: f"{side(a.value, a.value_split, v)} and {side(a.activity, a.activity_split, h)}"
        for (v, h), s in QUADRANTS
    }


def _abc(a: AbcAssigner) -> dict[str, str]:
    """A from its smallest revenue, B between, C below (an infinite bound: nobody there)."""
    r, top, low = a.revenue, a.a_min, a.b_min
    b = "nobody"
    if low < top:
        b = f"{_num(low)} ≤ {r} < {_num(top)}" if np.isfinite(top) else f"{r} ≥ {_num(low)}"
    return {
        "A": f"{r} ≥ {_num(top)}" if np.isfinite(top) else "nobody",
        "B": b,
        "C": f"{r} < {_num(low)}" if np.isfinite(low) else "everyone",
    }


def _tiers(a: TierAssigner) -> dict[str, str]:
    """Each tier between its threshold and the one above, with its rank share: "clv ≥ 1,234.5
    (top 1%)", "250 ≤ clv < 1,234.5 (top 1-5%)", "clv < 12 or missing (bottom 50%)". A tier
    whose threshold equals the one above (ties went up) or is infinite holds nobody."""
    c, bounds = a.column, [np.inf, *a.thresholds]
    out = {}
    for k, key in enumerate(a.keys):
        high = bounds[k]
        low = bounds[k + 1] if k + 1 < len(bounds) else None
        if low is None:
            text = f"{c} < {_num(high)} or missing" if np.isfinite(high) else "everyone"
        elif not np.isfinite(low) or low == high:
            text = "nobody"
        elif np.isfinite(high):
            text = f"{_num(low)} ≤ {c} < {_num(high)}"
        else:
            text = f"{c} ≥ {_num(low)}"
        out[key] = f"{text} ({share(a.edges, k)})"
    return out


def _demographic(a: DemographicAssigner, key: str) -> str:
    parts = []
    for column, value, kept in zip(a.columns, key.split("|"), a.levels, strict=False):
        if value == OTHER:
            parts.append(f"{column} not among the {len(kept)} most common")
        elif value == UNKNOWN:
            parts.append(f"{column} unknown")
        else:
            parts.append(f"{column} = {value}")
    return " and ".join(parts)


def distinctive(
    features: pd.DataFrame, labels: np.ndarray, keys: list[str], columns: list[str]
) -> dict[str, str]:
    """Per segment, the TOP_FEATURES columns whose segment mean lies furthest from everyone's
    mean in standard deviations: "recency_days 12 vs 85 (-1.4 sd), ..."."""
    data = pd.DataFrame({c: numeric(features, c) for c in columns})
    mean, std = data.mean(), data.std().replace(0, np.nan)
    means = data.groupby(np.asarray(labels, dtype=object)).mean()
    out = {}
    for key in keys:
        if key not in means.index:
            out[key] = "no customers"
            continue
        z = ((means.loc[key] - mean) / std).dropna()
        top = z.abs().sort_values(ascending=False, kind="stable").index[:TOP_FEATURES]
        out[key] = ", ".join(
            f"{c} {'higher' if z[c] > 0 else 'lower'}: {_mean(means.loc[key, c])} vs "
            f"{_mean(mean[c])} ({z[c]:+.1f} sd)"
            for c in top
        )
    return out
