"""Feature-row validation without a server: each registry range is enforced."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from serving.schemas import row_model

OK = {
    "customer_id": "A",
    "recency_days": 3,
    "online_share": 0.5,
    "lifecycle_stage": "new",
    "gender": None,
    "region": "粤-深圳",
}
ROWS = row_model(("recency_days", "online_share"), ("lifecycle_stage", "gender", "region"))


def test_a_valid_row_passes():
    assert ROWS.validate_python([OK])[0]["lifecycle_stage"] == "new"


def test_feature_table_columns_the_models_ignore_are_accepted_and_checked():
    rows = row_model(("recency_days", "age"), ("lifecycle_stage",), ("region", "orders_30d"))
    base = {"customer_id": "A", "recency_days": 3, "age": None, "lifecycle_stage": "new"}
    assert rows.validate_python([base, {**base, "region": None, "orders_30d": 2}])
    with pytest.raises(ValidationError, match="valid string"):
        rows.validate_python([{**base, "region": 3}])
    with pytest.raises(ValidationError, match="multiple of 1"):
        rows.validate_python([{**base, "orders_30d": 2.5}])
    with pytest.raises(ValidationError, match="Extra inputs"):
        rows.validate_python([{**base, "colour": "red"}])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"lifecycle_stage": "zzz"}, "'new', 'active', 'at_risk' or 'lost'"),
        ({"gender": "x"}, "'male' or 'female'"),
        ({"online_share": 5.0}, "less than or equal to 1"),
        ({"recency_days": 2.5}, "multiple of 1"),
        ({"recency_days": -1}, "greater than or equal to 0"),
        ({"region": 3}, "valid string"),
    ],
)
def test_values_outside_a_feature_range_are_refused(change, message):
    with pytest.raises(ValidationError, match=message):
        ROWS.validate_python([{**OK, **change}])


def test_the_transaction_batch_limit_counts_customers():
    """CUSTSEG_MAX_BATCH limits customers, also when they come as order rows; the row cap is
    separate (and larger)."""
    from datetime import date

    from serving.schemas import BadRequest, transactions_frame

    def order(i: int, customer: str) -> dict:
        return {"customer_id": customer, "order_date": "2026-01-02", "amount": 10.0 + i}

    many = [order(i, f"C{i % 6}") for i in range(30)]  # 30 rows of 6 customers
    assert len(transactions_frame(many, 30, date(2026, 6, 30), customer_limit=6)) == 30
    with pytest.raises(BadRequest, match="orders of 6 customers, over the limit of 5 customers"):
        transactions_frame(many, 30, date(2026, 6, 30), customer_limit=5)
    with pytest.raises(BadRequest, match="30 rows, over the limit of 29"):
        transactions_frame(many, 29, date(2026, 6, 30), customer_limit=6)


def test_lines_of_one_order_pass_and_exact_copies_are_refused():
    from datetime import date

    from serving.schemas import BadRequest, transactions_frame

    line = {"customer_id": "A", "order_date": "2026-05-01", "amount": 10.0, "order_id": "O1"}
    lines = [line, {**line, "amount": 4.5, "category": "toys"}]
    frame = transactions_frame(lines, 100, date(2026, 6, 30))
    assert frame["order_id"].tolist() == ["O1", "O1"]  # two lines of one order
    with pytest.raises(BadRequest, match=r"transactions\[2\] repeats transactions\[0\] in every"):
        transactions_frame([*lines, dict(line)], 100, date(2026, 6, 30))
    two_orders = [{k: v for k, v in line.items() if k != "order_id"}] * 2  # no ids: two orders
    assert len(transactions_frame(two_orders, 100, date(2026, 6, 30))) == 2
