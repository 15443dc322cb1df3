"""BG/NBD (Fader, Hardie & Lee 2005), fitted by maximum likelihood with scipy.

A buy-till-you-die model needs only each customer's history: x repeat purchase days, t_x the
time of the last purchase since the first, T the time since the first purchase. It is a
baseline (and two extra features for LightGBM): P(alive) and the probability of at least one
purchase in the next t days. Time is in weeks for a well-conditioned fit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import gammaln, hyp2f1

WEEK = 7.0
MAX_FIT_ROWS = 100_000


def history(features: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, t_x, T) from the feature table: repeat purchase days, last and first purchase age."""
    x = np.maximum(features["frequency_days"].to_numpy(float) - 1, 0)
    T = features["tenure_days"].to_numpy(float) / WEEK
    t_x = np.clip(T - features["recency_days"].to_numpy(float) / WEEK, 0, None)
    return x, t_x, T


def _nll(log_params: np.ndarray, x, t_x, T) -> float:
    r, alpha, a, b = np.exp(log_params)
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    a2 = gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x)
    a3 = -(r + x) * np.log(alpha + T)
    with np.errstate(divide="ignore"):
        a4 = np.where(
            x > 0,
            np.log(a) - np.log(np.maximum(b + x - 1, 1e-12)) - (r + x) * np.log(alpha + t_x),
            -np.inf,
        )
    return -float(np.sum(a1 + a2 + np.logaddexp(a3, a4)))


@dataclass(frozen=True)
class BGNBD:
    r: float
    alpha: float
    a: float
    b: float

    @classmethod
    def fit(cls, features: pd.DataFrame, seed: int = 0) -> BGNBD:
        x, t_x, T = history(features)
        if len(x) > MAX_FIT_ROWS:  # the likelihood is a sum: a large sample estimates it well
            rows = np.random.default_rng(seed).choice(len(x), MAX_FIT_ROWS, replace=False)
            x, t_x, T = x[rows], t_x[rows], T[rows]
        start = np.log([1.0, max(float(np.mean(T)), 1.0), 1.0, 1.0])
        res = minimize(_nll, start, args=(x, t_x, T), method="L-BFGS-B", bounds=[(-8, 8)] * 4)
        return cls(*np.exp(res.x).tolist())

    def p_alive(self, features: pd.DataFrame) -> np.ndarray:
        return self._p_alive(*history(features))

    def _p_alive(self, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
        ratio = (
            self.a
            / np.maximum(self.b + x - 1, 1e-12)
            * ((self.alpha + T) / (self.alpha + t_x)) ** (self.r + x)
        )
        return 1.0 / (1.0 + np.where(x > 0, ratio, 0.0))

    def p_purchase(self, features: pd.DataFrame, days: float) -> np.ndarray:
        """P(at least one purchase in the next `days`): P(alive) x P(a Poisson purchase with the
        posterior rate, Gamma(r + x, alpha + T)). Exact for BG/NBD: a customer can only drop
        out right after a purchase, so an alive customer's first purchase in the horizon comes
        before any dropout."""
        x, _, T = history(features)
        t = days / WEEK
        return self.p_alive(features) * (
            1.0 - ((self.alpha + T) / (self.alpha + T + t)) ** (self.r + x)
        )

    def expected_purchases(self, features: pd.DataFrame, days: float) -> np.ndarray:
        """Expected purchases in the next `days` while alive, weighted by P(alive)."""
        x, _, T = history(features)
        return self.p_alive(features) * (self.r + x) / (self.alpha + T) * (days / WEEK)

    def conditional_expected(self, features: pd.DataFrame, days) -> np.ndarray:
        """Expected orders (purchase days) in the next `days`, dropout included: Fader, Hardie
        & Lee (2005) eq. 10, P(alive) times the expected count of a customer alive now. `days`
        a number (one value per customer) or a 1-D array of horizons (a row per customer, a
        column per horizon: one pass, the same numbers as one call per horizon)."""
        x, t_x, T = history(features)
        if np.ndim(days):
            x, t_x, T = x[:, None], t_x[:, None], T[:, None]
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        t = np.asarray(days, dtype=float) / WEEK
        p_alive = self._p_alive(x, t_x, T)
        z = t / (alpha + T + t)
        term = 1.0 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp2f1(
            r + x, b + x, a + b + x - 1, z
        )
        scale = (a + b + x - 1) / (a - 1) if abs(a - 1) > 1e-9 else np.inf
        expected = p_alive * scale * term
        # a == 1 (or numerical trouble): the rate while alive, as expected_purchases does
        fallback = p_alive * (r + x) / (alpha + T) * t
        return np.where(np.isfinite(expected) & (expected >= 0), expected, fallback)

    def median_days_to_next(self, features: pd.DataFrame) -> np.ndarray:
        """Median days until the next order of a customer still active: the waiting time under
        the posterior rate Gamma(r + x, alpha + T) is Lomax; its median is always finite."""
        x, _, T = history(features)
        return (self.alpha + T) * (2.0 ** (1.0 / (self.r + x)) - 1.0) * WEEK
