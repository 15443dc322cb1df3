"""Point-in-time feature tables at every backtest cutoff, and the labels after each.

Features at a cutoff D come from `features.pipeline.features_as_of` on the raw log (cleaning
included, so even cleaning's data-wide thresholds use only data <= D). Labels come from the
log cleaned as of the scoring date: they look at (D, D + h], which is their purpose.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from features.build import build_labels
from features.pipeline import features_as_of
from training.prediction.windows import WindowPlan

SPLITS = ("train", "valid", "test")


@dataclass
class Backtest:
    features: dict[date, pd.DataFrame]  # point-in-time feature table per cutoff
    labels: pd.DataFrame  # customer_id, cutoff, repurchase, churn


def build(
    transactions,
    customers,
    clean_transactions: pd.DataFrame,
    cutoffs: list,
    cleaning,
    features_cfg,
    repurchase_days: int,
    churn_days: int,
    step: Callable[[], None] | None = None,
    categories: list[str] | None = None,
) -> Backtest:
    """Features at every cutoff (each built once) and the labels. `categories` (the scoring
    table's) fixes the category-share columns so every cutoff has the same ones."""
    cutoffs = sorted(set(cutoffs))
    tables = {}
    for d in cutoffs:
        tables[d], _ = features_as_of(
            transactions, customers, d, cleaning, features_cfg, categories=categories
        )
        if step:
            step()
    labels = build_labels(clean_transactions, cutoffs, repurchase_days, churn_days)
    return Backtest(tables, labels)


def split(
    backtest: Backtest, plan: WindowPlan, target: str
) -> dict[str, tuple[pd.DataFrame, np.ndarray]]:
    """(features, labels) for train (every training cutoff stacked), valid and test."""
    out = {}
    for name, cutoffs in (("train", plan.train), ("valid", (plan.valid,)), ("test", (plan.test,))):
        frames = [labelled(backtest, d, target) for d in cutoffs]
        x = pd.concat([f for f, _ in frames], ignore_index=True)
        y = np.concatenate([y for _, y in frames])
        out[name] = (x, y)
    return out


def labelled(backtest: Backtest, cutoff: date, target: str) -> tuple[pd.DataFrame, np.ndarray]:
    labels = backtest.labels[backtest.labels["cutoff"] == pd.Timestamp(cutoff)]
    table = backtest.features[cutoff].merge(
        labels[["customer_id", target]], on="customer_id", how="inner", validate="one_to_one"
    )
    y = table.pop(target).to_numpy(dtype=int)
    return table.assign(cutoff=pd.Timestamp(cutoff)), y
