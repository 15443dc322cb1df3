"""Real-world logs read right: order lines with quantity x unit_price instead of an amount, and
region columns that hold countries (the UCI Online Retail shape)."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from core.errors import InputError
from features.cleaning import CleaningConfig, clean
from features.contract import CUSTOMERS, TRANSACTIONS, parse_column_map, read_table, type_table

REF = date(2025, 6, 30)
UCI_MAP = parse_column_map(
    [
        "order_id=InvoiceNo",
        "product=StockCode",
        "quantity=Quantity",
        "order_date=InvoiceDate",
        "unit_price=UnitPrice",
        "customer_id=CustomerID",
        "region=Country",
    ]
)


def run(tx: dict, customers: dict | None = None, **cfg):
    cfg.setdefault("reference_date", REF)
    t = type_table(pd.DataFrame(tx), TRANSACTIONS, max_invalid_share=1.0)
    c = type_table(pd.DataFrame(customers), CUSTOMERS, max_invalid_share=1.0) if customers else None
    return clean(t, c, CleaningConfig(**cfg))


def logged(result, rule: str, table: str = "transactions") -> pd.DataFrame:
    ch = result.changes
    return ch[(ch["table"] == table) & (ch["rule"] == rule)].sort_values("source_row")


def rule_row(result, rule: str, action: str, table: str = "transactions") -> dict:
    return next(
        r
        for r in result.audit["rules"]
        if (r["table"], r["rule"], r["action"]) == (table, rule, action)
    )


def assert_balanced(result) -> None:
    for name, t in result.audit["tables"].items():
        assert t["balanced"], (name, t)
        assert t["input_rows"] == t["kept_rows"] + t["dropped_rows"]


def lines(n: int, **more) -> dict:
    return {
        "customer_id": [f"C{i % 3}" for i in range(n)],
        "order_date": ["2024-01-05"] * n,
        **more,
    }


# --- amount from quantity x unit_price ---------------------------------------------------------


def test_uci_shaped_file_gets_its_amount_from_quantity_and_unit_price(tmp_path):
    path = tmp_path / "online_retail.csv"
    path.write_text(
        "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
        "536365,85123A,WHITE HANGING HEART,6,2010-12-01 08:26,2.55,17850,United Kingdom\n"
        "536365,71053,WHITE METAL LANTERN,6,2010-12-01 08:26,3.39,17850,United Kingdom\n"
        "536366,22633,HAND WARMER,6,2010-12-01 08:28,1.85,17850,United Kingdom\n"
        "536367,84879,ASSORTED BIRD ORNAMENT,32,2010-12-01 08:34,1.69,13047,France\n",
        encoding="utf-8",
    )
    t = read_table(path, TRANSACTIONS, UCI_MAP)
    r = clean(t, None, CleaningConfig(reference_date=REF))
    assert r.transactions["amount"].tolist() == pytest.approx([15.3, 20.34, 11.1, 54.08])
    assert any("amount = quantity x unit_price on every row" in n for n in r.audit["notes"])
    assert logged(r, "amount_computed").empty and logged(r, "amount_mismatch").empty
    assert r.audit["missing_rates"]["transactions"]["amount"]["input"] == 0
    assert_balanced(r)


def test_unit_price_only_computes_amount_on_every_row():
    r = run(lines(3, quantity=[2, 3, -1], unit_price=[1.5, "¥2", 4.0]))
    assert r.transactions["amount"].tolist() == [3.0, 6.0]  # -4 is no refund of anything
    assert logged(r, "nonpositive_amount")["source_row"].tolist() == [2]
    assert r.changes["rule"].isin(["nonpositive_amount"]).all()
    assert_balanced(r)


def test_unreadable_quantity_makes_the_computed_amount_unreadable():
    r = run(lines(3, quantity=[2, "two", 1], unit_price=[1.0, 1.0, None]))
    assert r.transactions["source_row"].tolist() == [0]
    bad = logged(r, "unreadable_value")
    assert bad[["source_row", "action", "column", "old_value", "reason"]].values.tolist() == [
        [1, "drop", "amount", "two", "quantity: not a number"]
    ]
    # an empty unit price leaves the amount empty: a missing key field
    assert logged(r, "missing_key_field")[["source_row", "column"]].values.tolist() == [
        [2, "amount"]
    ]
    assert_balanced(r)


def test_all_three_agreeing_within_rounding_flag_nothing():
    r = run(
        lines(
            4,
            amount=[0.3, 1_000_000.5, 10.0, 10.01],
            quantity=[3, 1, 4, 4],
            unit_price=[0.1, 1_000_001.0, 2.5, 2.5],  # 0.5 off a million: within 1e-6 x amount
        )
    )
    assert logged(r, "amount_mismatch").empty
    assert not r.transactions["flag_amount_mismatch"].any()
    assert r.transactions["amount"].tolist() == [0.3, 1_000_000.5, 10.0, 10.01]
    assert rule_row(r, "amount_mismatch", "flag")["rows"] == 0
    assert_balanced(r)


def test_disagreeing_amount_is_kept_and_flagged_with_the_row_logged():
    r = run(lines(3, amount=[10.0, 12.0, 5.0], quantity=[2, 2, 1], unit_price=[5.0, 5.0, None]))
    assert r.transactions["amount"].tolist() == [10.0, 12.0, 5.0]  # the given amount wins
    assert r.transactions["flag_amount_mismatch"].tolist() == [False, True, False]
    row = logged(r, "amount_mismatch")
    assert row[["source_row", "action", "column", "old_value"]].values.tolist() == [
        [1, "flag", "amount", "12.0"]
    ]
    assert rule_row(r, "amount_mismatch", "flag")["policy"] == "flag"
    assert_balanced(r)


def test_mismatch_policy_fix_takes_quantity_times_unit_price():
    r = run(
        lines(2, amount=[10.0, 12.0], quantity=[2, 2], unit_price=[5.0, 5.0]),
        policies={"amount_mismatch": "fix"},
    )
    assert r.transactions["amount"].tolist() == [10.0, 10.0]
    row = logged(r, "amount_mismatch")
    assert row[["source_row", "action", "old_value", "new_value"]].values.tolist() == [
        [1, "change", "12.0", "10.0"]
    ]
    assert_balanced(r)


def test_empty_amount_is_computed_and_logged_when_both_parts_are_given():
    r = run(lines(3, amount=[10.0, None, None], quantity=[2, 3, None], unit_price=[5.0, 2.0, 1.0]))
    assert r.transactions["amount"].tolist() == [10.0, 6.0]
    row = logged(r, "amount_computed")
    assert row[["source_row", "action", "new_value"]].values.tolist() == [[1, "change", "6.0"]]
    assert logged(r, "missing_key_field")["source_row"].tolist() == [2]
    assert_balanced(r)


@pytest.mark.parametrize("extra", [{}, {"quantity": [1]}, {"unit_price": [1.0]}])
def test_neither_amount_nor_quantity_and_unit_price_is_a_contract_error(extra):
    df = pd.DataFrame({"customer_id": ["A"], "order_date": ["2024-01-01"], **extra})
    with pytest.raises(InputError, match="missing required column") as exc:
        type_table(df, TRANSACTIONS)
    assert "amount (looked for 'amount', or for 'quantity' and 'unit_price')" in str(exc.value)


def test_the_error_names_mapped_source_columns(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("CustomerID,InvoiceDate,Quantity\nA,2024-01-01,1\n", encoding="utf-8")
    with pytest.raises(InputError) as exc:
        read_table(path, TRANSACTIONS, UCI_MAP)
    assert "or for 'Quantity' and 'UnitPrice'" in str(exc.value)


# --- regions beyond China -------------------------------------------------------------------


def test_a_few_foreign_regions_are_kept_and_flagged_among_chinese_ones():
    regions = ["粤-深圳", "北京市", "广东省广州市", "Singapore", " France ", "火星", "Unspecified"]
    regions += ["上海"] * 3
    r = run(lines(len(regions), amount=[1.0] * len(regions), region=regions))
    out = r.transactions.set_index("source_row")
    assert out.loc[[0, 1, 2, 7], "region"].tolist() == [
        "广东-深圳",
        "北京-北京",
        "广东-广州",
        "上海-上海",
    ]
    assert out.loc[[3, 4], "region"].tolist() == ["Singapore", "France"]  # kept, trimmed
    assert out.loc[[3, 4], "province"].tolist() == ["Singapore", "France"]
    assert out.loc[[3, 4], "city"].isna().all()
    assert out.loc[[5, 6], ["region", "province", "city"]].isna().all().all()  # nothing named
    assert out["flag_region_foreign"].tolist() == [False] * 3 + [True, True] + [False] * 5
    foreign = logged(r, "region_foreign")
    assert foreign[["source_row", "action", "old_value"]].values.tolist() == [
        [3, "flag", "Singapore"],
        [4, "flag", "France"],
    ]
    assert logged(r, "region_unrecognized")["source_row"].tolist() == [5, 6]
    assert rule_row(r, "region_foreign", "flag")["rows"] == 2
    assert not any("country column" in w for w in r.audit["warnings"])
    assert_balanced(r)


def test_a_country_column_gives_one_warning_and_no_per_row_flood():
    countries = ["United Kingdom"] * 40 + ["France"] * 5 + ["EIRE"] * 3 + ["Unspecified", "广东"]
    n = len(countries)
    r = run(lines(n, amount=[1.0] * n, region=countries))
    out = r.transactions.set_index("source_row")
    assert out["region"].tolist()[:48] == countries[:48]
    assert out["province"].tolist()[:48] == countries[:48]
    assert out["city"].iloc[:48].isna().all()
    assert out.loc[n - 1, "region"] == "广东"  # Chinese values still normalised
    assert pd.isna(out.loc[n - 2, "region"])  # a placeholder names no place
    assert "flag_region_foreign" not in out
    assert logged(r, "region_foreign").empty
    assert logged(r, "region_unrecognized")["source_row"].tolist() == [n - 2]
    counted = rule_row(r, "region_foreign", "flag")
    assert counted["rows"] == 48
    assert counted["reasons"] == {"region: country column, not logged per row": 48}
    about = [w for w in r.audit["warnings"] if "region" in w]
    assert len(about) == 1 and "48 of 50 values (96%)" in about[0]
    assert "country column" in about[0] and "'United Kingdom'" in about[0]
    assert_balanced(r)


def test_a_customer_country_column_gives_province_the_country():
    c = {
        "customer_id": ["A", "B", "C", "D"],
        "age": [30, 40, 50, 60],
        "region": ["United Kingdom", "Germany", "Germany", "粤-深圳"],
    }
    r = run(lines(1, amount=[1.0]), c)
    cu = r.customers.set_index("customer_id")
    assert cu["province"].tolist() == ["United Kingdom", "Germany", "Germany", "广东"]
    assert cu["region"].tolist() == ["United Kingdom", "Germany", "Germany", "广东-深圳"]
    assert logged(r, "region_foreign", "customers").empty
    assert sum("customers.region" in w for w in r.audit["warnings"]) == 1
    assert_balanced(r)


def test_region_foreign_policy_null_makes_foreign_names_missing():
    regions = ["France", "粤-深圳", "京"]
    r = run(lines(3, amount=[1.0] * 3, region=regions), policies={"region_foreign": "null"})
    assert r.transactions["region"].isna().tolist() == [True, False, False]
    assert r.transactions["province"].isna().tolist() == [True, False, False]
    ch = logged(r, "region_foreign")
    assert ch[["source_row", "action", "old_value"]].values.tolist() == [[0, "change", "France"]]


def test_cleaning_a_clean_real_log_again_changes_nothing():
    tx = lines(
        6,
        amount=[10.0, 12.0, None, 3.0, 4.0, 5.0],
        quantity=[2, 2, 3, 1, 1, 1],
        unit_price=[5.0, 5.0, 2.0, 3.0, 4.0, 5.0],
        region=["France", "粤-深圳", "京", "上海", "北京", "EIRE"],
    )
    first = run(tx)
    again = clean(
        type_table(first.transactions, TRANSACTIONS), None, CleaningConfig(reference_date=REF)
    )
    assert (again.changes["action"] != "change").all()
    data = [c for c in first.transactions.columns if c != "source_row"]
    pd.testing.assert_frame_equal(
        first.transactions[data], again.transactions[data], check_dtype=False
    )
    assert np.array_equal(first.transactions["flag_amount_mismatch"], [False, True] + [False] * 4)
