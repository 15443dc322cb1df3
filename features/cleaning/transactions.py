"""Transaction rules: missing and unreadable key fields, test accounts, duplicate customers
re-keyed, exact duplicate rows, future dates, non-positive amounts that are not refunds,
extreme amounts, orders before signup, unknown customers, channel and region spellings."""

from __future__ import annotations

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


def refund_mask(df: pd.DataFrame, alive: np.ndarray | None = None) -> np.ndarray:
    """Negative amounts that refund an earlier-or-same-day order of the same customer (same
    order_id) and, together with earlier refunds of it, do not exceed what was paid."""
    if "order_id" not in df:
        return np.zeros(len(df), bool)
    alive = np.ones(len(df), bool) if alive is None else alive
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

    today = pd.Timestamp(cfg.today)
    rows.apply((df["order_date"] > today).to_numpy(), "future_date", "order_date", df["order_date"])

    refund = refund_mask(df, rows.alive)
    rows.apply(
        (df["amount"] <= 0).to_numpy() & ~refund, "nonpositive_amount", "amount", df["amount"]
    )
    df["is_refund"] = refund

    positive = (df["amount"] > 0).to_numpy() & rows.alive
    threshold = (
        cfg.extreme_factor * float(df["amount"][positive].mean()) if positive.any() else np.inf
    )
    audit.notes.append(
        f"transactions: extreme_amount threshold = {cfg.extreme_factor:g} x mean = {threshold:,.2f}"
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
