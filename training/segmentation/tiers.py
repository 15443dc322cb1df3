"""Value tiers: customers ranked by one number (predicted CLV) and cut by rank share.

`edges` are cumulative top shares (top 1%, 5%, 10%, 25%, 50% by default, Amperity's value
tiers); the tiers are the bands between them and the rest. A fit turns each share into the
column's value at that rank, so a new customer is placed by comparing its value with those
thresholds: value >= threshold k puts it in tier k or above (ties go to the higher tier),
a missing value in the bottom tier.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.errors import ConfigError
from training.segmentation.base import Segment, numeric
from training.segmentation.rules import _segment
from training.segmentation.spec import Options, SchemeSpec, check_strategy

EDGES = (0.01, 0.05, 0.10, 0.25, 0.50)
TIERS = (  # for the default edges
    Segment("top_1", "top 1%", "前1%客户", "core_loyal"),
    Segment("top_1_5", "top 1-5%", "前1-5%客户", "core_loyal"),
    Segment("top_5_10", "top 5-10%", "前5-10%客户", "key_account"),
    Segment("top_10_25", "top 10-25%", "前10-25%客户", "grow"),
    Segment("top_25_50", "top 25-50%", "前25-50%客户", "maintain"),
    Segment("bottom_50", "bottom 50%", "后50%客户", "low_cost"),
)


def thresholds(values: np.ndarray, edges: tuple[float, ...]) -> tuple[float, ...]:
    """The smallest value among the top `edge` share of customers, per edge. Customers are
    ranked from the highest value, missing ones last; the top share of n customers is the first
    ceil(edge x n) (so every tier holds its share, the one crossing the line included). A share
    reaching into the missing values ends at the smallest value; a share holding nobody (or
    no value at all) has threshold inf."""
    ranked = np.sort(values[~np.isnan(values)])[::-1]
    out = []
    for edge in edges:
        count = min(int(np.ceil(round(edge * len(values), 9))), len(ranked))
        out.append(float(ranked[count - 1]) if count > 0 else np.inf)
    return tuple(out)


@dataclass(frozen=True)
class TierAssigner:
    column: str
    edges: tuple[float, ...]
    thresholds: tuple[float, ...]  # one per edge, non-increasing
    keys: tuple[str, ...]  # one per tier: len(edges) + 1

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.column,)

    def learned(self) -> dict:
        return {
            f"{k}_min_{self.column}": t for k, t in zip(self.keys, self.thresholds, strict=False)
        }

    def assign(self, features: pd.DataFrame) -> np.ndarray:
        """Tier k when the value is >= threshold k and below every threshold above it: the
        number of thresholds above the value; missing values go to the bottom tier."""
        v = numeric(features, self.column)
        above = (np.asarray(self.thresholds)[None, :] > v[:, None]).sum(axis=1)
        tier = np.where(np.isnan(v), len(self.thresholds), above)
        return np.asarray(self.keys, dtype=object)[tier]


@dataclass(frozen=True)
class TiersScheme:
    column: str
    edges: tuple[float, ...]
    tiers: tuple[Segment, ...]

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.column,)

    @classmethod
    def parse(cls, spec: SchemeSpec, strategies, where: str) -> TiersScheme:
        opts = Options(where, spec.options)
        column = opts.get("column", str, required=True)
        edges = _edges(where, opts.get("edges", list, list(EDGES)))
        entries = opts.get("tiers", list)
        if entries is None:
            if edges != EDGES:
                raise ConfigError(
                    f"{where}: tiers: needs {len(edges) + 1} tier tables (one more than edges) "
                    f"when edges are not the default {list(EDGES)}"
                )
            tiers = tuple(
                Segment(t.key, t.name, t.name_zh, check_strategy(where, t.strategy, strategies))
                for t in TIERS
            )
        else:
            if len(entries) != len(edges) + 1:
                raise ConfigError(
                    f"{where}: tiers: {len(entries)} table(s) for {len(edges)} edges: expected "
                    f"{len(edges) + 1} (one per band between the edges, the last for the rest)"
                )
            tiers = []
            for i, entry in enumerate(entries):
                w = f"{where} tiers[{i}]"
                if not isinstance(entry, dict):
                    raise ConfigError(f"{w}: expected a table with key, en, zh, strategy")
                tiers.append(_segment(w, entry, strategies))
            keys = [t.key for t in tiers]
            if dup := sorted({k for k in keys if keys.count(k) > 1}):
                raise ConfigError(f"{where}: tier key(s) used twice: {', '.join(dup)}")
        opts.done()
        return cls(column, edges, tuple(tiers))

    def fit(self, features: pd.DataFrame, seed: int = 0) -> TierAssigner:
        values = numeric(features, self.column)
        keys = tuple(t.key for t in self.tiers)
        return TierAssigner(self.column, self.edges, thresholds(values, self.edges), keys)

    def describe(self, assigner: TierAssigner, features: pd.DataFrame) -> list[Segment]:
        return list(self.tiers)


def _edges(where: str, raw: list) -> tuple[float, ...]:
    numbers = all(isinstance(e, int | float) and not isinstance(e, bool) for e in raw)
    if (
        not raw
        or not numbers
        or not all(0 < e < 1 for e in raw)
        or any(a >= b for a, b in zip(raw, raw[1:], strict=False))
    ):
        raise ConfigError(
            f"{where}: edges = {raw!r}: expected cumulative top shares, strictly increasing "
            f"and each between 0 and 1 (exclusive), like {list(EDGES)}"
        )
    return tuple(float(e) for e in raw)


def share(edges: tuple[float, ...], tier: int) -> str:
    """The rank share of tier `tier` as words: "top 1%", "top 1-5%", "bottom 50%"."""
    bounds = [0.0, *edges, 1.0]
    lo, hi = bounds[tier] * 100, bounds[tier + 1] * 100
    if tier == len(edges):
        return f"bottom {100 - lo:g}%"
    return f"top {hi:g}%" if tier == 0 else f"top {lo:g}-{hi:g}%"
