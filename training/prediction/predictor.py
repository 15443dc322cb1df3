"""The fitted predictor: feature rows in, calibrated probability out.

It carries everything scoring needs — the model inputs and category levels, the BG/NBD
parameters for its two BTYD inputs, the LightGBM booster and the calibrator — so batch scoring,
the MLflow model and the serving endpoint all compute the same number.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import pandas as pd

from training.prediction.btyd import BGNBD
from training.prediction.calibration import Calibrator

CATEGORICAL = ("lifecycle_stage", "age_band", "gender", "province", "industry")
EXCLUDED = {"customer_id", "cutoff", "region"}  # region: 300+ cities, province carries it
TAG_PREFIX = "tag_"  # dynamic tag scores: descriptions of behaviour for people, not inputs (a
# caller of /predict would have to send every tag's score; the features they sum are inputs)
BTYD_COLUMNS = ("btyd_p_alive", "btyd_p_purchase")
EPS = 1e-6


DRIVER_LABELS = {  # the inputs that are not features of the registry
    "bg_nbd_prior": ("BG/NBD prior", "log-odds"),
    "btyd_p_alive": ("BG/NBD probability the customer is still active", "probability"),
    "btyd_p_purchase": ("BG/NBD probability of an order within the horizon", "probability"),
}


def driver_label(name: str) -> str:
    """An input of the model as an analyst reads it, with its unit: "BG/NBD prior (log-odds)",
    "days since the last order, as of the cutoff (days)"; a name the registry does not know
    is shown as it is."""
    from features.registry import describe

    if name in DRIVER_LABELS:
        text, unit = DRIVER_LABELS[name]
        return f"{text} ({unit})"
    found = describe([name])
    return f"{found[0].description} ({found[0].unit})" if found else name


def prior(target: str, p_purchase: np.ndarray) -> np.ndarray:
    """The BG/NBD log-odds of the target: LightGBM boosts from it (init score) and learns
    corrections, so it starts where the strongest baseline ends."""
    p = np.clip(p_purchase if target == "repurchase" else 1.0 - p_purchase, EPS, 1 - EPS)
    return np.log(p / (1 - p))


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def input_columns(features: pd.DataFrame) -> tuple[list[str], dict[str, list[str]]]:
    """Model inputs of a feature table: numeric columns, and categorical ones with their levels
    (sorted, so the codes are the same in every window and at serving time)."""
    numeric, categories = [], {}
    for col in features.columns:
        if col in EXCLUDED or col.startswith(TAG_PREFIX):
            continue
        if col in CATEGORICAL:
            categories[col] = sorted(features[col].dropna().astype(str).unique().tolist())
        elif pd.api.types.is_numeric_dtype(features[col]) and not pd.api.types.is_bool_dtype(
            features[col]
        ):
            numeric.append(col)
    return numeric, categories


def _numbers(features: pd.DataFrame, numeric: list[str]) -> np.ndarray:
    try:  # one conversion for the whole block (per-column conversion dominated a request)
        return features[numeric].to_numpy(dtype="float64", na_value=np.nan)
    except (TypeError, ValueError):  # a column with text: what cannot be read is missing
        return np.column_stack(
            [pd.to_numeric(features[c], errors="coerce").to_numpy("float64") for c in numeric]
        )


def design(
    features: pd.DataFrame,
    numeric: list[str],
    categories: dict[str, list[str]],
    btyd: BGNBD,
    days: int,
) -> pd.DataFrame:
    """The model matrix: numeric inputs as float, categories with fixed levels, BTYD inputs."""
    values = _numbers(features, numeric)
    parts = {c: values[:, i] for i, c in enumerate(numeric)}
    for col, levels in categories.items():
        parts[col] = pd.Categorical(
            features[col].astype("object").where(features[col].notna()), categories=levels
        )
    x = pd.DataFrame(parts, index=features.index)
    x["btyd_p_alive"] = btyd.p_alive(features)
    x["btyd_p_purchase"] = btyd.p_purchase(features, days)
    return x


@cache
def _levels(levels: tuple[str, ...]) -> pd.Index:
    return pd.Index(levels, dtype=object)


def design_array(
    features: pd.DataFrame,
    numeric: list[str],
    categories: dict[str, list[str]],
    btyd: BGNBD,
    days: int,
) -> np.ndarray:
    """`design` as one float matrix, the way LightGBM reads that frame: a category is its
    level's code (missing or unknown: NaN). Scoring skips building the frame: at one customer
    a request, the pandas categoricals cost more than the trees."""
    codes = [
        _levels(tuple(levels)).get_indexer(features[col].to_numpy(dtype=object))
        for col, levels in categories.items()
    ]
    return np.column_stack(
        [
            _numbers(features, numeric),
            *(np.where(c < 0, np.nan, c) for c in codes),
            btyd.p_alive(features),
            btyd.p_purchase(features, days),
        ]
    )


@dataclass
class Predictor:
    target: str  # repurchase | churn
    horizon_days: int
    numeric: list[str]
    categories: dict[str, list[str]]
    btyd: BGNBD  # fitted on the history as of the scoring date
    booster: object  # lightgbm.Booster
    calibrator: Calibrator
    params: dict
    boost_from_prior: bool = True
    trained_on: tuple = ()  # the labelled cutoffs the booster learned from
    kind = "lightgbm"

    @property
    def columns(self) -> list[str]:
        """Feature-table columns a caller must supply."""
        return [*self.numeric, *self.categories]

    def matrix(self, features: pd.DataFrame, btyd: BGNBD | None = None) -> pd.DataFrame:
        return design(features, self.numeric, self.categories, btyd or self.btyd, self.horizon_days)

    def raw(self, features: pd.DataFrame, btyd: BGNBD | None = None) -> np.ndarray:
        """The model's probability of the target before calibration: the BG/NBD prior plus the
        booster's correction, in log-odds."""
        m = design_array(
            features, self.numeric, self.categories, btyd or self.btyd, self.horizon_days
        )
        margin = self.booster.predict(m, raw_score=True, num_threads=1)
        if self.boost_from_prior:
            margin = margin + prior(self.target, m[:, -1])
        return sigmoid(margin)

    def predict_proba(self, features: pd.DataFrame, btyd: BGNBD | None = None) -> np.ndarray:
        return self.calibrator(self.raw(features, btyd))

    def contributions(self, features: pd.DataFrame, btyd: BGNBD | None = None) -> pd.DataFrame:
        """Per-row contributions in log-odds: the BG/NBD prior (`bg_nbd_prior`), each input's
        share of the booster's correction (LightGBM pred_contrib), and the bias last."""
        m = self.matrix(features, btyd)
        contrib = self.booster.predict(m, pred_contrib=True, num_threads=1)
        names = [*self.booster.feature_name(), "bias"]
        out = pd.DataFrame(contrib, columns=names, index=features.index)
        if self.boost_from_prior:
            out.insert(0, "bg_nbd_prior", prior(self.target, m["btyd_p_purchase"].to_numpy()))
        return out
