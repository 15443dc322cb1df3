"""The first transaction step when a log gives quantity and unit_price (order lines, as in the
UCI Online Retail log): amount = quantity x unit_price.

- no amount column: amount is computed for every row (a note says so); a row whose quantity or
  unit price is unreadable has an unreadable amount, dropped by `unreadable_value` with the
  source text and the reason;
- an empty amount with both parts readable: computed (`amount_computed`, logged per row);
- a given amount that disagrees with quantity x unit_price beyond rounding
  (|diff| > 0.01 + 1e-6 x |amount|): `amount_mismatch`, flagged (the given amount is kept) or,
  with policy "fix", replaced by the product.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from features.cleaning.audit import Audit
from features.cleaning.config import CleaningConfig
from features.contract import COMPUTED_FROM, TypedTable
from features.parsing import NOT_FINITE

T = "transactions"
QUANTITY, UNIT_PRICE = COMPUTED_FROM["amount"]
ABS_TOLERANCE, REL_TOLERANCE = 0.01, 1e-6


def _rows(t: TypedTable) -> pd.DataFrame:
    """What the audit logs of a row: its source row and customer id."""
    return pd.DataFrame(
        {"source_row": t.source_rows().astype(np.int64), "customer_id": t.frame["customer_id"]}
    )


def _computed_column(t: TypedTable, product: pd.Series, audit: Audit) -> TypedTable:
    """`t` with amount = quantity x unit_price; unreadable parts make the amount unreadable."""
    n = len(t.frame)
    bad = np.zeros(n, bool)
    raw = pd.Series(pd.NA, index=t.frame.index, dtype="string")
    why = pd.Series(pd.NA, index=t.frame.index, dtype="string")
    for col in (QUANTITY, UNIT_PRICE):
        if col in t.invalid:
            first = t.invalid[col] & ~bad  # the first unreadable part gives the reason
            rows = np.flatnonzero(first)
            raw.iloc[rows] = t.raw[col].reindex(rows).to_numpy()
            why.iloc[rows] = (f"{col}: " + t.reasons[col].reindex(rows)).to_numpy()
            bad |= first
    infinite = (product.notna() & ~np.isfinite(product)).to_numpy(bool)  # 1e200 x 1e200
    if infinite.any():
        text = t.frame[QUANTITY].astype("string") + " x " + t.frame[UNIT_PRICE].astype("string")
        raw[infinite] = text[infinite]
        why[infinite] = f"{QUANTITY} x {UNIT_PRICE}: {NOT_FINITE}"
        bad |= infinite
    frame = t.frame.assign(amount=product.where(~bad))
    audit.notes.append(f"{T}: no amount column: amount = {QUANTITY} x {UNIT_PRICE} on every row")
    if not bad.any():
        return replace(t, frame=frame)
    # amount first: a row dropped for it is not also logged for its unreadable part
    return replace(
        t,
        frame=frame,
        invalid={"amount": bad, **t.invalid},
        raw={"amount": raw[bad], **t.raw},
        reasons={"amount": why[bad], **t.reasons},
    )


def amounts_from_prices(t: TypedTable, cfg: CleaningConfig, audit: Audit) -> TypedTable:
    """amount from quantity x unit_price where the log has both (see the module text); `t`
    unchanged otherwise. Runs before the transaction rules, on every source row."""
    df = t.frame
    if QUANTITY not in df or UNIT_PRICE not in df:
        return t
    product = df[QUANTITY].astype("float64") * df[UNIT_PRICE].astype("float64")
    if "amount" not in df:
        return _computed_column(t, product, audit)

    df = df.copy()
    amount = df["amount"].astype("float64")
    readable = product.notna() & np.isfinite(product)
    unreadable = t.invalid.get("amount", np.zeros(len(df), bool))
    fill = (amount.isna() & readable).to_numpy(bool) & ~unreadable
    log = _rows(t)
    audit.change(log, fill, T, "amount_computed", "amount", None, product)
    amount = amount.where(~fill, product)

    diff = (amount - product).abs()
    tolerance = ABS_TOLERANCE + REL_TOLERANCE * amount.abs()
    mismatch = (readable & amount.notna() & (diff > tolerance)).to_numpy(bool)
    if cfg.policy("amount_mismatch") == "fix":
        audit.change(log, mismatch, T, "amount_mismatch", "amount", amount, product)
        amount = amount.where(~mismatch, product)
    else:
        audit.flag(log, mismatch, T, "amount_mismatch", "amount", amount)
    df["amount"] = amount
    df["flag_amount_mismatch"] = mismatch
    return replace(t, frame=df)
