"""Transaction rules: missing and unreadable key fields, test accounts, duplicate customers
re-keyed, exact duplicate rows, future dates, non-positive amounts that are not refunds,
extreme amounts, orders before signup, unknown customers, channel and region spellings."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from features.cleaning.audit import Audit
from features.cleaning.common import LiveRows, drop_unreadable, normalize_region_column
from features.cleaning.config import CleaningConfig
from features.cleaning.customers import CustomerContext
from features.contract import TRANSACTIONS, TypedTable
from features.vector import Keys, coalesce, isin

T = "transactions"
REQUIRED = tuple(TRANSACTIONS.required)
_CHANNELS = {
    "online": "online",
    "线上": "online",
    "网店": "online",
    "电商": "online",
    "app": "online",
    "web": "online",
    "小程序": "online",
    "网上": "online",
    "ecommerce": "online",
    "offline": "offline",
    "线下": "offline",
    "门店": "offline",
    "store": "offline",
    "shop": "offline",
    "实体店": "offline",
}


def extreme_note(factor: float, threshold: float) -> str:
    return f"transactions: extreme_amount threshold = {factor:g} x mean = {threshold:,.2f}"


def refund_mask(
    df: pd.DataFrame, alive: np.ndarray | None = None, cancel_pattern: str | None = None
) -> np.ndarray:
    """Negative amounts that refund an earlier purchase of the same customer within what was
    paid: the same order_id (a refund repeating its order's id), or, with `cancel_pattern`, an
    order_id of a cancellation invoice (C536379) after the customer's purchases."""
    if "order_id" not in df:
        return np.zeros(len(df), bool)
    alive = np.ones(len(df), bool) if alive is None else alive
    out = _same_order_refunds(df, alive)
    if cancel_pattern:
        out |= _cancellations(df, alive & ~out, cancel_pattern)
    return out


def _cancellations(df: pd.DataFrame, alive: np.ndarray, pattern: str) -> np.ndarray:
    """Negative lines on cancellation invoices whose customer had paid, up to their date, at
    least the running total of such lines (a cancellation of nothing is no refund)."""
    ids = df["order_id"]
    neg = (df["amount"] < 0).to_numpy() & _matches(ids, pattern)
    neg &= alive
    out = np.zeros(len(df), bool)
    if not neg.any():
        return out
    who = df.loc[neg, "customer_id"].astype(str)
    buy = (df["amount"] > 0).to_numpy() & alive & isin(df["customer_id"], who.unique())
    paid = (
        df.loc[buy, ["customer_id", "order_date", "amount"]]
        .astype({"customer_id": str})
        .groupby(["customer_id", "order_date"], observed=True)["amount"]
        .sum()
        .groupby(level=0)
        .cumsum()
        .rename("paid")
        .reset_index()
        .sort_values("order_date", kind="stable")
    )
    refunds = df.loc[neg, ["order_date", "amount"]].assign(customer_id=who)
    refunds = refunds.sort_values("order_date", kind="stable")
    refunds["refunded"] = -refunds.groupby("customer_id")["amount"].cumsum()
    refunds["row"] = refunds.index
    m = pd.merge_asof(refunds, paid, on="order_date", by="customer_id", direction="backward")
    ok = m["paid"].notna() & (m["refunded"] <= m["paid"] + 1e-9)
    out[df.index.get_indexer(m.loc[ok.to_numpy(), "row"])] = True
    return out


def _same_order_refunds(df: pd.DataFrame, alive: np.ndarray) -> np.ndarray:
    """Negative lines repeating the order_id of an earlier-or-same-day order of the customer,
    together with earlier refunds of it within what was paid."""
    neg = (df["amount"] < 0).to_numpy() & df["order_id"].notna().to_numpy() & alive
    if not neg.any():
        return neg
    key = ["customer_id", "order_id"]
    # only orders that some refund names: a small subset, so the string group-by stays cheap
    named = isin(df["order_id"], df.loc[neg, "order_id"].unique())
    positive = df[named & (df["amount"] > 0).to_numpy() & alive]
    paid = positive.groupby(key, observed=True).agg(
        paid=("amount", "sum"), first=("order_date", "min")
    )
    refunds = df.loc[neg, key + ["order_date", "amount"]].sort_values("order_date", kind="stable")
    refunds["refunded"] = -refunds.groupby(key, observed=True)["amount"].cumsum()
    m = refunds.join(paid, on=key)
    ok = m["paid"].notna() & (m["first"] <= m["order_date"]) & (m["refunded"] <= m["paid"] + 1e-9)
    out = np.zeros(len(df), bool)
    out[df.index.get_indexer(m.index[ok.to_numpy()])] = True
    return out


def _non_product(df: pd.DataFrame, pattern: str | None) -> np.ndarray:
    """Lines whose product or category matches `pattern` (postage, fees, adjustments)."""
    hit = np.zeros(len(df), bool)
    for col in ("product", "category"):
        if pattern and col in df:
            hit |= _matches(df[col], pattern)
    return hit


def _matches(values: pd.Series, pattern: str) -> np.ndarray:
    """Values matching a user's regular expression (its groups, if any, are just grouping)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "This pattern is interpreted", UserWarning)
        return values.astype("string[pyarrow]").str.contains(pattern).fillna(False).to_numpy(bool)


def _duplicate_rows(df: pd.DataFrame, alive: np.ndarray) -> np.ndarray:
    """Exact copies of an earlier live row (with an order_id).

    Copies share their date and amount, so a cheap numeric hash of those two picks the few
    candidate rows; only those are compared on every column.
    """
    date = pd.util.hash_array(df["order_date"].to_numpy("datetime64[ns]").view(np.int64))
    amount = pd.util.hash_array(df["amount"].to_numpy(np.float64))
    key = pd.Series(date * np.uint64(31) + amount)
    candidate = alive & df["order_id"].notna().to_numpy() & key.duplicated(keep=False).to_numpy()
    out = np.zeros(len(df), bool)
    if candidate.any():
        data_cols = [c for c in df.columns if c != "source_row"]
        rows = np.flatnonzero(candidate)
        out[rows] = df.iloc[rows][data_cols].duplicated().to_numpy()
    return out


def clean_transactions(
    t: TypedTable, cfg: CleaningConfig, audit: Audit, customers: CustomerContext | None
) -> pd.DataFrame:
    df = t.frame.copy()
    df["source_row"] = t.source_rows().astype(np.int64)
    audit.input_rows[T] = len(df)
    rows = LiveRows(df, T, cfg, audit)

    for col in REQUIRED:  # empty in the source (unreadable values are the next rule)
        none = np.zeros(len(df), bool)
        rows.drop(df[col].isna().to_numpy() & ~t.invalid.get(col, none), "missing_key_field", col)
    drop_unreadable(rows, t, REQUIRED)

    if "order_id" in df:
        rows.apply(_duplicate_rows(df, rows.alive), "duplicate_transaction")

    keys = Keys(df["customer_id"])  # hashed once; every lookup by customer below reuses it
    is_test = keys.contains(cfg.test_id_pattern)
    if customers is not None:
        is_test |= keys.isin(customers.test_ids)
    rows.drop(is_test, "test_account", "customer_id")

    if customers is not None and len(customers.id_map):
        new_id = keys.lookup(customers.id_map)
        rekey = new_id.notna().to_numpy() & rows.alive
        audit.change(df, rekey, T, "duplicate_customer", "customer_id", df["customer_id"], new_id)
        keys = keys.remap(customers.id_map)
        df["customer_id"] = keys.series()
    else:
        audit.touch(T, "duplicate_customer", "change")

    rows.apply(_non_product(df, cfg.non_product_pattern), "non_product_line", "product")

    today = pd.Timestamp(cfg.today)
    rows.apply((df["order_date"] > today).to_numpy(), "future_date", "order_date", df["order_date"])

    refund = refund_mask(df, rows.alive, cfg.cancel_id_pattern)
    rows.apply(
        (df["amount"] <= 0).to_numpy() & ~refund, "nonpositive_amount", "amount", df["amount"]
    )
    df["is_refund"] = refund

    positive = (df["amount"] > 0).to_numpy() & rows.alive
    threshold = (
        cfg.extreme_factor * float(df["amount"][positive].mean()) if positive.any() else np.inf
    )
    amounts = df["amount"].to_numpy(np.float64, na_value=np.nan)[positive]
    if cfg.extreme_threshold is not None:
        threshold = cfg.extreme_threshold
    audit.stats["extreme_amount"] = {
        "sum": float(amounts.sum()),
        "count": int(len(amounts)),
        "threshold": threshold,
        # the amounts near it: whether another threshold would hit other rows
        "near": np.sort(amounts[amounts > threshold / 2]) if np.isfinite(threshold) else None,
    }
    audit.notes.append(
        f"transactions: extreme_amount threshold = {threshold:,.2f} (cleaning.extreme_threshold)"
        if cfg.extreme_threshold is not None
        else extreme_note(cfg.extreme_factor, threshold)
    )
    extreme = (df["amount"] > threshold).to_numpy() & rows.alive
    if cfg.policy("extreme_amount") == "cap":
        capped = df["amount"].where(~extreme, threshold)
        audit.change(df, extreme, T, "extreme_amount", "amount", df["amount"], capped)
        df["amount"] = capped
        df["flag_extreme_amount"] = extreme
    else:
        rows.apply(extreme, "extreme_amount", "amount", df["amount"])

    if customers is not None:
        if customers.signup is not None:
            signup = keys.lookup(customers.signup)
            early = (df["order_date"] < signup).fillna(False).to_numpy(bool)
            rows.apply(early, "order_before_signup", "order_date", df["order_date"])
        rows.apply(~keys.isin(customers.known_ids), "unknown_customer", "customer_id")

    df = rows.kept()
    if "channel" in df:
        raw = df["channel"]
        lower = raw.str.lower()
        norm = coalesce(lower.map(_CHANNELS).astype("string[pyarrow]"), lower)
        audit.reformatted["transactions.channel"] += int((raw != norm).fillna(False).sum())
        df["channel"] = norm
    if "region" in df:
        df = normalize_region_column(df, T, cfg, audit)
    return df
