"""The money side: Gamma-Gamma spend, BG/NBD expected orders and the next order, recovered from
data simulated with known parameters."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests import simulate
from training.prediction.btyd import BGNBD
from training.prediction.spend import GammaGamma, value_frequency_correlation

CDNOW_BGNBD = dict(r=0.243, alpha=4.414, a=0.793, b=2.426)  # Fader, Hardie & Lee (2005)
CDNOW_GG = dict(p=6.25, q=3.74, v=15.44)  # Fader, Hardie & Lee (2005), "RFM and CLV"


def test_gamma_gamma_recovers_the_published_cdnow_fit():
    x, m = simulate.gamma_gamma(20_000, seed=3, **CDNOW_GG)
    fitted = GammaGamma.fit(x, m)
    for k, v in CDNOW_GG.items():
        assert getattr(fitted, k) == pytest.approx(v, rel=0.10), k
    # simulated independently of frequency: what the model assumes
    assert abs(value_frequency_correlation(x, m)) < 0.05


def test_expected_order_value_shrinks_towards_the_population_mean():
    model = GammaGamma(**CDNOW_GG)
    x = np.array([1, 10, 1, 10, 0])
    m = np.array([100.0, 100.0, 5.0, 5.0, np.nan])
    e = model.expected_value(x, m)
    mean = model.population_mean
    assert e[4] == pytest.approx(mean)  # no repeat order: the population's mean
    assert mean < e[0] < e[1] < 100  # a big spender's mean, shrunk, less so with more orders
    assert e[2] > e[3] > 5  # and a small one's, pulled up
    assert np.all(np.diff(model.expected_value(np.full(5, 3), np.linspace(10, 90, 5))) > 0)


def test_bgnbd_expected_orders_match_a_simulated_holdout():
    """The classic BTYD check: simulated from the CDNOW fit over 27-39 weeks, the expected
    orders of the next 39 weeks (dropout included) match what the customers then did, in total
    and by number of past orders."""
    weeks = np.random.default_rng(1).uniform(27, 39, 40_000)
    data = simulate.bgnbd(40_000, weeks=weeks, seed=4, holdout_weeks=39, **CDNOW_BGNBD)
    model = BGNBD(**CDNOW_BGNBD)
    expected = model.conditional_expected(data, 39 * 7)
    assert expected.sum() == pytest.approx(data["future"].sum(), rel=0.05)
    groups = np.minimum(data["frequency_days"] - 1, 4)
    by = pd.DataFrame({"e": expected, "a": data["future"], "g": groups}).groupby("g").mean()
    assert np.allclose(by["e"], by["a"], rtol=0.15), by
    # never more than the rate of a customer certain to be alive
    assert np.all(expected <= model.expected_purchases(data, 39 * 7) / model.p_alive(data) + 1e-9)


def test_next_order_comes_sooner_for_frequent_customers():
    model = BGNBD(**CDNOW_BGNBD)
    f = pd.DataFrame(
        {"frequency_days": [1, 3, 10], "tenure_days": [200] * 3, "recency_days": [10] * 3}
    )
    days = model.median_days_to_next(f)
    assert np.all(days > 0) and days[0] > days[1] > days[2]
