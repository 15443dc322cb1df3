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
from training.prediction.windows import OVERLAPPING, WindowPlan

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


VALID_SHARE = 0.3  # overlapping windows: the share of customers held out for validation


def split(
    backtest: Backtest, plan: WindowPlan, target: str
) -> dict[str, tuple[pd.DataFrame, np.ndarray]]:
    """(features, labels) for train (every training cutoff stacked), valid and test.

    With overlapping windows (a short log) a customer's labels at neighbouring cutoffs share
    most of their days, so validating on the same customers would reward memorising them: the
    validation window then holds a fixed share of customers out (by a hash of the id), and the
    other customers train on every cutoff up to the validation one."""
    if plan.mode != OVERLAPPING:
        parts = {"train": plan.train, "valid": (plan.valid,), "test": (plan.test,)}
        return {name: _stack(backtest, cutoffs, target) for name, cutoffs in parts.items()}
    x, y = _stack(backtest, tuple(dict.fromkeys((*plan.train, plan.valid))), target)
    held = _held_out(x["customer_id"])
    valid, keep = held.to_numpy(), (~held).to_numpy()
    return {
        "train": (x[keep].reset_index(drop=True), y[keep]),
        "valid": (x[valid].reset_index(drop=True), y[valid]),
        "test": _stack(backtest, (plan.test,), target),
    }


def pooled(data: dict) -> tuple[pd.DataFrame, np.ndarray]:
    """Every split of `split`'s output stacked: the rows a chosen model is refitted on."""
    x = pd.concat([data[k][0] for k in SPLITS], ignore_index=True)
    return x, np.concatenate([data[k][1] for k in SPLITS])


def _held_out(ids: pd.Series) -> pd.Series:
    """The same customers every run and every cutoff: a stable hash of the id."""
    digest = pd.util.hash_pandas_object(ids.astype(str), index=False)
    return pd.Series((digest % 1000).to_numpy() < VALID_SHARE * 1000, index=ids.index)


def _stack(backtest: Backtest, cutoffs, target: str) -> tuple[pd.DataFrame, np.ndarray]:
    frames = [labelled(backtest, d, target) for d in cutoffs]
    x = pd.concat([f for f, _ in frames], ignore_index=True)
    return x, np.concatenate([y for _, y in frames])


def labelled(backtest: Backtest, cutoff: date, target: str) -> tuple[pd.DataFrame, np.ndarray]:
    labels = backtest.labels[backtest.labels["cutoff"] == pd.Timestamp(cutoff)]
    table = backtest.features[cutoff].merge(
        labels[["customer_id", target]], on="customer_id", how="inner", validate="one_to_one"
    )
    y = table.pop(target).to_numpy(dtype=int)
    return table.assign(cutoff=pd.Timestamp(cutoff)), y
