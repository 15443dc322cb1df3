"""What a user gets without us, as models that can be chosen, registered and served.

- recency rule: the more days since the last order, the less likely a repurchase (the more
  likely churn); turned into probabilities by an isotonic map learned on labelled customers;
- logistic regression on log recency, frequency and monetary, fitted on the training windows;
- BG/NBD, fitted on each cutoff's own history (no labels at all).

On the held-out test window each is fitted exactly as the model is: labels from the training
and validation windows only, and the logistic and BG/NBD probabilities calibrated on the
validation window as the model's are, so a log-loss or Brier gate compares like with like.
When one wins, `refit` fits it again on the freshest labels (`WindowPlan.refit`) for scoring.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pandas as pd
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from training.prediction import calibration
from training.prediction.btyd import BGNBD
from training.prediction.calibration import Calibrator
from training.prediction.dataset import pooled

RFM = ("recency_days", "frequency_days", "monetary")
HISTORY = ("frequency_days", "tenure_days", "recency_days")  # what BG/NBD reads


def _rfm(features: pd.DataFrame) -> np.ndarray:
    return np.log1p(np.column_stack([features[c].to_numpy(float) for c in RFM]).clip(min=0))


@dataclass
class BaselinePredictor:
    """A baseline with the LightGBM Predictor's interface (columns, predict_proba), so the
    registry, batch scoring and the service treat every model alike."""

    target: str
    horizon_days: int
    kind: str  # recency_rule | logistic_rfm | bg_nbd
    btyd: BGNBD | None = None  # bg_nbd: fitted on the history as of the scoring date
    model: object = None  # recency_rule: an isotonic map; logistic_rfm: a scikit-learn pipeline
    calibrator: Calibrator = field(default_factory=lambda: Calibrator("none"))
    trained_on: tuple[date, ...] = ()  # the labelled cutoffs it learned from

    @property
    def numeric(self) -> list[str]:
        return {"recency_rule": ["recency_days"], "logistic_rfm": list(RFM)}.get(
            self.kind, list(HISTORY)
        )

    @property
    def categories(self) -> dict[str, list[str]]:
        return {}

    @property
    def columns(self) -> list[str]:
        return self.numeric

    def raw(self, features: pd.DataFrame, btyd: BGNBD | None = None) -> np.ndarray:
        if self.kind == "recency_rule":
            return self.model.predict(features["recency_days"].to_numpy(float))
        if self.kind == "logistic_rfm":
            return self.model.predict_proba(_rfm(features))[:, 1]
        buy = (btyd or self.btyd).p_purchase(features, self.horizon_days)
        return buy if self.target == "repurchase" else 1.0 - buy

    def predict_proba(self, features: pd.DataFrame, btyd: BGNBD | None = None) -> np.ndarray:
        return self.calibrator(self.raw(features, btyd))


def recency_rule(target: str, horizon: int, x: pd.DataFrame, y: np.ndarray, cutoffs=()):
    iso = IsotonicRegression(
        increasing=target == "churn", out_of_bounds="clip", y_min=1e-6, y_max=1 - 1e-6
    )
    iso.fit(x["recency_days"].to_numpy(float), y)
    return BaselinePredictor(target, horizon, "recency_rule", model=iso, trained_on=tuple(cutoffs))


def logistic_rfm(target: str, horizon: int, x: pd.DataFrame, y: np.ndarray, cutoffs=()):
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    model.fit(_rfm(x), y)
    return BaselinePredictor(
        target, horizon, "logistic_rfm", model=model, trained_on=tuple(cutoffs)
    )


def bg_nbd(target: str, horizon: int, fit: BGNBD) -> BaselinePredictor:
    return BaselinePredictor(target, horizon, "bg_nbd", btyd=fit)


def held_out(
    target: str, horizon: int, data: dict, fits: dict[date, BGNBD], plan
) -> dict[str, tuple[BaselinePredictor, np.ndarray]]:
    """Each baseline fitted without the test window, and its probabilities on it."""
    (xv, yv), (xt, _) = data["valid"], data["test"]
    rule = recency_rule(target, horizon, xv, yv, (plan.valid,))
    logistic = logistic_rfm(target, horizon, *data["train"], plan.train)
    bgnbd = bg_nbd(target, horizon, fits[plan.test])
    out = {"recency_rule": (rule, rule.predict_proba(xt))}
    for model in (logistic, bgnbd):
        model.calibrator, _ = calibration.choose(model.raw(xv, fits[plan.valid]), yv)
        out[model.kind] = (model, model.predict_proba(xt, fits[plan.test]))
    return out


def refit(
    model: BaselinePredictor, data: dict, fits: dict[date, BGNBD], plan, scoring_fit: BGNBD
) -> BaselinePredictor:
    """The baseline again on the freshest labels: the rule and BG/NBD's calibration learn from
    the test window (BG/NBD itself from the history as of the scoring date), the logistic
    regression from every labelled window (keeping its validation calibration)."""
    xt, yt = data["test"]
    if model.kind == "recency_rule":
        return recency_rule(model.target, model.horizon_days, xt, yt, (plan.test,))
    if model.kind == "logistic_rfm":
        fresh = logistic_rfm(model.target, model.horizon_days, *pooled(data), plan.refit)
        fresh.calibrator = model.calibrator
        return fresh
    fresh = bg_nbd(model.target, model.horizon_days, scoring_fit)
    fresh.calibrator, _ = calibration.choose(fresh.raw(xt, fits[plan.test]), yt)
    fresh.trained_on = (plan.test,)
    return fresh
