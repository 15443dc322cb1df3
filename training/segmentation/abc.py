"""ABC (Pareto) classes by revenue: A makes the first `a_share` of revenue, B the next `b_share`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.errors import ConfigError
from training.segmentation.base import Segment, numeric
from training.segmentation.spec import Options, SchemeSpec

CLASSES = (
    Segment("A", "A: top revenue", "A类-核心收入客户", "key_account"),
    Segment("B", "B: mid revenue", "B类-中坚客户", "grow"),
    Segment("C", "C: long tail", "C类-长尾客户", "low_cost"),
)


def thresholds(revenue: np.ndarray, a_share: float, b_share: float) -> tuple[float, float]:
    """Smallest revenue in A and in B. A holds every customer whose revenue, ranked from the
    top, starts before `a_share` of the total (so the customer crossing the line is in A);
    customers tied with the last A customer are A too."""
    r = np.sort(np.nan_to_num(revenue, nan=0.0).clip(min=0))[::-1]
    total = r.sum()
    if total <= 0:
        return np.inf, np.inf
    before = (np.cumsum(r) - r) / total  # revenue share of the customers ranked above
    eps = 1e-9  # 0.8 + 0.15 is 0.9500000000000001 in floating point
    a_last = np.searchsorted(before, a_share - eps, side="left") - 1
    b_last = np.searchsorted(before, a_share + b_share - eps, side="left") - 1
    a_min = float(r[a_last]) if a_last >= 0 else np.inf  # a_share 0: nobody in A
    b_min = float(r[b_last]) if b_last >= 0 else np.inf
    return a_min, min(a_min, b_min)


@dataclass(frozen=True)
class AbcAssigner:
    revenue: str
    a_min: float
    b_min: float

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.revenue,)

    def learned(self) -> dict:
        return {"a_min_revenue": self.a_min, "b_min_revenue": self.b_min}

    def assign(self, features: pd.DataFrame) -> np.ndarray:
        r = numeric(features, self.revenue)
        return np.select([r >= self.a_min, r >= self.b_min], ["A", "B"], "C").astype(object)


@dataclass(frozen=True)
class AbcScheme:
    revenue: str
    a_share: float
    b_share: float

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.revenue,)

    @classmethod
    def parse(cls, spec: SchemeSpec, strategies, where: str) -> AbcScheme:
        opts = Options(where, spec.options)
        revenue = opts.get("revenue", str, "monetary")
        a, b = opts.number("a_share", 0.8, 0.0, 1.0), opts.number("b_share", 0.15, 0.0, 1.0)
        if a + b > 1:
            raise ConfigError(f"{where}: a_share + b_share = {a + b:g}: must be at most 1")
        opts.done()
        return cls(revenue, a, b)

    def fit(self, features: pd.DataFrame, seed: int = 0) -> AbcAssigner:
        return AbcAssigner(
            self.revenue, *thresholds(numeric(features, self.revenue), self.a_share, self.b_share)
        )

    def describe(self, assigner: AbcAssigner, features: pd.DataFrame) -> list[Segment]:
        return list(CLASSES)
