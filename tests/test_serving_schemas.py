"""Feature-row validation without a server: each registry range is enforced."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from serving.schemas import (
    BadRequest,
    PredictRequest,
    request_rows,
    row_model,
    valid_rows,
)

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


def test_online_share_may_be_null():
    """A log without a channel column (Online Retail) gives no online share: the service takes
    the feature table custseg built from it as it is."""
    assert ROWS.validate_python([{**OK, "online_share": None}])[0]["online_share"] is None


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


# --- the value champion in the model set (serving.models.ModelSet), without MLflow ---


def value_model_set(value: bool = True, clv=(120.0, float("nan"))):
    """A model set of one `value_tiers` segmenter (tiers on clv) and, with `value`, a stand-in
    value champion whose table gives `clv` (NaN, inf: what an extreme row could give)."""
    from types import SimpleNamespace

    import pandas as pd

    from serving.models import ModelSet
    from training.segmentation.tiers import TIERS, TierAssigner

    class Value:
        columns = ["recency_days", "frequency_days", "tenure_days", "net_monetary"]
        categories: dict = {}

        def table(self, features, as_of):
            n = len(features)
            return pd.DataFrame(
                {
                    "clv": list(clv)[:n],
                    "expected_orders": [2.0, float("inf")][:n],
                    "expected_order_value": [60.0, 0.0][:n],
                    "p_alive": [0.9, 0.1][:n],
                    "days_to_next_order": [12.4, float("nan")][:n],
                    "next_order_date": ["2026-07-12", float("nan")][:n],
                    "avg_days_between_orders": [30.0, float("nan")][:n],
                },
                index=features.index,
            )

    keys = tuple(t.key for t in TIERS)
    assigner = TierAssigner("clv", (0.01, 0.05, 0.10, 0.25, 0.50), (500, 300, 200, 100, 50), keys)
    strategies = {t.strategy: SimpleNamespace(direction="d", direction_zh="d") for t in TIERS}
    segmenter = SimpleNamespace(
        assigner=assigner, segments={t.key: t for t in TIERS}, strategies=strategies
    )
    return ModelSet({"value_tiers": segmenter}, {}, {}, value=Value() if value else None)


def test_the_value_champion_computes_what_the_schemes_read():
    """clv is no input when the value champion computes it; its own inputs are. Without one, a
    scheme reading clv still needs it sent."""
    with_value = value_model_set()
    assert "clv" not in with_value.columns
    assert {"recency_days", "net_monetary"} <= set(with_value.columns)
    assert value_model_set(value=False).columns == ["clv"]


def test_value_fields_are_answered_and_never_nan():
    """Per customer the value fields, the tier from the computed clv; NaN and infinity become
    null, so the response is valid JSON; without a value champion they are all null."""
    from datetime import date

    import pandas as pd
    import pydantic_core

    from serving.models import VALUE_FIELDS
    from serving.schemas import Answer

    features = pd.DataFrame(
        {
            "customer_id": ["A", "B"],
            "recency_days": [3.0, 400.0],
            "frequency_days": [5.0, 1.0],
            "tenure_days": [300.0, 400.0],
            "net_monetary": [500.0, 0.0],
        }
    )
    a, b = value_model_set().predict(features, date(2026, 6, 30))
    assert a["clv"] == 120.0 and a["p_alive"] == 0.9 and a["next_order_date"] == "2026-07-12"
    assert a["value_tier"] == "top 10-25%" and a["segments"]["value_tiers"]["id"] == "top_10_25"
    assert b["clv"] is None and b["expected_orders"] is None and b["next_order_date"] is None
    assert b["value_tier"] == "bottom 50%"  # missing value: the bottom tier, as in training
    text = pydantic_core.to_json({"customers": [a, b], "versions": {}}).decode()
    assert "NaN" not in text and "Infinity" not in text
    Answer.model_validate_json(text)  # the documented response schema holds

    sent = features.assign(clv=[600.0, 10.0])
    a, b = value_model_set(value=False).predict(sent, date(2026, 6, 30))
    assert all(a[f] is None and b[f] is None for f in VALUE_FIELDS)
    assert a["value_tier"] == "top 1%" and b["value_tier"] == "bottom 50%"


def _outcome(call):
    """What a call gives: its result, or its error's type and message."""
    try:
        return call()
    except (BadRequest, ValidationError) as exc:
        return type(exc).__name__, str(exc)


BODY_MODELS = SimpleNamespace(
    numeric_columns=["recency_days", "online_share"],
    category_columns=["lifecycle_stage", "gender", "region"],
    ignored_columns=["orders_30d"],
)


def _both_paths(body: bytes, limit: int = 3) -> tuple:
    """(the one-pass read of the raw body, the generic parse then `valid_rows`)."""
    one_pass = _outcome(
        lambda: request_rows(PredictRequest.model_validate_json(body), BODY_MODELS, limit)
    )
    generic = _outcome(lambda: valid_rows(PredictRequest.parse(body).customers, BODY_MODELS, limit))
    return one_pass, generic


@pytest.mark.parametrize(
    "body",
    [
        {"customers": [OK]},
        {"customers": [OK, {**OK, "customer_id": "B", "orders_30d": 4}]},
        {"customers": [OK, {**OK, "recency_days": "3"}]},
        {"customers": [OK, OK]},
        {"customers": []},
        {"customers": [OK] * 4},
        {"customers": [OK] * 4, "as_of": "2026-01-01"},
        {"customers": [OK, OK, {}, {**OK, "gender": 1}]},
        {"customers": {"0": OK}},
        {"customers": [OK], "as_of": "2026-01-01"},
        {"rows": [OK]},
        [OK],
        {"customers": [{**OK, "recency_days": float("nan")}]},
        {"customers": [{**OK, "colour": "red"}]},
    ],
)
def test_a_raw_body_read_in_one_pass_gives_what_the_generic_path_gives(body):
    one_pass, generic = _both_paths(json.dumps(body).encode())
    assert one_pass == generic


@pytest.mark.parametrize("text", [b"{not json", b"", b'{"customers": [', '{"customers": [1]}'])
def test_a_broken_body_is_refused_the_same_way(text):
    one_pass, generic = _both_paths(text.encode() if isinstance(text, str) else text)
    assert one_pass == generic
    assert isinstance(one_pass, tuple)


@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "customer_id": st.sampled_from(["A", "B", "C", "", 7]),
                "recency_days": st.one_of(st.none(), st.integers(-2, 5), st.floats()),
                "online_share": st.one_of(st.none(), st.floats(-1, 2), st.text(max_size=2)),
                "lifecycle_stage": st.sampled_from(["new", "lost", "zzz", None]),
                "gender": st.sampled_from(["male", None, 1]),
                "region": st.one_of(st.none(), st.text(max_size=3)),
            }
        ),
        max_size=5,
    )
)
@settings(max_examples=200, deadline=None)
def test_any_body_gets_the_same_answer_on_both_paths(rows):
    body = json.dumps({"customers": rows}, allow_nan=True).encode()
    one_pass, generic = _both_paths(body)
    assert one_pass == generic
