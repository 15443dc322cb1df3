"""Baskets from the clean transaction log, point in time: one basket per order (order_id), or
per customer-day when the log has no order ids; items at product or category level; only
lines dated on or before the cutoff that sold something (refunds, cancellations and lines with
a negative amount or quantity are left out). Built in one DuckDB query; items, customers and
baskets come back as integer codes (one row per distinct basket and item)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa

from core.errors import InputError


@dataclass
class Baskets:
    """`lines`: basket, item, customer (codes) and day (days since 1970-01-01)."""

    lines: pd.DataFrame
    items: np.ndarray  # item code -> name
    customers: np.ndarray  # customer code -> customer_id
    labels: np.ndarray  # item code -> its most frequent category (product level), else name
    level: str
    as_of: date

    @property
    def n_baskets(self) -> int:
        return int(self.lines["basket"].max()) + 1 if len(self.lines) else 0

    @property
    def n_items(self) -> int:
        return len(self.items)

    @property
    def n_customers(self) -> int:
        return len(self.customers)

    def until(self, cutoff: date) -> Baskets:
        """The baskets dated on or before `cutoff`, with the same codes."""
        day = (pd.Timestamp(cutoff) - pd.Timestamp(0)).days
        lines = self.lines[self.lines["day"] <= day].reset_index(drop=True)
        return Baskets(lines, self.items, self.customers, self.labels, self.level, cutoff)

    def after(self, cutoff: date) -> pd.DataFrame:
        """The lines dated after `cutoff` (the out-of-time window)."""
        day = (pd.Timestamp(cutoff) - pd.Timestamp(0)).days
        return self.lines[self.lines["day"] > day].reset_index(drop=True)

    def item_codes(self, names) -> np.ndarray:
        """Codes of item names (-1: not an item of these baskets)."""
        index = pd.Index(self.items)
        return index.get_indexer(pd.Index(names, dtype=object))


def build_baskets(tx: pd.DataFrame, as_of: date, level: str = "product") -> Baskets:
    """The baskets of the clean log `tx` (as cleaning writes it) as of `as_of`."""
    from features.engines import duckdb_connection

    if level not in tx.columns:
        raise InputError(
            f"the transaction log has no {level!r} column: baskets at {level} level need it "
            "(map it with --column, or choose --level "
            f"{'category' if level == 'product' else 'product'})"
        )
    cols = ["customer_id", "order_date", "amount", level]
    extra = [c for c in ("order_id", "quantity", "is_refund", "category") if c in tx.columns]
    cols += [c for c in extra if c not in cols]
    frame = tx[cols].copy()
    for c in ("customer_id", level, "order_id", "category"):
        if c in frame and frame[c].dtype == object:  # Arrow-backed text needs no copy
            frame[c] = frame[c].where(frame[c].notna(), None)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    key = "coalesce(order_id, customer_id || '|' || CAST(day AS VARCHAR))"
    if "order_id" not in frame:
        key = "customer_id || '|' || CAST(day AS VARCHAR)"
    sold = ["amount > 0", f"{level} IS NOT NULL", "customer_id IS NOT NULL"]
    sold += ["coalesce(quantity, 1) > 0"] if "quantity" in frame else []
    sold += ["NOT coalesce(is_refund, false)"] if "is_refund" in frame else []
    label = "category" if level == "product" and "category" in frame else level
    con = duckdb_connection()
    con.register("_basket_tx", table)
    try:
        # one row per basket and item, codes only: at 1M customers (10M lines) the names of
        # every line as Python objects cost gigabytes; names come from the small tables below
        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE _basket_lines AS
            WITH src AS (
                SELECT customer_id, {level} AS item, {label} AS label,
                       CAST(date_diff('day', DATE '1970-01-01', CAST(order_date AS DATE)) AS INT)
                           AS day, * EXCLUDE (customer_id, {level})
                FROM _basket_tx
                WHERE CAST(order_date AS DATE) <= ? AND {" AND ".join(sold)}
            ),
            keyed AS (SELECT {key} AS bkey, customer_id, item, label, day FROM src),
            lines AS (
                SELECT bkey, item, min(customer_id) AS customer_id, min(day) AS day
                FROM keyed GROUP BY bkey, item
            )
            SELECT CAST(dense_rank() OVER (ORDER BY bkey) - 1 AS BIGINT) AS basket,
                   CAST(dense_rank() OVER (ORDER BY item) - 1 AS INT) AS item,
                   CAST(dense_rank() OVER (ORDER BY customer_id) - 1 AS INT) AS customer,
                   CAST(day AS INT) AS day, item AS item_name, customer_id
            FROM lines
            """,
            [as_of],
        )
        lines = con.execute("SELECT basket, item, customer, day FROM _basket_lines").df()
        items = _names(con, "item", "item_name")
        customers = _names(con, "customer", "customer_id")
        labels = con.execute(
            f"""SELECT item, arg_max(label, n) AS label FROM (
                    SELECT {level} AS item, {label} AS label, count(*) AS n FROM _basket_tx
                    WHERE {level} IS NOT NULL AND CAST(order_date AS DATE) <= ?
                    GROUP BY ALL) GROUP BY item""",
            [as_of],
        ).df()
    finally:
        con.unregister("_basket_tx")
        con.execute("DROP TABLE IF EXISTS _basket_lines")
    label_of = labels.set_index("item")["label"].reindex(items)
    return Baskets(
        lines.astype({"basket": "int64", "item": "int32", "customer": "int32", "day": "int32"}),
        items,
        customers,
        label_of.fillna(pd.Series(items, index=label_of.index)).to_numpy(object),
        level,
        as_of,
    )


def _names(con, code: str, name: str) -> np.ndarray:
    """code -> name, from the basket lines (codes are dense from 0)."""
    pairs = con.execute(
        f"SELECT {code}, any_value({name}) AS name FROM _basket_lines GROUP BY {code} "
        f"ORDER BY {code}"
    ).df()
    out = np.empty(len(pairs), dtype=object)
    out[pairs[code].to_numpy()] = pairs["name"].astype(object).to_numpy()
    return out
