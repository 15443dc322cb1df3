"""Customers simulated from the models' own stories, for parameter-recovery tests."""

from __future__ import annotations

import numpy as np
import pandas as pd


def bgnbd(n, r, alpha, a, b, weeks, seed=0, holdout_weeks=0.0) -> pd.DataFrame:
    """Customers from the BG/NBD story as a feature table (days). `weeks`: each customer's time
    since the first purchase (a number or one per customer). With `holdout_weeks`, the column
    `future` counts each customer's purchases in the following weeks."""
    rng = np.random.default_rng(seed)
    weeks = np.broadcast_to(np.asarray(weeks, float), (n,))
    end = weeks + holdout_weeks
    lam = rng.gamma(r, 1 / alpha, n)
    p = rng.beta(a, b, n)
    t, last, x, future = np.zeros(n), np.zeros(n), np.zeros(n, int), np.zeros(n, int)
    alive = np.ones(n, bool)
    for _ in range(400):  # steps over purchases, vectorised over customers
        nxt = t + rng.exponential(1 / np.maximum(lam, 1e-9))
        buy = alive & (nxt <= end)
        before = buy & (nxt <= weeks)
        x[before] += 1
        last[before] = nxt[before]
        future[buy & ~before] += 1
        t = np.where(buy, nxt, t)
        alive &= buy & (rng.random(n) >= p)  # after each purchase, drop out with p
    return pd.DataFrame(
        {
            "frequency_days": x + 1,
            "tenure_days": weeks * 7.0,
            "recency_days": (weeks - last) * 7.0,
            "future": future,
        }
    )


def gamma_gamma(n, p, q, v, seed=0) -> tuple[np.ndarray, np.ndarray]:
    """(repeat orders, mean order value) per customer from the Gamma-Gamma story: each
    customer's mean-value parameter nu ~ Gamma(q, rate v), each order ~ Gamma(p, rate nu)."""
    rng = np.random.default_rng(seed)
    x = rng.integers(1, 15, n)
    nu = rng.gamma(q, 1 / v, n)
    # the mean of x Gamma(p, nu) orders is Gamma(p x, rate nu x)
    m = rng.gamma(p * x, 1 / (nu * x))
    return x.astype(float), m
