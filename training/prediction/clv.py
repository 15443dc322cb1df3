"""Fit the value model: what each customer will spend over the CLV horizon.

Candidates, compared on the held-out window's actual spend (the test cutoff as_of - h, labels
ending at the as-of date) on the same customers:

- `bg_nbd_gamma_gamma`: the textbook CLV (training.prediction.value), no labels needed;
- `lightgbm`: a Tweedie regression of the next horizon's spend on the backtest windows, with the
  BTYD figures among its inputs, early-stopped on the validation window;
- baselines: the spend rate so far extrapolated, and a linear regression on log R, F, M.

The best ranking (Spearman of predicted vs actual spend) wins, is refitted on every labelled
cutoff and scores. Expected orders, P(alive) and the next order's date always come from BG/NBD:
they are counts and times, which the regression does not model. A log too short for labelled
windows gets BG/NBD x Gamma-Gamma alone (measured on the test window when the log allows).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
import pandas as pd

from training.prediction.dataset import VALID_SHARE, Backtest, _held_out
from training.prediction.predictor import _levels, _numbers, input_columns
from training.prediction.spend import NoRepeatCustomers
from training.prediction.value import (
    ValueConfig,
    ValueModel,
    actual_spend,
    by_decile,
    ranking_metrics,
)
from training.prediction.windows import OVERLAPPING, WindowPlan

BTYD_GG, LIGHTGBM, SPEND_RATE, RFM_REGRESSION, BLEND = (
    "bg_nbd_gamma_gamma",
    "lightgbm",
    "spend_rate",
    "rfm_regression",
    "blend",
)
LABELS = {
    BTYD_GG: "BG/NBD x Gamma-Gamma",
    LIGHTGBM: "LightGBM (Tweedie)",
    SPEND_RATE: "spend rate extrapolated",
    RFM_REGRESSION: "RFM regression",
    BLEND: "blend (mean of LightGBM and RFM regression)",
}
METRIC = "spearman"  # what chooses the model: the ranking the tiers are cut from
RFM = ("recency_days", "frequency_days", "net_monetary")
VALUE_INPUTS = ("value_btyd_spend", "value_p_purchase", "value_order_value")
PARAMS = {
    "objective": "tweedie",
    "tweedie_variance_power": 1.5,
    "learning_rate": 0.03,
    "num_leaves": 15,
    "min_child_samples": 50,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
}
__all__ = ["ValuePredictor", "ValueResult", "fit_value", "LABELS", "VALUE_INPUTS"]


def _rfm(features: pd.DataFrame) -> np.ndarray:
    return np.log1p(np.column_stack([features[c].to_numpy(float) for c in RFM]).clip(min=0))


@dataclass
class ValuePredictor:
    """Feature rows in, the value table out (`table`): the chosen model's CLV with BG/NBD's
    expected orders, P(alive) and next order. `btyd` is fitted on the history as of the scoring
    date; `value` overrides it for another cutoff (the held-out window)."""

    kind: str
    btyd: ValueModel
    numeric: list[str] = field(default_factory=list)  # lightgbm inputs
    categories: dict[str, list[str]] = field(default_factory=dict)
    booster: object = None  # lightgbm
    linear: tuple[np.ndarray, float] | None = None  # rfm_regression: (coefficients, intercept)
    trained_on: tuple[date, ...] = ()
    params: dict = field(default_factory=dict)
    parts: tuple = ()  # blend: the models it averages

    @property
    def horizon_days(self) -> int:
        return self.btyd.cfg.horizon_days

    @property
    def columns(self) -> list[str]:
        """Feature-table columns a caller must supply."""
        base = ["recency_days", "frequency_days", "tenure_days", "net_monetary"]
        parts = [c for p in self.parts for c in p.columns]
        return list(dict.fromkeys([*base, "interpurchase_mean_days", *self.numeric,
                                   *self.categories, *parts]))  # fmt: skip

    def spend(
        self, features: pd.DataFrame, value: ValueModel | None = None, btyd=None
    ) -> np.ndarray:
        """Expected net spend over the horizon, undiscounted. `btyd`: (expected orders over
        the horizon, expected order value) of `value` for these rows, when computed already."""
        v = value or self.btyd
        h = v.cfg.horizon_days
        if self.kind == BTYD_GG:
            orders, order_value = btyd or (
                v.expected_orders(features, h),
                v.expected_order_value(features),
            )
            return orders * order_value
        if self.kind == SPEND_RATE:
            tenure = np.maximum(features["tenure_days"].to_numpy(float), 30.4375)
            return np.maximum(features["net_monetary"].to_numpy(float), 0) / tenure * h
        if self.kind == RFM_REGRESSION:
            coef, intercept = self.linear
            return np.maximum(_rfm(features) @ coef + intercept, 0)
        if self.kind == BLEND:
            return np.mean([p.spend(features, v, btyd) for p in self.parts], axis=0)
        return self.booster.predict(value_design_array(features, self, v, btyd), num_threads=1)

    def clv(self, features: pd.DataFrame, value: ValueModel | None = None, btyd=None) -> np.ndarray:
        """Discounted expected spend: the chosen model's total spread over the horizon as
        BG/NBD expects the orders to come, each month discounted. `btyd`: `value.parts` of
        these rows, when computed already (each costs a hypergeometric function per month)."""
        v = value or self.btyd
        orders, order_value, discounted = btyd or v.parts(features)
        if self.kind == BTYD_GG:
            return discounted
        spend = self.spend(features, v, (orders, order_value))
        undiscounted = orders * order_value
        with np.errstate(divide="ignore", invalid="ignore"):
            factor = np.where(undiscounted > 0, discounted / undiscounted, 1.0)
        return spend * np.clip(factor, 0, 1)

    def table(self, features: pd.DataFrame, as_of: date) -> pd.DataFrame:
        parts = self.btyd.parts(features)  # once: the table and the chosen model's clv read it
        out = self.btyd.table(features, as_of, parts)
        if self.kind != BTYD_GG:  # BG/NBD x Gamma-Gamma's clv is the table's already
            out["clv"] = self.clv(features, self.btyd, parts).round(2)
        return out


def value_design(features: pd.DataFrame, p: ValuePredictor, value: ValueModel) -> pd.DataFrame:
    """The regression's matrix: numeric inputs, categories with fixed levels, the BTYD figures."""
    parts = {c: pd.to_numeric(features[c], errors="coerce").to_numpy(float) for c in p.numeric}
    for col, levels in p.categories.items():
        parts[col] = pd.Categorical(features[col].astype("object"), categories=levels)
    x = pd.DataFrame(parts, index=features.index)
    h = value.cfg.horizon_days
    x["value_btyd_spend"] = value.expected_orders(features, h) * value.expected_order_value(
        features
    )
    x["value_p_purchase"] = value.btyd.p_purchase(features, h)
    x["value_order_value"] = value.expected_order_value(features)
    return x


def value_design_array(
    features: pd.DataFrame, p: ValuePredictor, value: ValueModel, btyd=None
) -> np.ndarray:
    """`value_design` as one float matrix, the way LightGBM reads that frame (a category is its
    level's code, missing or unknown NaN): scoring skips the pandas frame, which cost more than
    the trees at one customer a request (as `predictor.design_array`). `btyd`: (expected
    orders over the horizon, expected order value) of these rows, when computed already."""
    codes = [
        _levels(tuple(levels)).get_indexer(features[col].to_numpy(dtype=object))
        for col, levels in p.categories.items()
    ]
    h = value.cfg.horizon_days
    orders, order_value = btyd or (value.expected_orders(features, h), None)
    if order_value is None:
        order_value = value.expected_order_value(features)
    numbers = _numbers(features, p.numeric) if p.numeric else np.empty((len(features), 0))
    return np.column_stack(
        [
            numbers,
            *(np.where(c < 0, np.nan, c) for c in codes),
            orders * order_value,
            value.btyd.p_purchase(features, h),
            order_value,
        ]
    )


@dataclass
class ValueResult:
    plan: WindowPlan
    predictor: ValuePredictor  # the chosen model refitted on every labelled cutoff: what scores
    chosen: str
    candidates: dict[str, dict[str, float]] = field(default_factory=dict)  # on the test window
    held_out: ValuePredictor | None = None  # the chosen model fitted without the test window
    deciles: pd.DataFrame = field(default_factory=pd.DataFrame)  # chosen, test window
    orders_check: pd.DataFrame = field(default_factory=pd.DataFrame)  # by past frequency
    correlation: float = float("nan")  # repeat orders vs order value (Gamma-Gamma assumes ~0)
    test: tuple = ()  # (features, actual spend, ValueModel at the test cutoff)
    sizes: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    decision: object = None
    served: object = None
    served_label: str = ""
    example: object = None

    def scored_by(self) -> tuple[ValuePredictor, str]:
        return self.served or self.predictor, self.served_label or LABELS[self.chosen]


def spend_labels(transactions: pd.DataFrame, features: pd.DataFrame, cutoff: date, days: int):
    """Each customer's net spend in (cutoff, cutoff + days]: refunds count, negatives are 0."""
    spent = actual_spend(transactions, cutoff, days)
    return np.maximum(spent.reindex(features["customer_id"]).fillna(0.0).to_numpy(), 0.0)


def fit_value(
    plan: WindowPlan,
    backtest: Backtest,
    transactions: pd.DataFrame,
    scoring_features: pd.DataFrame,
    cfg,
) -> ValueResult:
    """`plan`: the value horizon's windows (`plan.mode` unsupervised: BG/NBD x Gamma-Gamma only).
    `transactions`: the clean log, where the spend labels come from."""
    vcfg = ValueConfig(plan.horizon_days, cfg.monthly_discount)
    scoring = ValueModel.fit(scoring_features, vcfg, cfg.seed)
    result = ValueResult(plan, ValuePredictor(BTYD_GG, scoring), BTYD_GG)
    result.correlation, result.example = scoring.correlation, scoring_features.head(3)
    if math.isfinite(scoring.correlation) and abs(scoring.correlation) > 0.3:
        result.notes.append(
            f"value: repeat orders and order value correlate ({scoring.correlation:+.2f}); "
            "Gamma-Gamma assumes they do not, so its order values are biased"
        )
    if plan.test is None or plan.test not in backtest.features:
        return result
    h = plan.horizon_days
    try:
        fits = {d: ValueModel.fit(backtest.features[d], vcfg, cfg.seed) for d in plan.cutoffs}
    except NoRepeatCustomers as exc:  # an early cutoff with too few repeat customers
        result.notes.append(f"value: no held-out comparison ({exc} at an earlier cutoff)")
        return result
    xt = backtest.features[plan.test]
    yt = spend_labels(transactions, xt, plan.test, h)
    models = {
        BTYD_GG: ValuePredictor(BTYD_GG, scoring),
        SPEND_RATE: ValuePredictor(SPEND_RATE, scoring),
    }
    if plan.valid is not None:
        xv = backtest.features[plan.valid]
        models[RFM_REGRESSION] = _rfm_regression(xv, spend_labels(transactions, xv, plan.valid, h),
                                                 scoring, (plan.valid,))  # fmt: skip
        if plan.train:
            models = {
                LIGHTGBM: _lightgbm(plan, backtest, transactions, fits, scoring, cfg)
            } | models
            parts = (models[LIGHTGBM], models[RFM_REGRESSION])
            models[BLEND] = ValuePredictor(BLEND, scoring, parts=parts, trained_on=plan.train)
    predicted = {k: m.spend(xt, fits[plan.test]) for k, m in models.items()}
    result.candidates = {k: ranking_metrics(p, yt) for k, p in predicted.items()}
    finite = {k: m[METRIC] for k, m in result.candidates.items() if math.isfinite(m[METRIC])}
    result.chosen = max(finite, key=finite.get) if finite else BTYD_GG
    result.held_out = models[result.chosen]
    result.deciles = by_decile(predicted[result.chosen], yt)
    result.orders_check = orders_by_frequency(transactions, xt, fits[plan.test], plan.test, h)
    result.test = (xt, yt, fits[plan.test])
    result.sizes = {"test": len(yt)}
    result.predictor = _refit(result.held_out, plan, backtest, transactions, fits, scoring, cfg)
    return result


def _rfm_regression(x, y, scoring: ValueModel, trained_on) -> ValuePredictor:
    from sklearn.linear_model import LinearRegression

    lr = LinearRegression().fit(_rfm(x), y)
    return ValuePredictor(RFM_REGRESSION, scoring, linear=(lr.coef_, float(lr.intercept_)),
                          trained_on=tuple(trained_on))  # fmt: skip


def _stack(backtest, transactions, cutoffs, fits, p: ValuePredictor, h: int):
    xs, ys = [], []
    for d in cutoffs:
        f = backtest.features[d]
        xs.append(value_design(f, p, fits[d]))
        ys.append(spend_labels(transactions, f, d, h))
    ids = pd.concat([backtest.features[d]["customer_id"] for d in cutoffs], ignore_index=True)
    return pd.concat(xs, ignore_index=True), np.concatenate(ys), ids


def _lightgbm(plan, backtest, transactions, fits, scoring, cfg) -> ValuePredictor:
    """Trained on the training cutoffs, early-stopped on the validation cutoff's spend (in
    overlapping mode on the customers `dataset.split` holds out, as the classifiers do)."""
    import lightgbm as lgb

    from training.prediction.lgbm import BASE_PARAMS, DATASET_PARAMS

    numeric, categories = input_columns(backtest.features[plan.train[-1]])
    p = ValuePredictor(LIGHTGBM, scoring, numeric, categories)
    h = plan.horizon_days
    x, y, ids = _stack(backtest, transactions, plan.cutoffs[:-1], fits, p, h)
    n_valid = len(backtest.features[plan.valid])
    is_valid = np.zeros(len(y), bool)
    is_valid[-n_valid:] = True
    if plan.mode == OVERLAPPING:  # neighbouring labels overlap: hold customers out instead
        held = _held_out(ids).to_numpy()
        is_valid = held & is_valid
        keep = ~held
    else:
        keep = ~is_valid
    params = {**BASE_PARAMS, **DATASET_PARAMS, **PARAMS, "metric": "tweedie", "seed": cfg.seed}
    dtrain = lgb.Dataset(x[keep], y[keep], params=DATASET_PARAMS)
    dvalid = lgb.Dataset(x[is_valid], y[is_valid], reference=dtrain)
    p.booster = lgb.train(
        params, dtrain, num_boost_round=cfg.max_boost_rounds, valid_sets=[dvalid],
        callbacks=[lgb.early_stopping(cfg.early_stopping_rounds, verbose=False)],
    )  # fmt: skip
    p.params = {**PARAMS, "best_iteration": int(p.booster.best_iteration or 1),
                "valid_share": VALID_SHARE if plan.mode == OVERLAPPING else 1.0}  # fmt: skip
    p.trained_on = plan.train
    return p


def _refit(held_out: ValuePredictor, plan, backtest, transactions, fits, scoring, cfg):
    """The chosen model again on every labelled cutoff (the freshest, as_of - h, included)."""
    import lightgbm as lgb

    from training.prediction.lgbm import BASE_PARAMS, DATASET_PARAMS

    h = plan.horizon_days
    if held_out.kind == BLEND:
        parts = tuple(
            _refit(p, plan, backtest, transactions, fits, scoring, cfg) for p in held_out.parts
        )
        trained_on = tuple(sorted({d for p in parts for d in p.trained_on}))
        return ValuePredictor(BLEND, scoring, parts=parts, trained_on=trained_on)
    if held_out.kind == RFM_REGRESSION:
        xt = backtest.features[plan.test]
        return _rfm_regression(xt, spend_labels(transactions, xt, plan.test, h), scoring,
                               (plan.test,))  # fmt: skip
    if held_out.kind != LIGHTGBM:
        return held_out
    refit = tuple(sorted({*plan.refit, *plan.refit_between()} & set(backtest.features)))
    fits = fits | {d: ValueModel.fit(backtest.features[d], scoring.cfg, cfg.seed) for d in refit
                   if d not in fits}  # fmt: skip
    x, y, _ = _stack(backtest, transactions, refit, fits, held_out, h)
    params = {**BASE_PARAMS, **DATASET_PARAMS, **PARAMS, "metric": "tweedie", "seed": cfg.seed}
    booster = lgb.train(params, lgb.Dataset(x, y, params=DATASET_PARAMS),
                        num_boost_round=held_out.params["best_iteration"])  # fmt: skip
    return ValuePredictor(LIGHTGBM, scoring, held_out.numeric, held_out.categories, booster,
                          trained_on=refit, params=held_out.params)  # fmt: skip


def orders_by_frequency(
    transactions: pd.DataFrame, features: pd.DataFrame, value: ValueModel, cutoff: date, h: int
) -> pd.DataFrame:
    """The classic BTYD check: mean predicted vs actual orders (purchase days) in the window,
    by the number of repeat orders before it (7+ pooled)."""
    when = pd.to_datetime(transactions["order_date"])
    inside = (when > pd.Timestamp(cutoff)) & (when <= pd.Timestamp(cutoff + timedelta(days=h)))
    days = transactions.loc[inside].groupby("customer_id")["order_date"].nunique()
    actual = days.reindex(features["customer_id"]).fillna(0).to_numpy()
    repeat = np.clip(features["frequency_days"].to_numpy(int) - 1, 0, 7)
    frame = pd.DataFrame(
        {
            "repeat_orders": repeat,
            "predicted": value.expected_orders(features, h),
            "actual": actual,
        }  # fmt: skip
    )
    return frame.groupby("repeat_orders").agg(
        customers=("actual", "size"), predicted=("predicted", "mean"), actual=("actual", "mean")
    )


SEGMENT_INPUTS = ("clv", "expected_orders", "expected_order_value", "p_alive")  # numeric
# what the value model answers per customer: scores.csv's columns and the service's fields
VALUE_COLUMNS = (
    *SEGMENT_INPUTS[:3],
    "next_order_date",
    "days_to_next_order",
    "avg_days_between_orders",
    "p_alive",
)
VALUE_TIER_SCHEME = "value_tiers"  # its segment name is the value tier (scores.csv, /predict)


def with_value(table: pd.DataFrame, value: ValueResult | None, as_of: date) -> pd.DataFrame:
    """The feature table plus the value model's numeric outputs, which value tiers and the
    CLV x activity matrix segment on (the table unchanged without a value model)."""
    if value is None or not len(table):
        return table
    model, _ = value.scored_by()
    return join_value(table, model.table(table, as_of))


def join_value(table: pd.DataFrame, values: pd.DataFrame) -> pd.DataFrame:
    """`table` (a feature table) with the SEGMENT_INPUTS of `values` (a `ValuePredictor.table`
    of the same rows, in the same order): replaced where the table has them already (e.g. a
    reference snapshot logged with them), its attrs kept. The batch job and the serving model
    set (`serving.models.ModelSet.with_value`) both add them here."""
    extra = pd.DataFrame({c: values[c].to_numpy() for c in SEGMENT_INPUTS}, index=table.index)
    out = pd.concat([table.drop(columns=list(SEGMENT_INPUTS), errors="ignore"), extra], axis=1)
    out.attrs = dict(table.attrs)
    return out
