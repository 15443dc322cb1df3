"""Transaction rules: missing and unreadable key fields, test accounts, duplicate customers
re-keyed, exact duplicate rows, future dates, non-positive amounts that are not refunds,
extreme amounts, orders before signup, unknown customers, channel and region spellings."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from features.cleaning.audit import Audit
from features.cleaning.common import drop_unreadable, normalize_region_column
from features.cleaning.config import CleaningConfig
from features.cleaning.customers import CustomerContext
from features.contract import TRANSACTIONS, TypedTable
from features.vector import isin, lookup

T = "transactions"
REQUIRED = tuple(TRANSACTIONS.required)
_CHANNELS = {
    "online": "online", "线上": "online", "网店": "online", "电商": "online", "app": "online",
    "web": "online", "小程序": "online", "网上": "online", "ecommerce": "online",
    "offline": "offline", "线下": "offline", "门店": "offline", "store": "offline",
    "shop": "offline", "实体店": "offline",
}


def _apply(df: pd.DataFrame, mask: np.ndarray, rule: str, cfg: CleaningConfig, audit: Audit,
           column: str | None = None, old: pd.Series | None = None) -> pd.DataFrame:
    """Drop or flag the masked rows as the rule's policy says (a flag becomes `flag_<rule>`)."""
    if cfg.policy(rule) == "drop":
        return audit.drop(df, mask, T, rule, column, old)
    audit.flag(df, mask, T, rule, column, old)
    df[f"flag_{rule}"] = mask
    return df


def refund_mask(df: pd.DataFrame) -> np.ndarray:
    """Negative amounts that refund an earlier-or-same-day order of the same customer (same
    order_id) and, together with earlier refunds of it, do not exceed what was paid."""
    if "order_id" not in df:
        return np.zeros(len(df), bool)
    neg = (df["amount"] < 0).to_numpy() & df["order_id"].notna().to_numpy()
    if not neg.any():
        return neg
    key = ["customer_id", "order_id"]
    # only orders that some refund names: a small subset, so the string group-by stays cheap
    named = isin(df["order_id"], df.loc[neg, "order_id"].unique())
    positive = df[named & (df["amount"] > 0).to_numpy()]
    paid = positive.groupby(key, observed=True).agg(paid=("amount", "sum"), first=("order_date", "min"))
    refunds = df.loc[neg, key + ["order_date", "amount"]].sort_values("order_date", kind="stable")
    refunds["refunded"] = -refunds.groupby(key, observed=True)["amount"].cumsum()
    m = refunds.join(paid, on=key)
    ok = (m["paid"].notna() & (m["first"] <= m["order_date"]) & (m["refunded"] <= m["paid"] + 1e-9))
    out = np.zeros(len(df), bool)
    out[df.index.get_indexer(m.index[ok.to_numpy()])] = True
    return out


def clean_transactions(t: TypedTable, cfg: CleaningConfig, audit: Audit,
                       customers: CustomerContext | None) -> pd.DataFrame:
    df = t.frame.copy()
    df["source_row"] = np.arange(len(df), dtype=np.int64)
    audit.input_rows[T] = len(df)

    for col in REQUIRED:  # empty in the source (unreadable values are the next rule)
        empty = df[col].isna().to_numpy() & ~t.invalid.get(col, np.zeros(len(t.frame), bool))[
            df["source_row"].to_numpy()]
        df = audit.drop(df, empty, T, "missing_key_field", col)
    df = drop_unreadable(df, t, T, cfg, audit, required=REQUIRED)

    if "order_id" in df:
        data_cols = [c for c in df.columns if c != "source_row"]
        df = _apply(df, df.duplicated(data_cols).to_numpy(), "duplicate_transaction", cfg, audit)

    is_test = df["customer_id"].str.contains(cfg.test_id_pattern, regex=True).fillna(False).to_numpy()
    if customers is not None:
        is_test |= isin(df["customer_id"], customers.test_ids)
    df = audit.drop(df, is_test, T, "test_account", "customer_id")

    if customers is not None and len(customers.id_map):
        new_id = lookup(df["customer_id"], customers.id_map)
        rekey = new_id.notna().to_numpy()
        audit.change(df, rekey, T, "duplicate_customer", "customer_id", df["customer_id"], new_id)
        df["customer_id"] = new_id.fillna(df["customer_id"])
    else:
        audit.touch(T, "duplicate_customer", "change")

    today = pd.Timestamp(cfg.today if isinstance(cfg.today, date) else date.today())
    df = _apply(df, (df["order_date"] > today).to_numpy(), "future_date", cfg, audit,
                "order_date", df["order_date"])

    refund = refund_mask(df)
    bad = (df["amount"] <= 0).to_numpy() & ~refund
    df = _apply(df, bad, "nonpositive_amount", cfg, audit, "amount", df["amount"])
    df["is_refund"] = refund[~bad] if len(df) < len(refund) else refund  # only non-refunds went

    positive = df["amount"] > 0
    threshold = cfg.extreme_factor * float(df.loc[positive, "amount"].mean()) if positive.any() else np.inf
    audit.notes.append(f"transactions: extreme_amount threshold = {cfg.extreme_factor:g} x mean "
                       f"= {threshold:,.2f}")
    extreme = (df["amount"] > threshold).to_numpy()
    if cfg.policy("extreme_amount") == "cap":
        capped = df["amount"].where(~extreme, threshold)
        audit.change(df, extreme, T, "extreme_amount", "amount", df["amount"], capped)
        df["amount"] = capped
        df["flag_extreme_amount"] = extreme
    else:
        df = _apply(df, extreme, "extreme_amount", cfg, audit, "amount", df["amount"])

    if customers is not None:
        if customers.signup is not None:
            signup = lookup(df["customer_id"], customers.signup)
            early = (df["order_date"] < signup).fillna(False).to_numpy(bool)
            df = _apply(df, early, "order_before_signup", cfg, audit, "order_date", df["order_date"])
        unknown = ~isin(df["customer_id"], customers.known_ids)
        df = _apply(df, unknown, "unknown_customer", cfg, audit, "customer_id")

    if "channel" in df:
        raw = df["channel"]
        norm = raw.str.lower().map(_CHANNELS).astype("string[pyarrow]").fillna(raw.str.lower())
        audit.reformatted["transactions.channel"] += int((raw != norm).fillna(False).sum())
        df["channel"] = norm
    if "region" in df:
        df = normalize_region_column(df, T, cfg, audit)
    return df.reset_index(drop=True)
