"""The online path gives the batch features for the same customers and cutoff."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from features.build import build_features
from features.online import OnlineFeatures


@pytest.fixture(scope="module")
def batch(cleaned):
    result, _ = cleaned
    as_of = date(2026, 3, 31)
    return result, as_of, build_features(result.transactions, result.customers, as_of)


@pytest.mark.parametrize("n", [1, 3, 25])
def test_online_equals_batch_for_a_few_customers(batch, n):
    result, as_of, table = batch
    online = OnlineFeatures(table.attrs["categories"])
    ids = table["customer_id"].sample(n, random_state=n)
    tx = result.transactions[result.transactions["customer_id"].isin(ids)]
    cust = result.customers[result.customers["customer_id"].isin(ids)]
    got = online(tx, as_of, cust)
    want = table[table["customer_id"].isin(ids)].reset_index(drop=True)
    pd.testing.assert_frame_equal(got, want, rtol=1e-12)


def test_one_query_serves_any_cutoff_and_no_customer_table(batch):
    result, _, table = batch
    online = OnlineFeatures(table.attrs["categories"], with_customers=False)
    ids = table["customer_id"].head(5)
    tx = result.transactions[result.transactions["customer_id"].isin(ids)]
    for as_of in (date(2025, 12, 31), date(2026, 6, 30)):
        want = build_features(tx, None, as_of, categories=table.attrs["categories"])
        pd.testing.assert_frame_equal(online(tx, as_of), want, rtol=1e-12)


def test_categories_are_fixed_by_the_snapshot(batch):
    result, as_of, _ = batch
    online = OnlineFeatures(["服装", "不存在的品类"], with_customers=False)
    tx = result.transactions.head(50)
    got = online(tx, as_of)
    assert [c for c in got.columns if c.startswith("category_share__")] == [
        "category_share__服装",
        "category_share__不存在的品类",
    ]
    assert (got["category_share__不存在的品类"] == 0).all()


def test_attribute_columns_stay_when_a_customer_row_is_missing(batch):
    result, as_of, table = batch
    online = OnlineFeatures(table.attrs["categories"])
    got = online(result.transactions.head(20), as_of)  # no customer table given this time
    assert list(got.columns) == list(table.columns) and got["age_band"].isna().all()
