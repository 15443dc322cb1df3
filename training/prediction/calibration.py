"""Probability calibration, isotonic or sigmoid (Platt), chosen on validation data.

The validation window is split in two halves: both methods are fitted on one and scored (log
loss) on the other; the better method is then refitted on the whole window.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss

EPS = 1e-6
TIE_BREAK = 1e-4  # survives scores rounded to 6 decimals; moves no probability by more


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, EPS, 1 - EPS)
    return np.log(p / (1 - p)).reshape(-1, 1)


@dataclass
class Calibrator:
    method: str  # isotonic | sigmoid | none
    model: object = None
    floor: float = EPS  # no probability below floor or above 1 - floor

    def clip(self, p: np.ndarray) -> np.ndarray:
        return np.clip(p, self.floor, 1 - self.floor)

    @classmethod
    def fit(cls, method: str, p: np.ndarray, y: np.ndarray) -> Calibrator:
        if len(np.unique(y)) < 2:
            return cls("none")
        # a step with no positive among n rows says "rare", not "impossible": 1 / (n + 1)
        floor = 1.0 / (len(y) + 1)
        if method == "isotonic":
            return cls(method, IsotonicRegression(out_of_bounds="clip").fit(p, y), floor)
        return cls(method, LogisticRegression(C=1e6).fit(_logit(p), y), floor)

    def __call__(self, p: np.ndarray) -> np.ndarray:
        if self.method == "none":
            return self.clip(p)
        if self.method == "isotonic":
            # isotonic maps are step functions (and the floor is one more step): the tiny
            # raw-score term, added after clipping, keeps the model's ordering inside each step
            # (ties would cost ranking quality, PR-AUC most, for nothing)
            return np.clip(self.clip(self.model.predict(p)) + TIE_BREAK * p, EPS, 1 - EPS)
        return self.clip(self.model.predict_proba(_logit(p))[:, 1])


def choose(p: np.ndarray, y: np.ndarray, seed: int = 0) -> tuple[Calibrator, dict[str, float]]:
    """The better calibrator by held-out log loss, refitted on all of (p, y); and the losses."""
    y = np.asarray(y, dtype=int)
    half = np.random.default_rng(seed).random(len(y)) < 0.5
    losses = {
        "uncalibrated": float(log_loss(y[~half], np.clip(p[~half], EPS, 1 - EPS), labels=[0, 1]))
    }
    for method in ("isotonic", "sigmoid"):
        cal = Calibrator.fit(method, p[half], y[half])
        losses[method] = float(log_loss(y[~half], cal(p[~half]), labels=[0, 1]))
    best = min(("isotonic", "sigmoid"), key=losses.__getitem__)
    return Calibrator.fit(best, p, y), losses
