"""Each cleaning rule on hand-made rows, at its boundaries, under each policy."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from core.errors import ConfigError
from features.cleaning import CleaningConfig, clean
from features.contract import CUSTOMERS, TRANSACTIONS, type_table

REF = date(2025, 6, 30)


def run(tx: dict, customers: dict | None = None, **cfg):
    cfg.setdefault("reference_date", REF)
    t = type_table(pd.DataFrame(tx), TRANSACTIONS, max_invalid_share=1.0)
    c = type_table(pd.DataFrame(customers), CUSTOMERS, max_invalid_share=1.0) if customers else None
    return clean(t, c, CleaningConfig(**cfg))


def logged(result, rule: str, table: str = "transactions", action: str | None = None) -> list[int]:
    ch = result.changes
    hit = ch[(ch["table"] == table) & (ch["rule"] == rule)]
    if action:
        hit = hit[hit["action"] == action]
    return sorted(hit["source_row"].tolist())


def tx(ids, dates, amounts, **more):
    return {"customer_id": ids, "order_date": dates, "amount": amounts, **more}


def test_missing_key_fields_are_dropped_with_the_column_named():
    r = run(
        tx(["A", None, "C", "D"], ["2024-01-01", "2024-01-01", None, "2024-01-01"], [1, 2, 3, None])
    )
    assert r.transactions["customer_id"].tolist() == ["A"]
    ch = r.changes.set_index("source_row")
    assert ch.loc[1, "column"] == "customer_id" and ch.loc[2, "column"] == "order_date"
    assert ch.loc[3, "column"] == "amount"


def test_unreadable_required_values_keep_their_source_text():
    r = run(tx(["A", "B", "C"], ["2024-01-01", "2024-02-30", "2024-01-01"], ["1", "2", "abc"]))
    ch = r.changes[r.changes["rule"] == "unreadable_value"].set_index("source_row")
    assert ch.loc[1, "old_value"] == "2024-02-30" and ch.loc[2, "old_value"] == "abc"
    assert len(r.transactions) == 1


def test_nonpositive_amounts_dropped_but_refunds_of_earlier_orders_kept():
    r = run(
        tx(
            ["A", "A", "A", "A", "B", "B", "C"],
            [
                "2024-01-01",
                "2024-01-05",
                "2024-01-06",
                "2024-01-07",
                "2024-01-01",
                "2023-12-01",
                "2024-01-01",
            ],
            [100, -60, -40, -1, 0, -5, -3],
            order_id=["o1", "o1", "o1", "o1", "o2", "o3", None],
        )
    )
    # o1: 100 paid; refunds -60 and -40 fit, the third (-1) would exceed what was paid
    assert logged(r, "nonpositive_amount") == [3, 4, 5, 6]
    kept = r.transactions.set_index("source_row")
    assert kept["is_refund"].to_dict() == {0: False, 1: True, 2: True}


def test_refund_dated_before_its_order_is_not_a_refund():
    r = run(tx(["A", "A"], ["2024-01-05", "2024-01-01"], [100, -50], order_id=["o1", "o1"]))
    assert logged(r, "nonpositive_amount") == [1]


def test_refund_of_another_customers_order_is_not_a_refund():
    r = run(tx(["A", "B"], ["2024-01-01", "2024-01-02"], [100, -50], order_id=["o1", "o1"]))
    assert logged(r, "nonpositive_amount") == [1]


@pytest.mark.parametrize("policy", ["drop", "flag"])
def test_nonpositive_policy(policy):
    r = run(
        tx(["A", "B"], ["2024-01-01", "2024-01-02"], [10, -5]),
        policies={"nonpositive_amount": policy},
    )
    assert len(r.transactions) == (1 if policy == "drop" else 2)


def test_future_date_boundary_is_the_reference_date():
    r = run(tx(["A", "B"], ["2025-06-30", "2025-07-01"], [1, 1]))
    assert logged(r, "future_date") == [1]


def _extreme_rows():
    # mean of positive amounts = (9 * 10 + 1000) / 10 = 109 -> threshold 1090 at factor 10
    return tx(["A"] * 10, ["2024-01-01"] * 10, [10] * 9 + [1000])


def test_extreme_amount_uses_factor_times_mean():
    assert logged(run(_extreme_rows()), "extreme_amount") == []
    assert logged(run(_extreme_rows(), extreme_factor=9.1), "extreme_amount", action="flag") == [9]


def test_extreme_amount_exactly_at_the_threshold_is_not_extreme():
    rows = tx(["A"] * 10, ["2024-01-01"] * 10, [10] * 9 + [1000])
    assert logged(run(rows, extreme_factor=1000 / 109), "extreme_amount") == []


@pytest.mark.parametrize(
    "policy,amount,n", [("flag", 1000.0, 10), ("cap", 327.0, 10), ("drop", None, 9)]
)
def test_extreme_policies(policy, amount, n):
    r = run(_extreme_rows(), extreme_factor=3, policies={"extreme_amount": policy})
    assert len(r.transactions) == n
    if amount is not None:
        row = r.transactions.set_index("source_row").loc[9]
        assert row["amount"] == pytest.approx(amount) and row["flag_extreme_amount"]


def test_duplicate_transactions_only_with_order_id():
    rows = tx(["A", "A"], ["2024-01-01", "2024-01-01"], [5, 5])
    assert len(run(rows).transactions) == 2  # two equal purchases on one day are legitimate
    assert logged(run({**rows, "order_id": ["o1", "o1"]}), "duplicate_transaction") == [1]


CUST = {
    "customer_id": ["A", "B", "C", "D", "TEST-1", "E"],
    "signup_date": [
        "2023-01-01",
        "2022-06-01",
        "2023-03-01",
        "2024-01-10",
        "2023-01-01",
        "2023-01-01",
    ],
    "phone": [
        "138 0000 1111",
        "+86 138-0000-1111",
        "13900002222",
        "13700003333",
        "13600004444",
        None,
    ],
    "email": ["a@x.com", "B@X.com", "b@x.com ", "d@x.com", "t@x.com", None],
    "age": [30, 0, 120, 121, 1, None],
    "is_test": ["0", "0", "", "0", "", "1"],
}


def test_duplicates_merge_transitively_to_the_earliest_signup():
    # A ~ B by phone, B ~ C by e-mail (case and spaces ignored) -> one customer, B signed up first
    r = run(tx(["A", "C", "D"], ["2024-01-01"] * 3, [1, 2, 3]), CUST)
    assert r.id_map.set_index("source_customer_id")["customer_id"].to_dict() == {"A": "B", "C": "B"}
    assert sorted(r.customers["customer_id"]) == ["B", "D"]
    assert r.transactions["customer_id"].tolist() == ["B", "B", "D"]
    assert logged(r, "duplicate_customer", action="change") == [0, 1]
    assert logged(r, "duplicate_customer", "customers") == [0, 2]


def test_merged_record_fills_gaps_from_its_duplicates():
    c = {
        "customer_id": ["A", "B"],
        "signup_date": ["2023-01-01", "2024-01-01"],
        "phone": ["13800001111", "13800001111"],
        "industry": [None, "零售"],
        "age": [None, 40],
    }
    r = run(tx(["A"], ["2024-02-01"], [1]), c)
    row = r.customers.iloc[0]
    assert row["customer_id"] == "A" and row["industry"] == "零售" and row["age"] == 40


def test_same_id_twice_in_the_customer_table_is_merged():
    c = {"customer_id": ["A", "A"], "industry": ["零售", None]}
    r = run(tx(["A"], ["2024-01-01"], [1]), c)
    assert len(r.customers) == 1 and logged(r, "duplicate_customer", "customers") == [1]


def test_test_accounts_by_flag_and_by_id_pattern_go_with_their_orders():
    r = run(tx(["E", "TEST-1", "test_x", "D"], ["2024-02-01"] * 4, [1, 2, 3, 4]), CUST)
    assert logged(r, "test_account") == [0, 1, 2]
    assert set(logged(r, "test_account", "customers")) == {4, 5}


def test_age_boundaries_and_policies():
    r = run(tx(["D"], ["2024-02-01"], [1]), CUST)
    changed = r.changes[r.changes["rule"] == "invalid_age"]
    assert sorted(changed["old_value"].tolist()) == ["0.0", "121.0"]  # 1 and 120 are valid
    r = run(tx(["D"], ["2024-02-01"], [1]), CUST, policies={"invalid_age": "drop"})
    assert "D" not in set(r.customers["customer_id"])


def test_order_before_signup_is_flagged_same_day_is_not():
    c = {"customer_id": ["A"], "signup_date": ["2024-01-10"]}
    r = run(tx(["A", "A", "A"], ["2024-01-09", "2024-01-10", "2024-02-01"], [1, 1, 1]), c)
    assert logged(r, "order_before_signup") == [0]
    assert r.transactions["flag_order_before_signup"].tolist() == [True, False, False]
    r = run(
        tx(["A", "A"], ["2024-01-09", "2024-01-10"], [1, 1]),
        c,
        policies={"order_before_signup": "drop"},
    )
    assert len(r.transactions) == 1


def test_unknown_customers_are_flagged():
    r = run(tx(["A", "Z"], ["2024-02-01"] * 2, [1, 1]), {"customer_id": ["A"]})
    assert r.transactions["flag_unknown_customer"].tolist() == [False, True]


def test_to_complete_boundary():
    # 5 profile key fields, to_complete_share 0.3: one missing is fine, two mark the customer
    c = {
        "customer_id": ["A", "B"],
        "signup_date": ["2024-01-01"] * 2,
        "age": [30, None],
        "gender": ["男", "女"],
        "region": ["北京", None],
        "industry": [None, "零售"],
    }
    r = run(tx(["A"], ["2024-02-01"], [1]), c)
    assert r.customers.set_index("customer_id")["to_complete"].to_dict() == {"A": False, "B": True}
    assert r.audit["merges"]["to_complete"] == 1


def test_gender_and_region_normalised_unknowns_logged():
    c = {
        "customer_id": ["A", "B", "C"],
        "gender": ["男", "F", "?"],
        "region": ["粤-深圳", "火星", "北京市"],
    }
    r = run(tx(["A"], ["2024-02-01"], [1]), c)
    assert r.customers["gender"].tolist()[:2] == ["male", "female"] and pd.isna(
        r.customers["gender"][2]
    )
    assert (
        r.customers["region"].tolist()[0] == "广东-深圳"
        and r.customers["region"].tolist()[2] == "北京-北京"
    )
    assert logged(r, "gender_unrecognized", "customers") == [2]
    assert logged(r, "region_unrecognized", "customers") == [1]
    assert r.audit["reformatted"]["customers.region"] == 2


def test_missing_rate_warning_names_fields_over_the_limit():
    c = {
        "customer_id": [f"C{i}" for i in range(20)],
        "industry": [None] + ["零售"] * 19,
        "age": [None, None] + [30] * 18,
    }
    r = run(tx(["C1"], ["2024-02-01"], [1]), c)
    text = " ".join(r.audit["warnings"])
    assert "customers.age: 10.0%" in text and "industry" not in text  # 5% is not over 5%


def test_channels_normalised():
    r = run(tx(["A"] * 4, ["2024-01-01"] * 4, [1] * 4, channel=["线上", "门店", "APP", "online"]))
    assert r.transactions["channel"].tolist() == ["online", "offline", "online", "online"]


def test_config_rejects_bad_policy_and_rule():
    with pytest.raises(ConfigError, match="allowed"):
        CleaningConfig(policies={"future_date": "cap"})
    with pytest.raises(ConfigError, match="unknown rule"):
        CleaningConfig(policies={"nope": "drop"})


def test_personal_data_never_in_outputs():
    r = run(tx(["A"], ["2024-01-01"], [1]), CUST)
    blob = " ".join(
        map(str, [r.customers.to_dict(), r.changes.to_dict(), r.audit, r.id_map.to_dict()])
    )
    for secret in ("13800001111", "0000 1111", "a@x.com", "B@X.com", "13700003333"):
        assert secret not in blob
    assert {"phone_hash", "email_hash"} <= set(r.customers.columns) and "phone" not in r.customers


def test_rows_always_balance():
    r = run(tx(["A", None, "B"], ["2024-01-01", "x", "2099-01-01"], [1, 2, -3]))
    t = r.audit["tables"]["transactions"]
    assert t["balanced"] and t["input_rows"] == t["kept_rows"] + t["dropped_rows"] == 3
    dropped = set(r.changes.loc[r.changes["action"] == "drop", "source_row"])
    assert dropped.isdisjoint(r.transactions["source_row"]) and len(dropped) == t["dropped_rows"]
    assert np.all(np.sort(np.r_[list(dropped), r.transactions["source_row"]]) == np.arange(3))
