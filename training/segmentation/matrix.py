"""Value x activity 2x2 matrix: four quadrants split at learned medians or fixed numbers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.errors import ConfigError
from training.segmentation.base import Segment, numeric
from training.segmentation.spec import Options, SchemeSpec

QUADRANTS = (  # (value high, activity high) -> segment
    (
        (True, True),
        Segment(
            "high_value_high_activity", "high value, high activity", "高价值高活跃", "core_loyal"
        ),
    ),
    (
        (True, False),
        Segment(
            "high_value_low_activity",
            "high value, low activity",
            "高价值低活跃",
            "win_back_high_value",
        ),
    ),
    (
        (False, True),
        Segment("low_value_high_activity", "low value, high activity", "低价值高活跃", "grow"),
    ),
    (
        (False, False),
        Segment("low_value_low_activity", "low value, low activity", "低价值低活跃", "low_cost"),
    ),
)


@dataclass(frozen=True)
class MatrixAssigner:
    value: str
    activity: str
    value_split: float
    activity_split: float

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.value, self.activity)

    def learned(self) -> dict:
        return {"value_split": self.value_split, "activity_split": self.activity_split}

    def assign(self, features: pd.DataFrame) -> np.ndarray:
        """High = strictly above the split (missing counts as low)."""
        v = numeric(features, self.value) > self.value_split
        a = numeric(features, self.activity) > self.activity_split
        keys = np.array([s.key for _, s in QUADRANTS], dtype=object)  # order: TT, TF, FT, FF
        return keys[(~v).astype(int) * 2 + (~a).astype(int)]


@dataclass(frozen=True)
class MatrixScheme:
    value: str
    activity: str
    value_split: float | str
    activity_split: float | str

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.value, self.activity)

    @classmethod
    def parse(cls, spec: SchemeSpec, strategies, where: str) -> MatrixScheme:
        opts = Options(where, spec.options)
        value = opts.get("value", str, "monetary")
        activity = opts.get("activity", str, "order_days_180d")
        splits = []
        for key in ("value_split", "activity_split"):
            split = opts.get(key, (str, float), "median")
            if isinstance(split, str) and split != "median":
                raise ConfigError(f'{where}: {key} = {split!r}: expected "median" or a number')
            splits.append(split)
        opts.done()
        return cls(value, activity, *splits)

    @property
    def learns(self) -> bool:
        return "median" in (self.value_split, self.activity_split)

    def fit(self, features: pd.DataFrame, seed: int = 0) -> MatrixAssigner:
        def split(column: str, how: float | str) -> float:
            if how != "median":
                return float(how)
            values = numeric(features, column)
            return float(np.nanmedian(values)) if np.isfinite(values).any() else 0.0

        return MatrixAssigner(
            self.value,
            self.activity,
            split(self.value, self.value_split),
            split(self.activity, self.activity_split),
        )

    def describe(self, assigner: MatrixAssigner, features: pd.DataFrame) -> list[Segment]:
        return [s for _, s in QUADRANTS]
