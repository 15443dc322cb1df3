"""Property tests: whatever the input, rows balance; cleaning twice changes nothing more."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features.cleaning import CleaningConfig, clean
from features.contract import CUSTOMERS, TRANSACTIONS, type_table

CFG = CleaningConfig(reference_date=date(2025, 6, 30), max_invalid_share=1.0)
ids = st.sampled_from(["A", "B", "C", "D", "test9", None, " "])
dates = st.sampled_from(
    [
        "2024-01-01",
        "2024/01/02",
        "20240103",
        "2024年1月4日",
        "2025-07-01",
        "2030-01-01",
        "2024-02-30",
        "garbage",
        None,
        "",
    ]
)
amounts = st.one_of(
    st.none(),
    st.sampled_from([0.0, -10.0, -50.0, 5000.0]),
    st.floats(min_value=-100, max_value=1000, allow_nan=False),
)
order_ids = st.sampled_from(["o1", "o2", "o3", None])
tx_rows = st.lists(st.tuples(ids, dates, amounts, order_ids), min_size=1, max_size=40)
cust_rows = st.lists(
    st.tuples(
        ids,
        st.sampled_from(["2023-01-01", "2024-06-01", "bad", None]),
        st.sampled_from([None, 0, 30, 121, 200]),
        st.sampled_from(["13800001111", "+86 138 0000 1111", "13900002222", None]),
        st.sampled_from(["a@x.com", "A@X.COM", "b@x.com", None]),
        st.sampled_from(["粤-深圳", "京", "火星", None]),
        st.sampled_from(["0", "1", None]),
    ),
    min_size=1,
    max_size=15,
)


def _tables(rows, crows):
    tx = pd.DataFrame(rows, columns=["customer_id", "order_date", "amount", "order_id"])
    tx["amount"] = tx["amount"].astype("float64")
    cu = pd.DataFrame(
        crows, columns=["customer_id", "signup_date", "age", "phone", "email", "region", "is_test"]
    )
    return type_table(tx, TRANSACTIONS, max_invalid_share=1.0), type_table(
        cu, CUSTOMERS, max_invalid_share=1.0
    )


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tx_rows, cust_rows)
def test_rows_balance_and_each_dropped_row_has_one_reason(rows, crows):
    tx, cu = _tables(rows, crows)
    r = clean(tx, cu, CFG)
    for name, kept in (("transactions", r.transactions), ("customers", r.customers)):
        t = r.audit["tables"][name]
        assert t["balanced"], t
        drops = r.changes[(r.changes["table"] == name) & (r.changes["action"] == "drop")][
            "source_row"
        ]
        assert drops.is_unique  # a row is dropped once, for one reason
        assert set(drops).isdisjoint(kept["source_row"])
        everything = np.sort(np.r_[drops.to_numpy(), kept["source_row"].to_numpy()])
        assert np.array_equal(everything, np.arange(t["input_rows"]))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tx_rows, cust_rows)
def test_cleaning_is_idempotent(rows, crows):
    tx, cu = _tables(rows, crows)
    first = clean(tx, cu, CFG)
    if first.transactions.empty or first.customers.empty:
        return
    again = clean(
        type_table(first.transactions, TRANSACTIONS), type_table(first.customers, CUSTOMERS), CFG
    )
    assert again.audit["tables"]["transactions"]["dropped_rows"] == 0
    assert again.audit["tables"]["customers"]["dropped_rows"] == 0
    assert (again.changes["action"] != "change").all()
    data = [c for c in first.transactions.columns if c != "source_row"]
    pd.testing.assert_frame_equal(
        first.transactions[data].reset_index(drop=True),
        again.transactions[data].reset_index(drop=True),
        check_dtype=False,
    )
    cols = [c for c in first.customers.columns if c != "source_row"]
    pd.testing.assert_frame_equal(
        first.customers[cols].reset_index(drop=True),
        again.customers[cols].reset_index(drop=True),
        check_dtype=False,
    )
