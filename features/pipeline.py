"""Point-in-time feature builds: cleaning and features both see only data on or before the
cutoff, so a feature table as of D is the same whatever the log holds after D."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pandas as pd

from features.build import build_features
from features.cleaning import CleaningConfig, CleanResult, clean
from features.contract import TypedTable
from features.definitions import FeatureConfig
from features.engines import DEFAULT_ENGINE


def cut_at(transactions: TypedTable, as_of: date) -> tuple[TypedTable, int]:
    """Transactions dated on or before `as_of` (rows without a readable date stay: cleaning
    drops them with their reason). Returns the table and how many rows were after `as_of`."""
    after = (transactions.frame["order_date"] > pd.Timestamp(as_of)).fillna(False).to_numpy(bool)
    return transactions.take(~after), int(after.sum())


def features_as_of(
    transactions: TypedTable,
    customers: TypedTable | None,
    as_of: date,
    cleaning: CleaningConfig | None = None,
    features: FeatureConfig | None = None,
    engine: str = DEFAULT_ENGINE,
    categories: list[str] | None = None,
) -> tuple[pd.DataFrame, CleanResult]:
    """Clean the log as of `as_of` (thresholds from data <= as_of), then build features.
    `categories` fixes the category-share columns (backtests use the scoring table's, so every
    cutoff has the same columns)."""
    cut, n_after = cut_at(transactions, as_of)
    result = clean(cut, customers, replace(cleaning or CleaningConfig(), reference_date=as_of))
    result.audit["tables"]["transactions"]["rows_after_as_of"] = n_after
    if n_after:
        result.audit["notes"].append(
            f"transactions: {n_after:,} rows dated after the as-of date {as_of} are not part of "
            "this run (features are as of that date)"
        )
    table = build_features(
        result.transactions, result.customers, as_of, features, engine, categories
    )
    result.audit["notes"] += table.attrs.get("tag_notes", [])
    return table, result


def last_order_date(transactions: TypedTable, today: date | None = None) -> date:
    """Default as-of: the last order date in the data that is not in the future (a typo'd
    2052 must not become the cutoff)."""
    limit = pd.Timestamp(today or date.today())
    dates = transactions.frame["order_date"]
    last = dates[dates <= limit].max()
    return pd.Timestamp(last).date() if pd.notna(last) else limit.date()


__all__ = ["cut_at", "features_as_of", "last_order_date"]
