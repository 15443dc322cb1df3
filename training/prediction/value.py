"""What each customer is worth: expected orders, order value and lifetime value over a horizon.

BG/NBD (expected purchase days in the horizon, dropout included) times Gamma-Gamma (expected
spend per purchase day, shrunk towards the population's), discounted month by month: the
textbook CLV of Fader, Hardie & Lee. Both models read only the history, no labels, so every
customer gets a value whatever the length of the log. `holdout` measures it the way users ask
for: fitted as of (as-of - horizon), compared with what each customer then spent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from training.prediction.btyd import BGNBD
from training.prediction.spend import GammaGamma, value_frequency_correlation

MONTH = 30.4375  # days


@dataclass(frozen=True)
class ValueConfig:
    horizon_days: int = 365
    monthly_discount: float = 0.01  # 1% a month, about 12.7% a year


def spend_history(features: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(repeat purchase days, net spend per purchase day): the unit BG/NBD counts is a purchase
    day, so the spend model values a purchase day too."""
    days = features["frequency_days"].to_numpy(float)
    net = features["net_monetary"].to_numpy(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        per_day = np.where(days > 0, net / days, np.nan)
    return np.maximum(days - 1, 0), per_day


@dataclass
class ValueModel:
    btyd: BGNBD
    spend: GammaGamma
    cfg: ValueConfig = field(default_factory=ValueConfig)
    correlation: float = float("nan")  # repeat orders vs mean value: Gamma-Gamma assumes ~0

    @classmethod
    def fit(cls, features: pd.DataFrame, cfg: ValueConfig = ValueConfig(), seed: int = 0):  # noqa: B008
        x, m = spend_history(features)
        return cls(BGNBD.fit(features, seed), GammaGamma.fit(x, m, seed), cfg,
                   value_frequency_correlation(x, m))  # fmt: skip

    def expected_orders(self, features: pd.DataFrame, days=None) -> np.ndarray:
        """Expected purchase days in the next `days` (default: the horizon; an array of days:
        a column per horizon, see `BGNBD.conditional_expected`)."""
        return self.btyd.conditional_expected(
            features, self.cfg.horizon_days if days is None else days
        )

    def expected_order_value(self, features: pd.DataFrame) -> np.ndarray:
        return self.spend.expected_value(*spend_history(features))

    def clv(self, features: pd.DataFrame) -> np.ndarray:
        """Discounted expected spend over the horizon: each month's expected purchase days times
        the expected value of one, divided by (1 + monthly discount) ** month."""
        return self.parts(features)[2]

    def parts(self, features: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(expected orders over the horizon, expected order value, clv), unrounded, from one
        pass of BG/NBD over the month ends (the last is the horizon): what `table` and a value
        predictor's CLV share, computed once per batch."""
        h = self.cfg.horizon_days
        months = int(np.ceil(h / MONTH))
        ends = np.minimum(np.arange(1, months + 1) * MONTH, h)
        cumulative = self.expected_orders(features, ends).reshape(len(features), months)
        step = np.diff(cumulative, axis=1, prepend=0.0)
        factors = (1.0 + self.cfg.monthly_discount) ** -np.arange(1, months + 1)
        order_value = self.expected_order_value(features)
        orders = cumulative[:, -1] if ends[-1] == h else self.expected_orders(features)
        return orders, order_value, order_value * (step @ factors)

    def table(self, features: pd.DataFrame, as_of: date, parts=None) -> pd.DataFrame:
        """Per customer: clv, expected_orders, expected_order_value, p_alive, the median days to
        the next order of a customer still active and its date, average days between orders.
        `parts`: `self.parts(features)`, when computed already."""
        orders, order_value, discounted = parts or self.parts(features)
        wait = self.btyd.median_days_to_next(features)
        next_date = pd.Timestamp(as_of) + pd.to_timedelta(np.round(wait), unit="D")
        return pd.DataFrame(
            {
                "clv": discounted.round(2),
                "expected_orders": orders.round(4),
                "expected_order_value": order_value.round(2),
                "p_alive": self.btyd.p_alive(features).round(6),
                "days_to_next_order": np.round(wait, 1),
                "next_order_date": next_date.strftime("%Y-%m-%d"),
                "avg_days_between_orders": features["interpurchase_mean_days"].round(1).to_numpy(),
            },
            index=features.index,
        )


def actual_spend(transactions: pd.DataFrame, start: date, days: int) -> pd.Series:
    """Net spend per customer in (start, start + days] of a clean log (refunds are negative)."""
    when = pd.to_datetime(transactions["order_date"])
    inside = (when > pd.Timestamp(start)) & (when <= pd.Timestamp(start + timedelta(days=days)))
    return transactions.loc[inside].groupby("customer_id")["amount"].sum()


def ranking_metrics(predicted: np.ndarray, actual: np.ndarray) -> dict[str, float]:
    """How well a value prediction ranks and sizes customers: Spearman, normalised Gini (1 =
    the perfect order), top-decile revenue capture, totals and mean absolute error."""
    predicted, actual = np.asarray(predicted, float), np.asarray(actual, float)
    top = np.argsort(-predicted, kind="stable")[: max(int(np.ceil(len(actual) * 0.1)), 1)]
    total = actual.sum()
    return {
        "spearman": float(spearmanr(predicted, actual).statistic),
        "gini": gini(actual, predicted) / gini(actual, actual),
        "capture_top_decile": float(actual[top].sum() / total) if total else float("nan"),
        "predicted_total": float(predicted.sum()),
        "actual_total": float(total),
        "mae": float(np.abs(predicted - actual).mean()),
    }


def gini(actual: np.ndarray, score: np.ndarray) -> float:
    """Gini of `actual` ordered by `score` (highest first): the area between the cumulative
    share of actual value and the diagonal."""
    order = np.argsort(-score, kind="stable")
    cum = np.cumsum(actual[order]) / max(actual.sum(), 1e-12)
    return float(cum.mean() - (len(actual) + 1) / (2 * len(actual)))


def by_decile(predicted: np.ndarray, actual: np.ndarray) -> pd.DataFrame:
    """Mean predicted and actual value per decile of the prediction (1 = highest)."""
    frame = pd.DataFrame({"predicted": predicted, "actual": actual})
    rank = frame["predicted"].rank(method="first", ascending=False)
    frame["decile"] = np.ceil(rank / len(frame) * 10).astype(int)
    return frame.groupby("decile").agg(
        customers=("actual", "size"), predicted=("predicted", "mean"), actual=("actual", "mean")
    )


def spend_rate(features: pd.DataFrame, days: int) -> np.ndarray:
    """Baseline: the customer's net spend per day so far (over at least a month), extrapolated."""
    tenure = np.maximum(features["tenure_days"].to_numpy(float), MONTH)
    return np.maximum(features["net_monetary"].to_numpy(float), 0) / tenure * days


def rfm_regression(train: pd.DataFrame, spent: np.ndarray, features: pd.DataFrame) -> np.ndarray:
    """Baseline: linear regression of the next window's spend on log recency, frequency and
    monetary, learned at an earlier cutoff."""
    from sklearn.linear_model import LinearRegression

    def rfm(f: pd.DataFrame) -> np.ndarray:
        cols = ("recency_days", "frequency_days", "net_monetary")
        return np.log1p(np.column_stack([f[c].to_numpy(float) for c in cols]).clip(min=0))

    return np.maximum(LinearRegression().fit(rfm(train), spent).predict(rfm(features)), 0)
