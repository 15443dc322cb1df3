"""Cancellation invoices refund earlier purchases (cancel_id_pattern); lines that sell no
product are kept out (non_product_pattern). Every row still ends kept or dropped with a reason."""

from __future__ import annotations

from datetime import date

import pytest

from core.errors import ConfigError
from features.cleaning import CleaningConfig
from tests.test_rules import logged, run, tx

CANCEL = {"cancel_id_pattern": "^C"}


def _log(**cfg):
    return run(
        tx(
            ["A", "A", "A", "B", "A", "A", "D", "D"],
            [
                "2024-01-02",
                "2024-01-02",
                "2024-01-03",
                "2024-01-04",
                "2024-01-05",
                "2024-02-01",
                "2024-01-01",
                "2024-01-09",
            ],
            [10.0, 20.0, -20.0, -5.0, -5.0, -1.0, 7.0, -8.0],
            order_id=[
                "536365",
                "536365",
                "C536379",
                "C536380",
                "C536381",
                "C536390",
                "536366",
                "C5364",
            ],
            product=["85123A", "71053", "71053", "22633", "85123A", "POST", "POST", "22633"],
        ),
        **cfg,
    )


def test_cancellation_lines_refund_earlier_purchases_within_what_was_paid():
    r = _log(**CANCEL)
    kept = r.transactions.set_index("source_row")
    # A paid 30 and cancels 20 + 5 + 1; B never bought; D cancels 8 of the 7 it paid
    assert kept.loc[[2, 4, 5], "is_refund"].all() and kept.loc[2, "amount"] == -20.0
    assert logged(r, "nonpositive_amount") == [3, 7]
    balance = r.audit["tables"]["transactions"]
    assert balance["balanced"] and balance["input_rows"] == 8


def test_without_the_pattern_cancellations_are_dropped_as_before():
    r = _log()
    assert logged(r, "nonpositive_amount") == [2, 3, 4, 5, 7]
    assert not r.transactions["is_refund"].any()


def test_refunds_lower_net_spend_in_the_features():
    from features.build import build_features

    r = _log(**CANCEL)
    f = build_features(r.transactions, None, date(2024, 3, 1)).set_index("customer_id")
    assert f.loc["A", "refund_amount"] == pytest.approx(26.0)
    assert f.loc["A", "net_monetary"] == pytest.approx(30.0 - 26.0)


def test_non_product_lines_are_dropped_or_flagged_and_counted():
    r = _log(non_product_pattern=r"^(POST|DOT|M|BANK CHARGES)$", **CANCEL)
    assert logged(r, "non_product_line") == [5, 6]
    assert "POST" not in set(r.transactions["product"])
    rule = next(x for x in r.audit["rules"] if x["rule"] == "non_product_line")
    assert rule["rows"] == 2 and rule["action"] == "drop"
    flagged = _log(non_product_pattern="^POST$", policies={"non_product_line": "flag"}, **CANCEL)
    assert flagged.transactions["flag_non_product_line"].sum() == 2  # kept, marked


@pytest.mark.parametrize("key", ["cancel_id_pattern", "non_product_pattern"])
def test_a_bad_pattern_is_a_config_error(key):
    with pytest.raises(ConfigError, match=rf"cleaning.{key} = '\(': not a valid regular"):
        CleaningConfig.from_dict({key: "("})
