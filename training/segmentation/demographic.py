"""Demographic segments: combinations of attribute columns (age band x province by default)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.errors import ConfigError
from features.registry import ATTRIBUTES, CORE
from training.segmentation.base import Segment
from training.segmentation.spec import Options, SchemeSpec

OTHER, UNKNOWN = "other", "unknown"


def as_text(values: pd.Series) -> pd.Series:
    """Category values as text; whole numbers print without ".0" whatever their dtype, so an
    int column served as float lands in the same segment."""
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        numbers = pd.to_numeric(values, errors="coerce")
        if (numbers.dropna() % 1 == 0).all():
            return numbers.astype("Int64").astype("string")
    return values.astype("string")


ZH = {OTHER: "其他", UNKNOWN: "未知"}


@dataclass(frozen=True)
class DemographicAssigner:
    columns: tuple[str, ...]
    levels: tuple[tuple[str, ...], ...]  # the values kept per column, learned at fit
    numeric_columns: tuple[str, ...] = ()  # it reads categories

    def values(self, features: pd.DataFrame) -> list[np.ndarray]:
        out = []
        for col, keep in zip(self.columns, self.levels, strict=True):
            v = as_text(features[col])
            known = v.isin(keep).to_numpy(dtype=bool, na_value=False)
            out.append(
                np.where(
                    v.isna().to_numpy(),
                    UNKNOWN,
                    np.where(known, v.to_numpy(dtype=object, na_value=""), OTHER),
                )
            )
        return out

    def learned(self) -> dict:
        return {f"{c}_kept": list(v) for c, v in zip(self.columns, self.levels, strict=True)}

    def assign(self, features: pd.DataFrame) -> np.ndarray:
        parts = self.values(features)
        key = parts[0].astype(object)
        for p in parts[1:]:
            key = key + "|" + p.astype(object)
        return key


@dataclass(frozen=True)
class DemographicScheme:
    columns: tuple[str, ...]  # attribute columns it reads
    top: int

    @classmethod
    def parse(cls, spec: SchemeSpec, strategies, where: str) -> DemographicScheme:
        opts = Options(where, spec.options)
        columns = tuple(opts.strings("columns", ["age_band", "province"]))
        groupable = [f.name for f in CORE + ATTRIBUTES if f.kind == "category"]
        if unknown := [c for c in columns if c not in groupable]:
            raise ConfigError(
                f"{where}: columns {', '.join(map(repr, unknown))}: not a category feature; "
                f"choose from {', '.join(groupable)}"
            )
        top = opts.get("top", int, 6)
        if top < 1:
            raise ConfigError(f"{where}: top = {top}: expected a whole number >= 1")
        opts.done()
        return cls(columns, top)

    def fit(self, features: pd.DataFrame, seed: int = 0) -> DemographicAssigner:
        levels = []
        for col in self.columns:
            counts = as_text(features[col]).value_counts()
            # most common first, ties by value, so the kept set is deterministic
            ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
            levels.append(tuple(v for v, _ in ranked[: self.top]))
        return DemographicAssigner(self.columns, tuple(levels))

    def describe(self, assigner: DemographicAssigner, features: pd.DataFrame) -> list[Segment]:
        combos = [[*lv, OTHER, UNKNOWN] for lv in assigner.levels]
        keys = [""]
        for values in combos:
            keys = [f"{k}|{v}" if k else v for k in keys for v in values]
        return [
            Segment(
                k, ", ".join(k.split("|")), "-".join(ZH.get(p, p) for p in k.split("|")), "targeted"
            )
            for k in keys
        ]
