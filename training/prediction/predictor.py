"""The fitted predictor: feature rows in, calibrated probability out.

It carries everything scoring needs — the model inputs and category levels, the BG/NBD
parameters for its two BTYD inputs, the LightGBM booster and the calibrator — so batch scoring,
the MLflow model and the serving endpoint all compute the same number.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from training.prediction.btyd import BGNBD
from training.prediction.calibration import Calibrator

CATEGORICAL = ("lifecycle_stage", "age_band", "gender", "province", "industry")
EXCLUDED = {"customer_id", "cutoff", "region"}  # region: 300+ cities, province carries it
BTYD_COLUMNS = ("btyd_p_alive", "btyd_p_purchase")


def input_columns(features: pd.DataFrame) -> tuple[list[str], dict[str, list[str]]]:
    """Model inputs of a feature table: numeric columns, and categorical ones with their levels
    (sorted, so the codes are the same in every window and at serving time)."""
    numeric, categories = [], {}
    for col in features.columns:
        if col in EXCLUDED:
            continue
        if col in CATEGORICAL:
            categories[col] = sorted(features[col].dropna().astype(str).unique().tolist())
        elif pd.api.types.is_numeric_dtype(features[col]) and not pd.api.types.is_bool_dtype(
            features[col]
        ):
            numeric.append(col)
    return numeric, categories


def design(
    features: pd.DataFrame,
    numeric: list[str],
    categories: dict[str, list[str]],
    btyd: BGNBD,
    days: int,
) -> pd.DataFrame:
    """The model matrix: numeric inputs as float, categories with fixed levels, BTYD inputs."""
    x = pd.DataFrame(
        {c: pd.to_numeric(features[c], errors="coerce").astype("float64") for c in numeric},
        index=features.index,
    )
    for col, levels in categories.items():
        x[col] = pd.Categorical(
            features[col].astype("object").where(features[col].notna()), categories=levels
        )
    x["btyd_p_alive"] = btyd.p_alive(features)
    x["btyd_p_purchase"] = btyd.p_purchase(features, days)
    return x


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

    @property
    def columns(self) -> list[str]:
        """Feature-table columns a caller must supply."""
        return [*self.numeric, *self.categories]

    def matrix(self, features: pd.DataFrame, btyd: BGNBD | None = None) -> pd.DataFrame:
        return design(features, self.numeric, self.categories, btyd or self.btyd, self.horizon_days)

    def raw(self, features: pd.DataFrame, btyd: BGNBD | None = None) -> np.ndarray:
        """The booster's probability of the target, before calibration."""
        return self.booster.predict(self.matrix(features, btyd), num_threads=1)

    def predict_proba(self, features: pd.DataFrame, btyd: BGNBD | None = None) -> np.ndarray:
        return self.calibrator(self.raw(features, btyd))

    def contributions(self, features: pd.DataFrame, btyd: BGNBD | None = None) -> pd.DataFrame:
        """Per-row feature contributions (LightGBM pred_contrib, log-odds), bias column last."""
        contrib = self.booster.predict(
            self.matrix(features, btyd), pred_contrib=True, num_threads=1
        )
        names = [*self.booster.feature_name(), "bias"]
        return pd.DataFrame(contrib, columns=names, index=features.index)
