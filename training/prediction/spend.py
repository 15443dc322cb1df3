"""Gamma-Gamma spend model (Fader, Hardie & Lee 2005, "RFM and CLV: using iso-value curves").

A customer's order values scatter around the customer's own mean, and those means vary across
customers as a Gamma distribution. Fitted by maximum likelihood on repeat customers (x >= 1
repeat orders, mean order value m), it shrinks each customer's observed mean towards the
population's: E[M | x, m] = p (v + x m) / (p x + q - 1), so a customer seen once or twice is
not taken at face value. The model assumes order value does not depend on how often a customer
orders; `value_frequency_correlation` measures that on the data so the user is told.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import gammaln

MAX_FIT_ROWS = 100_000


def _nll(params: np.ndarray, x: np.ndarray, m: np.ndarray) -> float:
    p, q, v = np.exp(params[0]), 1.0 + np.exp(params[1]), np.exp(params[2])
    px = p * x
    ll = (
        gammaln(px + q)
        - gammaln(px)
        - gammaln(q)
        + q * np.log(v)
        + (px - 1) * np.log(m)
        + px * np.log(x)
        - (px + q) * np.log(x * m + v)
    )
    return -float(np.sum(ll))


def repeat_customers(x: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Rows the model learns from: at least one repeat order and a positive mean value."""
    x, m = np.asarray(x, float), np.asarray(m, float)
    return (x > 0) & np.isfinite(m) & (m > 0)


class NoRepeatCustomers(ValueError):
    """Too few customers with a repeat order for the spend model to learn from."""


@dataclass(frozen=True)
class GammaGamma:
    p: float  # shape of one order's value around the customer's mean
    q: float  # shape of the customers' means (q > 1: the population mean exists)
    v: float  # scale of the customers' means

    @classmethod
    def fit(cls, x: np.ndarray, m: np.ndarray, seed: int = 0) -> GammaGamma:
        """`x`: repeat orders per customer; `m`: mean order value. Customers without a repeat
        order carry no information on their own scatter and are left out."""
        keep = repeat_customers(x, m)
        if keep.sum() < 10:
            raise NoRepeatCustomers(
                f"Gamma-Gamma needs at least 10 customers with a repeat order; the data has "
                f"{keep.sum()}"
            )
        x, m = np.asarray(x, float)[keep], np.asarray(m, float)[keep]
        if len(x) > MAX_FIT_ROWS:  # the likelihood is a sum: a large sample estimates it well
            rows = np.random.default_rng(seed).choice(len(x), MAX_FIT_ROWS, replace=False)
            x, m = x[rows], m[rows]
        scale = float(np.median(m))  # fit on values of order 1, for a well-conditioned search
        start = np.array([0.0, 0.0, 0.0])
        res = minimize(_nll, start, args=(x, m / scale), method="L-BFGS-B", bounds=[(-8, 8)] * 3)
        p, q, v = np.exp(res.x[0]), 1.0 + np.exp(res.x[1]), np.exp(res.x[2]) * scale
        return cls(float(p), float(q), float(v))

    @property
    def population_mean(self) -> float:
        return self.p * self.v / (self.q - 1)

    def expected_value(self, x: np.ndarray, m: np.ndarray) -> np.ndarray:
        """Expected value of the customer's future orders: the observed mean shrunk towards the
        population's, the more the fewer orders; the population mean without a repeat order."""
        x, m = np.asarray(x, float), np.asarray(m, float)
        known = repeat_customers(x, m)
        xs, ms = np.where(known, x, 0.0), np.where(known, m, 0.0)
        shrunk = self.p * (self.v + xs * ms) / (self.p * xs + self.q - 1)
        return np.where(known, shrunk, self.population_mean)


def value_frequency_correlation(x: np.ndarray, m: np.ndarray) -> float:
    """Pearson correlation of repeat orders and mean order value among repeat customers: near 0
    is what Gamma-Gamma assumes; far from it (|r| > 0.3, say) its values are biased."""
    keep = repeat_customers(x, m)
    if keep.sum() < 3:
        return float("nan")
    return float(np.corrcoef(np.asarray(x, float)[keep], np.asarray(m, float)[keep])[0, 1])
