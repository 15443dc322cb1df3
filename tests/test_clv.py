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


# -- the value model: CLV, candidates on the held-out window ------------------------------------
def _history(frequency_days, net_monetary, recency_days=7.0, tenure_days=300.0):
    n = len(frequency_days)
    return pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(n)],
            "frequency_days": np.asarray(frequency_days, float),
            "net_monetary": np.asarray(net_monetary, float),
            "recency_days": np.full(n, recency_days),
            "tenure_days": np.full(n, tenure_days),
            "interpurchase_mean_days": np.full(n, 30.0),
        }
    )


def _value_model(horizon=365, discount=0.01):
    from training.prediction.value import ValueConfig, ValueModel

    return ValueModel(BGNBD(**CDNOW_BGNBD), GammaGamma(**CDNOW_GG), ValueConfig(horizon, discount))


def test_clv_rises_with_frequency_and_with_order_value_for_a_recent_customer():
    model = _value_model()
    orders = np.arange(2, 30)
    more_orders = model.clv(_history(orders, 50.0 * orders))  # same 50 a purchase day
    assert np.all(np.diff(more_orders) > 0)
    spend = np.linspace(20, 2000, 30)
    higher_value = model.clv(_history(np.full(30, 5), spend))
    assert np.all(np.diff(higher_value) > 0)


def test_clv_is_discounted_and_bounded_by_the_undiscounted_spend():
    table = _history(np.arange(1, 20), 40.0 * np.arange(1, 20))
    plain, discounted = _value_model(discount=0.0), _value_model(discount=0.02)
    undiscounted = plain.expected_orders(table) * plain.expected_order_value(table)
    assert plain.clv(table) == pytest.approx(undiscounted, rel=1e-9)
    assert np.all(discounted.clv(table) < plain.clv(table))


def test_the_value_table_dates_the_next_order_after_the_cutoff():
    from datetime import date

    table = _value_model().table(
        _history(np.arange(1, 12), 30.0 * np.arange(1, 12)), date(2026, 3, 31)
    )
    assert (pd.to_datetime(table["next_order_date"]) >= pd.Timestamp("2026-03-31")).all()
    assert table["p_alive"].between(0, 1).all() and (table["expected_orders"] >= 0).all()
    assert list(table.columns[:4]) == ["clv", "expected_orders", "expected_order_value", "p_alive"]


@pytest.fixture(scope="module")
def value_fit(sample_dir):
    """The value model of the shared sample, 120-day horizon (labelled windows fit)."""
    from datetime import date

    from features.cleaning import CleaningConfig
    from features.definitions import FeatureConfig
    from features.stage import features_from_log
    from training.prediction.config import PredictionConfig
    from training.prediction.stage import fit_value_only

    run = features_from_log(
        sample_dir / "transactions.csv", None, {}, CleaningConfig(), FeatureConfig(),
        date(2026, 6, 30),
    )  # fmt: skip
    cfg = PredictionConfig(clv_days=120)
    value = fit_value_only(
        run.transactions, run.customers, run.result.transactions, run.table, run.as_of,
        run.cleaning, run.features_cfg, cfg,
    )  # fmt: skip
    return run, value


def test_the_value_model_is_the_best_ranking_of_the_held_out_spend(value_fit):
    from training.prediction.clv import BTYD_GG, LIGHTGBM, METRIC, RFM_REGRESSION, SPEND_RATE

    run, value = value_fit
    assert {LIGHTGBM, BTYD_GG, SPEND_RATE, RFM_REGRESSION} <= set(value.candidates)
    best = max(value.candidates, key=lambda k: value.candidates[k][METRIC])
    assert value.chosen == best and value.predictor.kind == best
    # the refit learned from the freshest labels (the test cutoff), the held-out one did not
    assert value.plan.test in value.predictor.trained_on
    assert value.held_out.trained_on == () or max(value.held_out.trained_on) < value.plan.test
    # on the generated sample the supervised model ranks far better than history alone
    assert value.candidates[value.chosen][METRIC] > value.candidates[SPEND_RATE][METRIC] + 0.05
    clv = value.predictor.clv(run.table)
    assert len(clv) == len(run.table) and np.isfinite(clv).all() and (clv >= 0).all()
    assert value.deciles["customers"].sum() == len(value.test[1])


def test_a_value_champion_is_replaced_only_by_a_better_ranking(value_fit):
    from dataclasses import replace

    from training.prediction.value_tracking import decide

    _, value = value_fit
    assert decide(value).promote  # no champion yet
    same = decide(value, value.held_out, "3")
    assert not same.promote and "champion v3" in same.reason  # a tie keeps the champion
    worse = replace(value.held_out, kind="spend_rate")
    if value.held_out.kind != "spend_rate":
        assert decide(value, worse, "2").promote
