"""Feature and label definitions on hand-made orders, at their boundaries."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from core.errors import InputError
from features import registry
from features.build import build_features, build_features_from_parquet, build_labels
from features.definitions import FeatureConfig, TagConfig

D = date(2026, 6, 30)


def tx(rows: list[tuple]) -> pd.DataFrame:
    """(customer, days before D, amount[, channel[, category[, is_refund]]])"""
    full = [r + (None,) * (6 - len(r)) for r in rows]
    df = pd.DataFrame(
        full, columns=["customer_id", "ago", "amount", "channel", "category", "is_refund"]
    )
    df["order_date"] = pd.to_datetime([D - timedelta(days=int(a)) for a in df.pop("ago")])
    df["is_refund"] = df["is_refund"].astype("boolean").fillna(False).astype(bool)
    df["channel"] = df["channel"].fillna("online")
    df["category"] = df["category"].fillna("食品")
    return df


def one(df: pd.DataFrame, customer: str = "A", **kw) -> pd.Series:
    f = build_features(df, None, D, **kw)
    return f.set_index("customer_id").loc[customer]


def test_rfm_and_windows_boundaries():
    # orders 0, 29, 30, 89, 90 and 400 days before D
    row = one(
        tx(
            [
                ("A", 0, 10.0),
                ("A", 29, 20.0),
                ("A", 30, 30.0),
                ("A", 89, 40.0),
                ("A", 90, 50.0),
                ("A", 400, 60.0),
            ]
        )
    )
    assert row["recency_days"] == 0 and row["tenure_days"] == 400
    assert row["frequency_orders"] == 6 and row["frequency_days"] == 6
    assert row["monetary"] == 210.0 and row["max_order_value"] == 60.0
    assert row["avg_order_value"] == pytest.approx(35.0)
    assert row["orders_30d"] == 2 and row["spend_30d"] == 30.0  # 30 days ago is outside 30d
    assert row["orders_90d"] == 4 and row["spend_90d"] == 100.0
    assert row["orders_365d"] == 5 and row["max_order_value_365d"] == 50.0
    assert row["avg_order_value_30d"] == pytest.approx(15.0)


def test_distinct_days_and_interpurchase_gaps():
    row = one(tx([("A", 100, 1.0), ("A", 100, 1.0), ("A", 60, 1.0), ("A", 0, 1.0)]))
    assert row["frequency_orders"] == 4 and row["frequency_days"] == 3
    assert row["interpurchase_mean_days"] == pytest.approx(50.0)  # gaps 40 and 60
    assert row["interpurchase_std_days"] == pytest.approx(np.std([40, 60], ddof=1))
    assert row["overdue_ratio"] == pytest.approx(0.0)


@pytest.mark.parametrize("engine", ["duckdb", "polars"])
def test_refunds_leave_the_gaps_and_order_features_alone(engine):
    # refunds on an order day, between two order days and after the last order; the gap
    # mean and spread (from first/last day, day count and squared gaps) are the orders' alone
    orders = [("A", 100, 10.0), ("A", 70, 20.0), ("A", 30, 30.0), ("A", 0, 40.0)]
    refunds = [
        ("A", ago, amount, "online", "食品", True) for ago, amount in [(70, -5.0), (50, -2.0)]
    ]
    cfg = FeatureConfig(
        tags=(TagConfig("every_order", alpha=1.0), TagConfig("refunds", refund=True, alpha=1.0))
    )
    df = tx(orders + refunds + [("A", 10, -1.0, "offline", "食品", True)])
    row = build_features(df, None, D, cfg=cfg, engine=engine).iloc[0]
    assert row["frequency_orders"] == 4 and row["frequency_days"] == 4
    assert row["interpurchase_mean_days"] == pytest.approx(100 / 3)  # gaps 30, 40, 30
    assert row["interpurchase_std_days"] == pytest.approx(np.std([30, 40, 30], ddof=1))
    assert row["monetary"] == 100.0 and row["max_order_value"] == 40.0
    assert row["orders_30d"] == 1 and row["spend_90d"] == 90.0 and row["order_days_90d"] == 3
    assert row["refund_amount"] == 8.0 and row["refund_rate"] == pytest.approx(0.75)
    assert row["online_share"] == 1.0  # the offline refund is not an order
    assert row["tag_every_order"] == 4.0 and row["tag_refunds"] == 3.0


def test_single_order_has_no_gap():
    row = one(tx([("A", 10, 5.0)]))
    assert np.isnan(row["interpurchase_mean_days"]) and np.isnan(row["overdue_ratio"])


def test_trend_compares_last_90_days_with_the_90_before():
    row = one(tx([("A", 10, 100.0), ("A", 20, 100.0), ("A", 100, 50.0), ("A", 200, 999.0)]))
    assert row["orders_trend_90d"] == 1 and row["spend_trend_90d"] == pytest.approx(150.0)


def test_shares_refunds_and_channel():
    df = tx(
        [
            ("A", 10, 100.0, "online", "服装"),
            ("A", 20, 300.0, "offline", "食品"),
            ("A", 5, -50.0, "online", "服装", True),
        ]
    )
    row = one(df)
    assert row["frequency_orders"] == 2 and row["monetary"] == 400.0
    assert row["refund_amount"] == 50.0 and row["net_monetary"] == 350.0
    assert row["refund_rate"] == pytest.approx(0.5) and row["online_share"] == pytest.approx(0.5)
    assert row["category_share__服装"] == pytest.approx(0.25)
    assert row["category_share__食品"] == pytest.approx(0.75)


@pytest.mark.parametrize(
    "orders,stage",
    [
        ([("A", 10, 1.0)], "new"),  # first order within 30 days
        ([("A", 10, 1.0), ("A", 200, 1.0)], "active"),
        ([("A", 90, 1.0), ("A", 300, 1.0)], "active"),  # boundary: 90 days is still active
        ([("A", 91, 1.0), ("A", 300, 1.0)], "at_risk"),
        ([("A", 180, 1.0), ("A", 300, 1.0)], "at_risk"),
        ([("A", 181, 1.0), ("A", 300, 1.0)], "lost"),
    ],
)
def test_lifecycle_stages(orders, stage):
    assert one(tx(orders))["lifecycle_stage"] == stage


def test_lifecycle_thresholds_are_configurable():
    cfg = FeatureConfig(active_days=10, lost_days=20)
    assert one(tx([("A", 15, 1.0), ("A", 300, 1.0)]), cfg=cfg)["lifecycle_stage"] == "at_risk"


def test_orders_after_the_cutoff_and_refund_only_customers_are_ignored():
    f = build_features(
        tx([("A", -5, 1.0), ("A", 3, 2.0), ("B", 4, -1.0, "online", "食品", True)]), None, D
    )
    assert f["customer_id"].tolist() == ["A"] and f.loc[0, "monetary"] == 2.0


def test_customer_attributes_and_age_bands():
    cust = pd.DataFrame(
        {
            "customer_id": ["A", "B", "C"],
            "signup_date": pd.to_datetime(["2026-06-01", None, "2020-01-01"]),
            "age": [24.0, 25.0, None],
            "gender": ["male", "female", None],
            "province": ["广东", None, None],
            "region": ["广东-深圳", None, None],
            "industry": ["零售", None, None],
        }
    )
    f = build_features(tx([("A", 1, 1.0), ("B", 1, 1.0), ("C", 1, 1.0)]), cust, D).set_index(
        "customer_id"
    )
    assert f.loc["A", "signup_tenure_days"] == 29 and np.isnan(f.loc["B", "signup_tenure_days"])
    assert f.loc["A", "age_band"] == "<25" and f.loc["B", "age_band"] == "25-34"
    assert pd.isna(f.loc["C", "age_band"]) and f.loc["A", "region"] == "广东-深圳"


def test_every_column_is_in_the_registry():
    f = build_features(tx([("A", 1, 1.0, "online", "服装"), ("B", 3, 2.0)]), None, D)
    described = registry.describe(list(f.columns))
    assert [d.name for d in described] == list(f.columns[1:])
    assert all(d.description and d.unit for d in described)
    assert f.attrs["as_of"] == str(D) and len(f.attrs["definition_hash"]) == 16


def test_definition_hash_changes_with_the_config():
    df = tx([("A", 1, 1.0)])
    a = build_features(df, None, D).attrs["definition_hash"]
    b = build_features(df, None, D, cfg=FeatureConfig(active_days=60)).attrs["definition_hash"]
    assert a != b and a == build_features(df, None, D).attrs["definition_hash"]


def test_labels_windows():
    # cutoff D: A buys again at D+30 (repurchase yes), B at D+31 (no repurchase, not churned),
    # C at D+91 (churned), E has no order on or before D (not labelled)
    df = tx(
        [
            ("A", 10, 1.0),
            ("A", -30, 1.0),
            ("B", 10, 1.0),
            ("B", -31, 1.0),
            ("C", 10, 1.0),
            ("C", -91, 1.0),
            ("E", -5, 1.0),
        ]
    )
    lab = build_labels(df, [D], repurchase_days=30, churn_days=90).set_index("customer_id")
    assert sorted(lab.index) == ["A", "B", "C"]
    assert lab["repurchase"].to_dict() == {"A": True, "B": False, "C": False}
    assert lab["churn"].to_dict() == {"A": False, "B": False, "C": True}
    assert (lab["cutoff"] == pd.Timestamp(D)).all()


def test_labels_for_several_cutoffs():
    df = tx([("A", 100, 1.0), ("A", 50, 1.0)])
    cutoffs = [D - timedelta(days=100), D - timedelta(days=60)]
    lab = build_labels(df, cutoffs, repurchase_days=30, churn_days=90)
    assert lab["repurchase"].tolist() == [False, True] and lab["churn"].tolist() == [False, False]


def test_minimal_log_without_optional_columns():
    df = pd.DataFrame(
        {
            "customer_id": ["A", "B"],
            "order_date": pd.to_datetime(["2026-06-01", "2026-06-20"]),
            "amount": [1.0, 2.0],
        }
    )
    f = build_features(df, None, D)
    assert f["customer_id"].tolist() == ["A", "B"] and f["online_share"].isna().all()
    assert not [c for c in f.columns if c.startswith("category_share__")]


def test_reference_categories_need_the_category_column(tmp_path):
    # monitoring passes the champions' categories; a log mapped without category must say so
    df = tx([("A", 1, 10.0)]).drop(columns=["category"])
    wanted = r"2 category share\(s\) \(食品, 服装\).*--column category="
    with pytest.raises(InputError, match=wanted):
        build_features(df, None, D, categories=["食品", "服装"])
    df.to_parquet(tmp_path / "tx.parquet")
    with pytest.raises(InputError, match="no category column"):
        build_features_from_parquet(tmp_path / "tx.parquet", D, categories=["食品"])
    assert len(build_features(df, None, D, categories=[])) == 1


def test_cutoff_before_any_order_gives_empty_tables():
    df = tx([("A", 1, 1.0)])
    assert build_features(df, None, date(2020, 1, 1)).empty
    assert build_labels(df, [date(2020, 1, 1)]).empty
