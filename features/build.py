"""Feature tables and backtest labels as of a cutoff: pandas in, pandas out.

features = build_features(clean_tx, clean_customers, as_of=date(2026, 6, 30))
labels = build_labels(clean_tx, cutoffs=[date(2026, 3, 31)], repurchase_days=30, churn_days=90)
"""

from __future__ import annotations

import hashlib
import inspect
import json
from dataclasses import asdict
from datetime import date

import narwhals as nw
import numpy as np
import pandas as pd
import pyarrow as pa

from features import definitions, registry
from features.definitions import FeatureConfig
from features.engines import (
    EPOCH,
    Prepared,
    collect,
    decode_customers,
    prepare_customers,
    prepare_transactions,
    to_lazy,
)

c = nw.col


def as_day(d: date) -> int:
    return int((np.datetime64(d, "D") - EPOCH).astype(np.int64))


def top_categories(tx: nw.LazyFrame, prepared: Prepared, as_of: int, n: int) -> list[str]:
    """The n categories with the most spend on or before the cutoff (ties by name)."""
    if "category" not in tx.collect_schema().names() or n <= 0:
        return []
    ranked = collect(
        tx.filter((c("day") <= as_of) & ~c("is_refund") & (c("category") >= 0))
        .group_by("category")
        .agg(c("amount").sum().alias("spend"))
    )
    ranked["name"] = prepared.categories.take(pa.array(ranked["category"].to_numpy())).to_pylist()
    ranked = ranked.sort_values(["spend", "name"], ascending=[False, True], kind="stable")
    return [str(x) for x in ranked["name"].head(n)]


def definition_hash(cfg: FeatureConfig, categories: list[str]) -> str:
    """Names the exact definition: source of the definitions, the config and the categories."""
    text = inspect.getsource(definitions) + json.dumps(asdict(cfg)) + json.dumps(categories)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _dtype(name: str) -> str:
    kinds = {f.name: f.kind for f in registry.CORE + registry.ATTRIBUTES}
    if name == "customer_id" or kinds.get(name) == "category":
        return "string[pyarrow]"
    counts = ("frequency_", "orders_", "order_days_", "recency_days", "tenure_days")
    return "int64" if name.startswith(counts) else "float64"


def _tidy(df: pd.DataFrame, categories: list[str]) -> pd.DataFrame:
    """Registry column order, one row per customer sorted by id, stable dtypes."""
    first = ["customer_id"] + [f.name for f in registry.CORE]
    cats = [f"category_share__{x}" for x in categories]
    attrs = [f.name for f in registry.ATTRIBUTES]
    cols = [n for n in first + cats + attrs if n in df.columns]
    df = df[cols].sort_values("customer_id", kind="stable").reset_index(drop=True)
    return df.astype({col: _dtype(col) for col in cols})


def build_features(
    transactions: pd.DataFrame,
    customers: pd.DataFrame | None,
    as_of: date,
    cfg: FeatureConfig | None = None,
    engine: str = "polars",
    categories: list[str] | None = None,
) -> pd.DataFrame:
    """One row per customer with an order on or before `as_of`; columns from the registry.

    `categories` fixes the category-share columns (serving passes the training snapshot's);
    by default they are the top categories by spend up to `as_of`.
    """
    cfg = cfg or FeatureConfig()
    day = as_day(as_of)
    prepared = prepare_transactions(transactions)
    tx = to_lazy(prepared.table, engine)
    cats = (
        top_categories(tx, prepared, day, cfg.top_categories) if categories is None else categories
    )
    cust = None
    if customers is not None:
        cust = to_lazy(prepare_customers(customers, prepared), engine)
    query = definitions.customer_features(tx, day, cfg, prepared.category_codes(cats), cust)
    out = _tidy(decode_customers(collect(query), prepared), cats)
    out.attrs.update(
        as_of=str(as_of), definition_hash=definition_hash(cfg, cats), engine=engine, categories=cats
    )
    return out


def build_labels(
    transactions: pd.DataFrame,
    cutoffs: list[date],
    repurchase_days: int = 30,
    churn_days: int = 90,
    engine: str = "polars",
) -> pd.DataFrame:
    """customer_id, cutoff, repurchase, churn for every cutoff (customers active by then)."""
    prepared = prepare_transactions(transactions)
    tx = to_lazy(prepared.table, engine)
    frames = [
        decode_customers(
            collect(definitions.labels(tx, as_day(d), repurchase_days, churn_days)), prepared
        )
        for d in cutoffs
    ]
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    out["cutoff"] = (EPOCH + out.pop("cutoff_day").to_numpy().astype("timedelta64[D]")).astype(
        "datetime64[ns]"
    )
    out["customer_id"] = out["customer_id"].astype("string[pyarrow]")
    out[["repurchase", "churn"]] = out[["repurchase", "churn"]].astype(bool)
    return out.sort_values(["cutoff", "customer_id"], kind="stable").reset_index(drop=True)[
        ["customer_id", "cutoff", "repurchase", "churn"]
    ]
