"""The transaction log as a shop system would export it, with dirt injected into known rows.

A row is an order line: a share of the clean orders is written as 2-4 lines sharing the order
id, one product each, whose amounts add up to the order's to the cent. Refunds either repeat
their order's id or come on a cancellation invoice of their own (C000123456: `CANCEL_ID_PATTERN`).

Rows are kept as integer-coded numpy columns until the very end, then rendered to Arrow
strings once: 10M rows never become Python objects.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from custseg.sample import text
from custseg.sample.customers import CustomerTable, pick
from custseg.sample.population import CATEGORIES, DAY, Orders
from features.vector import to_pandas

CHANNELS = ("online", "线上", "APP", "offline", "门店", "线下")
DIRT = (
    "",
    "bad_date",
    "missing_amount",
    "missing_customer",
    "negative_amount",
    "future_date",
    "outlier",
    "unknown_customer",
    "duplicate_row",
    "refund",
    "test_account",
)
_CODE = {name: i for i, name in enumerate(DIRT)}
CANCEL_ID_PATTERN = "^C"  # order ids of the cancellation invoices (custseg run applies it)
_ID_PREFIX = ("O", "T", "C")  # order ids: orders, test accounts' orders, cancellation invoices
_ORDER, _TEST, _CANCEL = range(3)
ORDERS_PER_ID = 100  # order numbers of a block with customer id offset k start at k x this
_LINES = (2, 3, 4)  # lines of a multi-line order, and how often each count occurs
_LINE_P = (0.5, 0.3, 0.2)
_PRODUCTS = 59  # product numbers 1..59 within a category
_INJECTED = DIRT[1:-1]  # drawn on disjoint rows of real orders (test orders are extra rows)
_COLUMNS = (
    "customer",
    "true_customer",
    "day",
    "amount",
    "quantity",
    "category",
    "product",
    "channel",
    "order_no",
    "id_kind",
    "dirt",
    "order_amount",
    "date_style",
)


def _take(cols: dict[str, np.ndarray], rows: np.ndarray) -> dict[str, np.ndarray]:
    return {k: v[rows] for k, v in cols.items()}


def build(
    rng: np.random.Generator,
    o: Orders,
    c: CustomerTable,
    rates,
    end: np.datetime64,
    multi_line_share: float = 0.0,
    cancel_share: float = 0.0,
    order_offset: int = 0,
    unknown_start: int = 9_000_000,
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, int]]:
    """(transactions, their truth, counts of multi-line orders, lines and cancellations)."""
    m = len(o.owner)
    # extra ids take about half of their real customer's orders; chained ids half of those
    first_extra = np.full(c.n_real, -1)
    first_extra[c.extra_src[: c.n_direct]] = c.n_real + np.arange(c.n_direct)
    chain_extra = np.full(c.n_real, -1)
    chain_extra[c.extra_src[c.n_direct :]] = (
        c.n_real + c.n_direct + np.arange(len(c.extra_src) - c.n_direct)
    )
    customer = o.owner.copy()
    move = (first_extra[o.owner] >= 0) & (rng.random(m) < 0.5)
    customer[move] = first_extra[o.owner[move]]
    to_chain = move & (chain_extra[o.owner] >= 0) & (rng.random(m) < 0.5)
    customer[to_chain] = chain_extra[o.owner[to_chain]]
    online = o.online
    cols = {
        "customer": customer,
        "true_customer": o.owner.copy(),
        "day": o.day,
        "amount": o.amount.copy(),
        "quantity": 1 + rng.poisson(0.4, m),
        "category": o.category,
        "product": rng.integers(1, _PRODUCTS + 1, m),
        "channel": np.where(
            online, rng.choice(3, m, p=[0.7, 0.2, 0.1]), 3 + rng.choice(3, m, p=[0.7, 0.2, 0.1])
        ),
        "order_no": rng.permutation(m) + 1,
        "id_kind": np.full(m, _ORDER, np.int8),
        "dirt": np.zeros(m, np.int8),
        "order_amount": o.amount,
        "date_style": rng.choice(4, m, p=text.DATE_SHARES).astype(np.int8),  # one per order
    }

    taken = np.zeros(m, bool)
    block = {name: pick(rng, m, getattr(rates, f"t_{name}"), taken) for name in _INJECTED}
    for name in _INJECTED[:-2]:  # duplicate_row and refund add rows instead
        cols["dirt"][block[name]] = _CODE[name]
    cols["amount"][block["missing_amount"]] = np.nan
    cols["customer"][block["missing_customer"]] = -1
    neg = block["negative_amount"]
    cols["amount"][neg] = np.where(rng.random(len(neg)) < 0.8, -cols["amount"][neg], 0.0)
    cols["amount"][block["outlier"]] = np.round(
        o.base_mean * rng.uniform(20, 60, len(block["outlier"])), 2
    )
    unknown = block["unknown_customer"]
    cols["customer"][unknown] = len(c.ids) + np.arange(len(unknown))
    all_ids = pa.concat_arrays([c.ids, text.ids("C", unknown_start + np.arange(len(unknown)))])

    # orders become lines (dirty rows stay one row each); refunds and copies take a line
    cols, first_line, n_split, n_lines = _split_lines(rng, cols, multi_line_share)
    refunds = _take(cols, first_line[block["refund"]])
    k = len(refunds["day"])
    refunds["day"] = np.minimum(refunds["day"] + rng.integers(0, 15, k) * DAY, end)
    refunds["amount"] = -np.round(refunds["amount"] * rng.choice([1.0, 0.5, 0.3], k), 2)
    refunds["dirt"][:] = _CODE["refund"]
    # a share are cancellation invoices of their own instead (numbered after the orders)
    cancel = np.flatnonzero(rng.random(k) < cancel_share)
    refunds["id_kind"][cancel] = _CANCEL
    refunds["order_no"][cancel] = m + 1 + np.arange(len(cancel))
    copies = _take(cols, first_line[block["duplicate_row"]])
    copies["dirt"][:] = _CODE["duplicate_row"]
    n_test = len(c.ids) - c.test_start
    t = n_test * 3
    test_customer = np.repeat(np.arange(c.test_start, len(c.ids)), 3)
    test_amount = np.round(rng.uniform(1, 100, t), 2)
    tests = {
        "customer": test_customer,
        "true_customer": test_customer,
        "day": end - rng.integers(1, 300, t) * DAY,
        "amount": test_amount,
        "quantity": np.ones(t, np.int64),
        "category": np.full(t, 3, np.int8),
        "product": np.ones(t, np.int64),
        "channel": np.zeros(t, np.int64),
        "order_no": np.arange(t) + 1,
        "id_kind": np.full(t, _TEST, np.int8),
        "dirt": np.full(t, _CODE["test_account"], np.int8),
        "order_amount": test_amount,
        "date_style": rng.choice(4, t, p=text.DATE_SHARES).astype(np.int8),
    }
    parts = (cols, refunds, copies, tests)
    cols = {k: np.concatenate([p[k] for p in parts]) for k in _COLUMNS}
    cols = _take(cols, np.argsort(cols["day"], kind="stable"))  # an order's lines stay together
    counts = {"multi_line_orders": n_split, "lines_of_multi_line_orders": n_lines}
    cols["order_no"] += order_offset
    return *_render(rng, cols, all_ids), counts | {"cancellation_invoices": len(cancel)}


def _split_lines(rng: np.random.Generator, cols: dict[str, np.ndarray], share: float):
    """A `share` of the clean orders (no dirt, at least 1.00) written as 2-4 lines sharing the
    order id: a product each (distinct within the order, same category), a quantity each, and
    amounts adding up to the order's to the cent (the rounding remainder on the first line).

    Returns (the lines, each order's first line, orders split, their lines). Segment sums over
    the contiguous lines of each order (np.add.reduceat): no loop over orders.
    """
    m = len(cols["dirt"])
    amount = cols["amount"]
    split = (cols["dirt"] == 0) & (amount >= 1.0) & (rng.random(m) < share)
    n_lines = np.ones(m, np.int64)
    n_lines[split] = rng.choice(_LINES, int(split.sum()), p=_LINE_P)
    first = np.cumsum(n_lines) - n_lines
    if not split.any():
        return cols, first, 0, 0
    src = np.repeat(np.arange(m), n_lines)
    out = _take(cols, src)
    multi = np.flatnonzero(n_lines[src] > 1)  # the lines of split orders, order by order
    order = src[multi]
    line = multi - first[order]
    starts = np.flatnonzero(line == 0)  # each split order's first line, within `multi`
    count = n_lines[order[starts]]

    cents = np.round(amount[order] * 100).astype(np.int64)
    w = rng.uniform(0.2, 1.0, len(multi))
    w_sum = np.repeat(np.add.reduceat(w, starts), count)
    part = 1 + np.floor((cents - n_lines[order]) * (w / w_sum)).astype(np.int64)  # >= 1 cent
    part[starts] += cents[starts] - np.add.reduceat(part, starts)
    out["amount"][multi] = part / 100

    step = rng.integers(1, 20, len(multi))  # 3 steps of at most 19 stay below 59 products
    step[starts] = 0
    offset = np.cumsum(step)
    offset -= np.repeat(offset[starts], count)
    out["product"][multi] = (out["product"][multi] - 1 + offset) % _PRODUCTS + 1
    out["quantity"][multi] = 1 + rng.poisson(0.4, len(multi))
    return out, first, len(starts), len(multi)


def _render(rng: np.random.Generator, cols: dict[str, np.ndarray], all_ids: pa.Array):
    dirt = cols["dirt"]
    dates = text.dates(cols["day"], rng, style=cols["date_style"])
    bad = np.flatnonzero(dirt == _CODE["bad_date"])
    dates = text.replace_at(
        dates,
        bad,
        rng.choice(["unknown", "2024-13-45", "0000-00-00", "32/13/2024", "昨天"], len(bad)),
    )
    future = np.flatnonzero(dirt == _CODE["future_date"])
    day = cols["day"][future].astype("datetime64[D]")
    day = np.minimum(day, day.astype("datetime64[M]") + 27 * DAY)  # the 28th at most
    iso = pc.cast(pa.array(day), pa.string())
    part = [pc.utf8_slice_codeunits(iso, a, b) for a, b in ((0, 2), (3, 4), (2, 3), (4, 10))]
    swapped = pc.binary_join_element_wise(*part, "")
    dates = text.replace_at(dates, future, swapped)  # 2025 -> 2052: a typo into the future

    order_id = text.ids(text.pick(_ID_PREFIX, cols["id_kind"]), cols["order_no"], 9)
    category = text.pick(CATEGORIES, cols["category"])
    product = pc.binary_join_element_wise(
        category, "-", pc.utf8_lpad(pc.cast(pa.array(cols["product"]), pa.string()), 3, "0"), ""
    )
    table = pa.table(
        {
            "order_id": order_id,
            "customer_id": text.pick(all_ids, cols["customer"]),
            "order_date": dates,
            "amount": pa.array(cols["amount"], from_pandas=True),
            "quantity": pa.array(cols["quantity"]),
            "product": product,
            "category": category,
            "channel": text.pick(CHANNELS, cols["channel"]),
        }
    )
    truth = to_pandas(
        pa.table(
            {
                "source_row": pa.array(np.arange(len(dirt))),
                "true_customer_id": text.pick(all_ids, cols["true_customer"]),
                "order_date": pa.array(cols["day"].astype("datetime64[ns]")),
                # the amount of the order the row comes from, before any dirt (an order
                # line's: its whole order's; a refund's or copy's: the order refunded or copied)
                "order_amount": pa.array(cols["order_amount"]),
            }
        )
    )
    truth.insert(1, "dirt", pd.Categorical.from_codes(dirt, DIRT))
    return to_pandas(table), truth
