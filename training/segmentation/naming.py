"""Readable, deterministic segment names and strategies from a segment's profile.

Each segment's median value, frequency and recency is placed in the overall distribution
(percentile rank): top third "high", bottom third "low". The three levels give the name
("high value, frequent, recent / 高价值-高频-近期") and the strategy archetype. Segments that would
share a name get a further word from the feature that sets them apart most.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from training.segmentation.base import Segment, numeric

# feature, and the words for its high / mid / low level (recency: fewer days = "high", recent)
AXES = (
    (
        "monetary",
        False,
        (("high value", "高价值"), ("mid value", "中价值"), ("low value", "低价值")),
    ),
    ("frequency_orders", False, (("frequent", "高频"), ("regular", "中频"), ("rare", "低频"))),
    ("recency_days", True, (("recent", "近期"), ("lapsing", "渐冷"), ("dormant", "沉睡"))),
)
EXTRA = (  # tie-breakers: feature, (high words), (low words)
    ("tenure_days", ("long-standing", "老客"), ("new", "新客")),
    ("avg_order_value", ("big basket", "高客单"), ("small basket", "低客单")),
    ("online_share", ("online", "线上"), ("offline", "线下")),
    ("interpurchase_mean_days", ("slow cycle", "长周期"), ("fast cycle", "短周期")),
)
COLUMNS = tuple(a[0] for a in AXES)
ARCHETYPES = (
    "core_loyal",
    "new_potential",
    "grow",
    "nurture",
    "win_back_high_value",
    "win_back",
    "low_cost",
)


def percentile(overall: np.ndarray, value: float) -> float:
    """Mid-rank percentile of `value` among `overall` (ties count half), 0.5 when unknown."""
    overall = overall[~np.isnan(overall)]
    if np.isnan(value) or not len(overall):
        return 0.5
    return float((np.sum(overall < value) + 0.5 * np.sum(overall == value)) / len(overall))


def level(p: float) -> int:
    """0 high, 1 mid, 2 low."""
    return 0 if p >= 2 / 3 else 2 if p <= 1 / 3 else 1


def strategy(value: int, frequency: int, recency: int, tenure: int) -> str:
    """The archetype of a profile (levels 0 high / 1 mid / 2 low; recency 0 = recent)."""
    if recency == 0:
        return "core_loyal" if value == 0 else "new_potential" if tenure == 2 else "grow"
    if recency == 1:
        return "win_back_high_value" if value == 0 else "nurture"
    if value == 0:
        return "win_back_high_value"
    return "low_cost" if value == 2 and frequency == 2 else "win_back"


def name_segments(features: pd.DataFrame, labels: np.ndarray, keys: list[str]) -> list[Segment]:
    """A Segment per key in `keys` (segments with no customers keep a neutral name)."""
    cols = {c: numeric(features, c) for c in {*COLUMNS, *(e[0] for e in EXTRA)} if c in features}
    pct: dict[str, dict[str, float]] = {}
    for key in keys:
        members = labels == key
        pct[key] = {
            c: percentile(v, float(np.nanmedian(v[members])))
            if members.any() and np.isfinite(v[members]).any()
            else 0.5
            for c, v in cols.items()
        }
    names = {}
    for key in keys:
        p = pct[key]
        levels = [
            level(p.get(col, 0.5)) if not rev else level(1 - p.get(col, 0.5))
            for col, rev, _ in AXES
        ]
        en = ", ".join(words[lv][0] for (_, _, words), lv in zip(AXES, levels, strict=True))
        zh = "-".join(words[lv][1] for (_, _, words), lv in zip(AXES, levels, strict=True))
        tenure = level(p.get("tenure_days", 0.5))
        names[key] = [en, zh, strategy(*levels, tenure)]
    _disambiguate(names, pct, keys)
    return [Segment(k, *names[k]) for k in keys]


def _disambiguate(names: dict[str, list[str]], pct: dict, keys: list[str]) -> None:
    """Append the most distinctive extra feature's word to segments sharing a name; number any
    that still collide. Deterministic: depends only on the profiles and the key order."""
    for _ in range(2):
        groups: dict[str, list[str]] = {}
        for k in keys:
            groups.setdefault(names[k][0], []).append(k)
        for same in (g for g in groups.values() if len(g) > 1):
            for k in same:
                spread = [
                    (abs(pct[k].get(f, 0.5) - 0.5), i)
                    for i, (f, *_rest) in enumerate(EXTRA)
                    if f in pct[k]
                ]
                if not spread:
                    continue
                _, i = max(spread)
                feature, high, low = EXTRA[i]
                en, zh = high if pct[k][feature] >= 0.5 else low
                if en not in names[k][0]:
                    names[k][0] += f", {en}"
                    names[k][1] += f"-{zh}"
    seen: dict[str, int] = {}
    for k in keys:
        n = seen[names[k][0]] = seen.get(names[k][0], 0) + 1
        if n > 1:
            names[k][0] += f" #{n}"
            names[k][1] += f" #{n}"
