"""What a user gets without us, scored on the same held-out window as the model.

- recency rule: the more days since the last order, the less likely a repurchase (the more
  likely churn); turned into probabilities by an isotonic map learned on the validation window;
- logistic regression on log recency, frequency and monetary, fitted on the training windows;
- BG/NBD, fitted on each cutoff's own history (no labels at all).

The logistic and BG/NBD probabilities are calibrated on the validation window exactly as the
model's are, so a log-loss or Brier gate compares like with like.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from training.prediction import calibration
from training.prediction.btyd import BGNBD

RFM = ("recency_days", "frequency_days", "monetary")


def _rfm(features: pd.DataFrame) -> np.ndarray:
    return np.log1p(np.column_stack([features[c].to_numpy(float) for c in RFM]).clip(min=0))


def recency_rule(target: str, valid: tuple, test_x: pd.DataFrame) -> np.ndarray:
    xv, yv = valid
    increasing = target == "churn"
    iso = IsotonicRegression(
        increasing=increasing, out_of_bounds="clip", y_min=1e-6, y_max=1 - 1e-6
    )
    iso.fit(xv["recency_days"].to_numpy(float), yv)
    return iso.predict(test_x["recency_days"].to_numpy(float))


def logistic_rfm(train: tuple, x: pd.DataFrame) -> np.ndarray:
    xs, y = train
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    model.fit(_rfm(xs), y)
    return model.predict_proba(_rfm(x))[:, 1]


def bgnbd(target: str, horizon: int, x: pd.DataFrame, fit: BGNBD) -> np.ndarray:
    buy = fit.p_purchase(x, horizon)
    return buy if target == "repurchase" else 1.0 - buy


def score_all(
    target: str, horizon: int, data: dict, fits: dict[date, BGNBD], valid: date, test: date
) -> dict[str, np.ndarray]:
    """Each baseline's probabilities on the test window."""
    (xv, yv), test_x = data["valid"], data["test"][0]
    out = {"recency_rule": recency_rule(target, data["valid"], test_x)}
    raw = {
        "logistic_rfm": (logistic_rfm(data["train"], xv), logistic_rfm(data["train"], test_x)),
        "bg_nbd": (
            bgnbd(target, horizon, xv, fits[valid]),
            bgnbd(target, horizon, test_x, fits[test]),
        ),
    }
    for name, (on_valid, on_test) in raw.items():
        calibrator, _ = calibration.choose(on_valid, yv)
        out[name] = calibrator(on_test)
    return out
