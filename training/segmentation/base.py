"""What every scheme produces: an assigner (fitted parameters that map feature rows to segment
keys) and the segments it can assign, each with a readable name and a strategy key.

An assigner is a small picklable object; the same object runs in batch scoring, inside the MLflow
model that serving loads, and in bootstrap refits for stability.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from difflib import get_close_matches
from typing import Protocol

import numpy as np
import pandas as pd

from core.errors import InputError


@dataclass(frozen=True)
class Segment:
    key: str
    name: str  # English
    name_zh: str
    strategy: str  # key into the strategy table


@dataclass(frozen=True)
class Strategy:
    key: str
    direction: str
    direction_zh: str
    actions: str
    actions_zh: str
    owner: str


class Assigner(Protocol):
    columns: tuple[str, ...]  # feature columns it reads

    def assign(self, features: pd.DataFrame) -> np.ndarray:
        """Segment key per row (an array of str)."""


@dataclass
class FittedScheme:
    """One scheme fitted on one feature table."""

    name: str
    kind: str
    description: str
    assigner: Assigner
    segments: list[Segment]  # every segment the assigner can return, in display order
    params: dict = field(default_factory=dict)  # what was configured or chosen by tuning
    metrics: dict[str, float] = field(default_factory=dict)  # kind-specific (clustering)
    serve: bool = True
    extras: dict = field(default_factory=dict)  # kind-specific tables (tuning trials, elbow)
    definition: dict = field(default_factory=dict)  # spec.definition: what decided this fit

    def assign(self, features: pd.DataFrame) -> np.ndarray:
        check_inputs(features, self.assigner, f"scheme {self.name}")
        return self.assigner.assign(features)

    def segment(self, key: str) -> Segment:
        return {s.key: s for s in self.segments}[key]


def require_columns(features: pd.DataFrame, columns, where: str) -> None:
    missing = [c for c in columns if c not in features.columns]
    if missing:
        names = [str(c) for c in features.columns]
        hints = [
            f"{c} (did you mean {close[0]}?)" if (close := get_close_matches(c, names, 1)) else c
            for c in missing
        ]
        raise InputError(
            f"{where}: feature table lacks column(s) {', '.join(hints)} (it has "
            f"{len(features.columns)} columns): fix the name in the scheme file, or build the "
            "features with `custseg features`"
        )


def require_numbers(features: pd.DataFrame, columns, where: str) -> None:
    """An InputError naming any of `columns` that holds text instead of numbers (coercing it
    would silently turn every value into 'missing')."""
    text = [
        c
        for c in columns
        if not pd.api.types.is_numeric_dtype(features[c]) or pd.api.types.is_bool_dtype(features[c])
    ]
    text = [c for c in text if features[c].notna().any()]  # an all-missing column is just missing
    if text:
        kinds = ", ".join(f"{c} ({features[c].dtype})" for c in text)
        raise InputError(f"{where}: column(s) {kinds} must hold numbers")


def check_inputs(features: pd.DataFrame, assigner: Assigner, where: str) -> None:
    """Columns present, and numeric unless the assigner reads categories."""
    require_columns(features, assigner.columns, where)
    require_numbers(features, getattr(assigner, "numeric_columns", assigner.columns), where)


def numeric(features: pd.DataFrame, column: str) -> np.ndarray:
    """A feature column as float64; missing and infinite values become NaN."""
    values = features[column]
    kind = values.dtype.kind if isinstance(values.dtype, np.dtype) else ""
    if kind and kind in "iub":  # counts and flags: no NaN or infinity to mask (one cast)
        return values.to_numpy(dtype=np.float64)
    if values.dtype == np.float64:  # the common case, and cheap at one row a request
        values = values.to_numpy()
    else:
        values = pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    return np.where(np.isfinite(values), values, np.nan)
