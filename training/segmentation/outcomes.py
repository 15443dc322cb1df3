"""The transaction log behind a feature table, for schemes that learn from outcomes.

A `History` gives point-in-time feature tables at earlier cutoffs and what customers did after
a cutoff (repurchase, churn, net spend in the next `days`), each computed once and cached. The
main job (`custseg run`) builds it from the log it has already read (`from_feature_run`); a
feature snapshot alone (`custseg segment fit`) has none, and schemes that need it are skipped.

Two uses: the `tree` scheme learns its tree out of time, and every scheme is measured on the
same held-out window (`heldout`): segments assigned on the features at as_of - 90 days, and the
share of the next 90 days' outcome variance the segments explain (eta squared).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
import pandas as pd

OUTCOMES = ("repurchase", "churn", "spend")
HELDOUT_DAYS = 90  # the common held-out window every scheme is measured on
HELDOUT_OUTCOMES = ("repurchase", "spend")


@dataclass
class History:
    """Features at a cutoff and outcomes after it, from one log.

    `as_of` is the last day outcomes can be read (the as-of date, or the last order when the
    data ends earlier); `first_order` the log's first order date."""

    as_of: date
    first_order: date
    build: Callable[[date], pd.DataFrame]  # cutoff -> feature table as of it
    clean: pd.DataFrame  # the clean log (customer_id, order_date, amount, is_refund ...)
    _features: dict = field(default_factory=dict)
    _outcomes: dict = field(default_factory=dict)
    _heldout: dict = field(default_factory=dict)

    def features_at(self, cutoff: date) -> pd.DataFrame:
        if cutoff not in self._features:
            self._features[cutoff] = self.build(cutoff)
        return self._features[cutoff]

    def outcomes(self, cutoff: date, days: int) -> pd.DataFrame:
        """customer_id, repurchase, churn (0/1) and spend (net, refunds negative) in
        (cutoff, cutoff + days], for customers with an order on or before the cutoff."""
        key = (cutoff, days)
        if key not in self._outcomes:
            from features.build import build_labels
            from training.prediction.value import actual_spend

            labels = build_labels(self.clean, [cutoff], days, days)
            labels = labels[["customer_id", "repurchase", "churn"]].astype(
                {"repurchase": int, "churn": int}
            )
            spend = actual_spend(self.clean, cutoff, days)
            labels["spend"] = labels["customer_id"].map(spend).fillna(0.0).astype(float)
            self._outcomes[key] = labels.reset_index(drop=True)
        return self._outcomes[key]

    def labelled(self, cutoff: date, days: int, outcome: str) -> tuple[pd.DataFrame, np.ndarray]:
        """The feature table at `cutoff` (customers with an order by then) and their outcome."""
        table = self.features_at(cutoff)
        y = self.outcomes(cutoff, days).set_index("customer_id")[outcome]
        known = table["customer_id"].isin(y.index).to_numpy()
        rows = table[known].reset_index(drop=True)
        return rows, y.loc[rows["customer_id"]].to_numpy(dtype=float)


def from_feature_run(feats) -> History:
    """The History of a `features.stage.FeatureRun` (the main job's): features at any cutoff
    built the way the backtests build them (same cleaning, definitions and categories)."""
    return from_log(
        feats.transactions,
        feats.customers,
        feats.result.transactions,
        feats.as_of,
        feats.cleaning,
        feats.features_cfg,
        feats.table.attrs.get("categories"),
    )


def from_log(transactions, customers, clean, as_of, cleaning, features_cfg, categories):
    """The History of a raw log (and its clean version): monitoring's re-evaluation refits the
    tree schemes from the new log with it."""
    from features.pipeline import features_as_of

    dates = pd.to_datetime(clean["order_date"])
    first = dates.min().date() if len(dates) else as_of
    last = dates.max().date() if len(dates) else as_of

    def build(cutoff: date) -> pd.DataFrame:
        table, _ = features_as_of(
            transactions, customers, cutoff, cleaning, features_cfg, categories=categories
        )
        return table

    return History(min(as_of, last), first, build, clean)


def eta_squared(labels: np.ndarray, y: np.ndarray) -> float:
    """Share of the variance of `y` between the segments in `labels` (0 = the segments tell
    nothing about y, 1 = every segment is uniform); NaN when y does not vary."""
    y = np.asarray(y, dtype=float)
    if len(y) < 2:
        return float("nan")
    total = float(((y - y.mean()) ** 2).sum())
    if total <= 0:
        return float("nan")
    frame = pd.DataFrame({"s": np.asarray(labels, dtype=object), "y": y})
    g = frame.groupby("s")["y"].agg(["size", "mean"])
    between = float((g["size"] * (g["mean"] - y.mean()) ** 2).sum())
    return min(max(between / total, 0.0), 1.0)


def rates(labels: np.ndarray, y: np.ndarray) -> pd.DataFrame:
    """Per segment: customers, the outcome's mean (a rate for 0/1 outcomes) and its 95%
    confidence interval (normal approximation: mean ± 1.96 sd / sqrt(n))."""
    frame = pd.DataFrame({"segment": np.asarray(labels, dtype=object), "y": np.asarray(y, float)})
    g = frame.groupby("segment", sort=False)["y"].agg(["size", "mean", "std"])
    half = 1.96 * g["std"].fillna(0.0) / np.sqrt(g["size"])
    return pd.DataFrame(
        {"customers": g["size"], "mean": g["mean"], "ci_low": g["mean"] - half,
         "ci_high": g["mean"] + half}
    )  # fmt: skip


def heldout_cutoff(history: History, days: int = HELDOUT_DAYS) -> date:
    return history.as_of - timedelta(days=days)


def heldout(assign: Callable[[pd.DataFrame], np.ndarray], history: History) -> dict[str, float]:
    """The common held-out measure: segments assigned on the features at as_of - 90 days,
    eta squared of each outcome in HELDOUT_OUTCOMES over the 90 days after. Empty when the log
    does not reach back that far or the scheme cannot assign those rows (a column only the
    value model adds, such as `clv`)."""
    from core.errors import InputError

    cutoff = heldout_cutoff(history)
    if cutoff <= history.first_order:
        return {}
    rows, _ = history.labelled(cutoff, HELDOUT_DAYS, HELDOUT_OUTCOMES[0])
    if not len(rows):
        return {}
    try:
        labels = np.asarray(assign(rows), dtype=object)
    except InputError:
        return {}
    keep = pd.notna(labels)  # None: a row the scheme learned from (left out)
    return {
        f"heldout_eta2_{outcome}": eta_squared(
            labels[keep], history.labelled(cutoff, HELDOUT_DAYS, outcome)[1][keep]
        )
        for outcome in HELDOUT_OUTCOMES
    }
