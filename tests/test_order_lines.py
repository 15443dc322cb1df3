"""With order ids a row is an order line: features count and value orders, never lines, on
every engine and on the online path; without order ids a row is an order, as before."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features.build import build_features
from features.definitions import FeatureConfig
from features.online import OnlineFeatures

AS_OF = date(2024, 3, 31)


def _lines() -> pd.DataFrame:
    # A: order 1 (3 lines, 60), order 2 (2 lines, 25) and a cancellation of 10; B: one order
    return pd.DataFrame(
        {
            "customer_id": ["A", "A", "A", "A", "A", "A", "B"],
            "order_date": pd.to_datetime(
                ["2024-01-05"] * 3 + ["2024-03-05"] * 2 + ["2024-03-06", "2024-02-10"]
            ),
            "amount": [10.0, 20.0, 30.0, 5.0, 20.0, -10.0, 7.0],
            "is_refund": [False] * 5 + [True, False],
            "order_id": ["1", "1", "1", "2", "2", "C3", "9"],
            "channel": ["online"] * 3 + ["offline"] * 3 + ["online"],
            "category": ["toys", "toys", "books", "books", "toys", "toys", "books"],
        }
    )


@pytest.mark.parametrize("engine", ["duckdb", "polars"])
def test_orders_are_counted_and_valued_from_their_lines(engine):
    f = build_features(_lines(), None, AS_OF, engine=engine).set_index("customer_id")
    a = f.loc["A"]
    assert a["frequency_orders"] == 2 and a["orders_30d"] == 1 and a["frequency_days"] == 2
    assert a["monetary"] == 85.0 and a["avg_order_value"] == 42.5
    assert a["max_order_value"] == 60.0 and a["max_order_value_30d"] == 25.0
    assert a["online_share"] == 0.5  # one of two orders online, whatever its line count
    assert a["refund_amount"] == 10.0 and a["refund_rate"] == 0.5  # one refund order of two
    assert a["category_share__toys"] == pytest.approx(50 / 85)  # shares weigh lines' spend
    assert f.loc["B", "frequency_orders"] == 1


def test_without_order_ids_every_row_is_an_order():
    f = build_features(_lines().drop(columns="order_id"), None, AS_OF).set_index("customer_id")
    assert f.loc["A", "frequency_orders"] == 5 and f.loc["A", "max_order_value"] == 30.0


def test_the_online_path_counts_orders_too():
    batch = build_features(_lines(), None, AS_OF)
    online = OnlineFeatures(batch.attrs["categories"], with_customers=False)(_lines(), AS_OF)
    cols = ["frequency_orders", "max_order_value", "online_share", "refund_rate"]
    pd.testing.assert_frame_equal(
        online.set_index("customer_id")[cols], batch.set_index("customer_id")[cols]
    )
    plain = online_rows = OnlineFeatures(batch.attrs["categories"], with_customers=False)(
        _lines().drop(columns="order_id"), AS_OF
    )
    assert plain.set_index("customer_id").loc["A", "frequency_orders"] == 5 and len(online_rows)


WINDOWS = FeatureConfig().windows
# days before AS_OF: any, and often a window's edge
_ago = st.integers(0, 400) | st.sampled_from([w + d for w in WINDOWS for d in (-1, 0)])
# (customer, days before AS_OF, order of that day, lines of that order, refund)
_orders = st.lists(
    st.tuples(
        st.sampled_from("ABC"),
        _ago,
        st.integers(0, 2),
        st.integers(1, 3),
        st.booleans(),
    ),
    min_size=1,
    max_size=30,
)
DAY_COLUMNS = [
    "frequency_days",
    "interpurchase_mean_days",
    "interpurchase_std_days",
    "recency_days",
    "tenure_days",
    *[f"order_days_{w}d" for w in WINDOWS],
]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_orders, st.sampled_from(["duckdb", "polars"]))
def test_order_days_are_the_same_from_lines_and_from_orders(orders, engine):
    """Order lines take the distinct days from one row per customer-day, a row per order from
    the orders (`definitions.customer_features`): the same days either way."""
    rows = [
        (cid, AS_OF - pd.Timedelta(days=ago), f"{cid}{ago}-{k}{'C' * refund}", refund)
        for cid, ago, k, n, refund in orders
        for _ in range(n)
    ]
    lines = pd.DataFrame(rows, columns=["customer_id", "order_date", "order_id", "is_refund"])
    lines["order_date"] = pd.to_datetime(lines["order_date"])
    lines["amount"] = lines["is_refund"].map({True: -5.0, False: 10.0})
    by_line = build_features(lines, None, AS_OF, engine=engine)
    by_order = build_features(lines.drop(columns="order_id"), None, AS_OF, engine=engine)
    assert len(by_line) == len(by_order)
    pd.testing.assert_frame_equal(
        by_line.set_index("customer_id")[DAY_COLUMNS],
        by_order.set_index("customer_id")[DAY_COLUMNS],
        check_exact=False,
        rtol=1e-12,
    )
