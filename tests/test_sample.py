"""Generated data: deterministic, realistic enough, and its injected dirt is exactly what the
audit finds (row for row, not just in count). Rows are order lines; refunds repeat their order's
id or come on cancellation invoices (C...), cleaned with the sample's own cancel_id_pattern."""

from __future__ import annotations

import json
from datetime import date

import numpy as np
import pandas as pd
import pytest

from custseg.sample import CANCEL_ID_PATTERN, GROUPS, SampleConfig, generate

# injected dirt -> (rule, action, column) the cleaning audit must report for exactly those rows
EXPECTED = {
    "bad_date": ("unreadable_value", "drop", "order_date"),
    "missing_amount": ("missing_key_field", "drop", "amount"),
    "missing_customer": ("missing_key_field", "drop", "customer_id"),
    "negative_amount": ("nonpositive_amount", "drop", None),
    "future_date": ("future_date", "drop", None),
    "outlier": ("extreme_amount", "flag", None),
    "unknown_customer": ("unknown_customer", "flag", None),
    "duplicate_row": ("duplicate_transaction", "drop", None),
    "test_account": ("test_account", "drop", None),
}


@pytest.fixture(scope="module")
def cleaned(sample_dir, tmp_path_factory):
    """The sample cleaned as `custseg run` cleans it: defaults plus the sample's convention for
    cancellation invoices (cancel_id_pattern); returns (result, out_dir). Overrides conftest's."""
    from features.cleaning import CleaningConfig, clean
    from features.contract import CUSTOMERS, TRANSACTIONS, read_table

    out = tmp_path_factory.mktemp("clean-sample")
    result = clean(
        read_table(sample_dir / "transactions.csv", TRANSACTIONS),
        read_table(sample_dir / "customers.csv", CUSTOMERS),
        CleaningConfig(cancel_id_pattern=CANCEL_ID_PATTERN),
    )
    result.write(out)
    return result, out


def _lines(sample_dir) -> pd.DataFrame:
    """Every row of the generated log with its truth (source_row is the row number; `day` the
    true order date)."""
    raw = pd.read_csv(
        sample_dir / "transactions.csv",
        dtype={"order_id": str, "customer_id": str, "product": str, "order_date": str},
    )
    truth = pd.read_parquet(sample_dir / "truth" / "transactions.parquet")
    assert (truth["source_row"].to_numpy() == np.arange(len(raw))).all()  # one row per row
    return raw.join(truth.drop(columns="source_row").rename(columns={"order_date": "day"}))


def _rows(changes, table, rule, action, column=None):
    hit = changes[
        (changes["table"] == table) & (changes["rule"] == rule) & (changes["action"] == action)
    ]
    if column:
        hit = hit[hit["column"] == column]
    return set(hit["source_row"])


def test_same_seed_same_data():
    a, b = (
        generate(SampleConfig(customers=300, seed=1)),
        generate(SampleConfig(customers=300, seed=1)),
    )
    pd.testing.assert_frame_equal(a["transactions"], b["transactions"])
    c = generate(SampleConfig(customers=300, seed=2))
    assert not a["transactions"].equals(c["transactions"])


def test_latent_groups_and_behaviour(sample_dir):
    truth = pd.read_parquet(sample_dir / "truth" / "customers.parquet")
    real = truth[truth["latent_group"] != "test"]
    shares = real.drop_duplicates("true_customer_id")["latent_group"].value_counts(normalize=True)
    for g in GROUPS:
        assert shares[g.name] == pytest.approx(g.share, abs=0.03)
    assert real.loc[real["latent_group"] == "dormant", "churn_date"].notna().all()
    tx = pd.read_parquet(sample_dir / "truth" / "transactions.parquet")
    lines = _lines(sample_dir)
    clean = lines[lines["dirt"] == ""]
    per_customer = clean.groupby("true_customer_id")["order_id"].nunique()  # orders, not lines
    group_of = real.drop_duplicates("true_customer_id").set_index("true_customer_id")[
        "latent_group"
    ]
    mean_orders = per_customer.groupby(group_of).mean()
    assert mean_orders["loyal_high_value"] > 3 * mean_orders["occasional_price_sensitive"]
    assert mean_orders["one_off"] < 1.5
    month = tx.loc[tx["dirt"] == "", "order_date"].dt.month.value_counts()
    assert month[11] > 1.3 * month[9]  # 双11 season


@pytest.mark.parametrize("dirt", sorted(EXPECTED))
def test_audit_finds_exactly_the_injected_transaction_dirt(cleaned, sample_dir, dirt):
    result, _ = cleaned
    truth = pd.read_parquet(sample_dir / "truth" / "transactions.parquet")
    rule, action, column = EXPECTED[dirt]
    injected = set(truth.loc[truth["dirt"] == dirt, "source_row"])
    assert injected, "the sample should contain this dirt"
    assert _rows(result.changes, "transactions", rule, action, column) == injected


def test_audit_counts_match_the_summary(cleaned, sample_dir):
    result, out = cleaned
    summary = json.loads((sample_dir / "truth" / "summary.json").read_text())
    audit = json.loads((out / "audit.json").read_text())
    t = audit["tables"]["transactions"]["dropped_by_rule"]
    d = summary["transaction_dirt"]
    assert t["duplicate_transaction"] == d["duplicate_row"]
    assert t["missing_key_field"] == d["missing_amount"] + d["missing_customer"]
    assert t["nonpositive_amount"] == d["negative_amount"]
    c = audit["tables"]["customers"]
    assert c["kept_rows"] == summary["customers"]["real"]
    assert c["dropped_by_rule"]["test_account"] == summary["customer_dirt"]["test_account"]
    assert (
        c["dropped_by_rule"]["duplicate_customer"] == summary["customer_dirt"]["duplicate_customer"]
    )
    assert audit["merges"]["to_complete"] == summary["customer_dirt"]["to_complete"]


def test_duplicates_merge_to_the_true_customer(cleaned, sample_dir):
    result, _ = cleaned
    truth = pd.read_parquet(sample_dir / "truth" / "customers.parquet")
    dups = truth[truth["dirt"] == "duplicate_customer"].set_index("customer_id")["true_customer_id"]
    got = result.id_map.set_index("source_customer_id")["customer_id"]
    assert got.reindex(dups.index).tolist() == dups.tolist()
    tx_truth = pd.read_parquet(sample_dir / "truth" / "transactions.parquet").set_index(
        "source_row"
    )
    kept = result.transactions.set_index("source_row")["customer_id"]
    expected = tx_truth["true_customer_id"].reindex(kept.index)
    normal = tx_truth["dirt"].reindex(kept.index) != "unknown_customer"
    assert (kept[normal] == expected[normal]).all()


def test_customer_rules_find_injected_rows(cleaned, sample_dir):
    result, _ = cleaned
    truth = pd.read_parquet(sample_dir / "truth" / "customers.parquet")
    row_of = pd.Series(range(len(truth)), index=truth["customer_id"])
    for dirt, rule in (
        ("invalid_age", "invalid_age"),
        ("bad_region", "region_unrecognized"),
        ("bad_signup_date", "unreadable_value"),
    ):
        expected = set(row_of[truth.loc[truth["dirt"] == dirt, "customer_id"]])
        assert _rows(result.changes, "customers", rule, "change") == expected, dirt
    # regions: every recognised one equals the canonical 省-市 the generator started from
    canon = truth.set_index("customer_id")["region"]
    got = result.customers.set_index("customer_id")["region"]
    both = got.dropna().index.intersection(canon.dropna().index)
    assert len(both) > 0.9 * len(got)
    assert (got[both].to_numpy() == canon[both].to_numpy()).all()


def test_orders_before_signup_are_flagged(cleaned, sample_dir):
    result, _ = cleaned
    truth = pd.read_parquet(sample_dir / "truth" / "customers.parquet")
    tx = pd.read_parquet(sample_dir / "truth" / "transactions.parquet")
    late = set(truth.loc[truth["dirt"] == "signup_after_first_order", "customer_id"])
    signup = truth.set_index("customer_id")["signup_date"]
    m = tx[tx["dirt"].isin(["", "refund", "outlier"]) & tx["true_customer_id"].isin(late)]
    expected = set(m.loc[m["order_date"] < m["true_customer_id"].map(signup), "source_row"])
    assert (
        expected
        and _rows(result.changes, "transactions", "order_before_signup", "flag") == expected
    )


def test_no_personal_data_in_any_output_file(cleaned, sample_dir):
    _, out = cleaned
    raw = pd.read_csv(sample_dir / "customers.csv", dtype=str)
    phones = (
        raw["phone"]
        .dropna()
        .str.replace(r"\D", "", regex=True)
        .str[-11:]
        .sample(200, random_state=0)
    )
    emails = raw["email"].dropna().sample(200, random_state=0)
    blob = b"".join(p.read_bytes() for p in out.iterdir() if p.is_file())
    text = blob.decode("utf-8", errors="ignore")
    assert not [p for p in phones if p in text]
    assert not [e for e in emails if e in text or e.lower() in text]


def test_html_report_is_readable(cleaned):
    _, out = cleaned
    html = (out / "audit.html").read_text("utf-8")
    for needle in (
        "Cleaning audit",
        "input = kept + dropped",
        "duplicate_customer",
        "Missing rates",
        "example rows",
    ):
        assert needle in html


def test_orders_have_lines_that_add_up_to_the_order(sample_dir):
    lines = _lines(sample_dir)
    clean = lines[lines["dirt"] == ""]
    orders = clean.groupby("order_id").agg(
        lines=("amount", "size"),
        cents=("amount", lambda a: round(a.sum() * 100)),
        order_cents=("order_amount", lambda a: round(a.iloc[0] * 100)),
        products=("product", "nunique"),
        customers=("customer_id", "nunique"),
        days=("day", "nunique"),
        dates=("order_date", "nunique"),  # one export writes one order's date one way
    )
    multi = orders[orders["lines"] > 1]
    assert 0.1 < len(multi) / len(orders) < 0.3 and set(multi["lines"]) == {2, 3, 4}
    assert (orders["cents"] == orders["order_cents"]).all()  # to the cent, every order
    assert (clean["amount"] > 0).all()
    assert (orders["products"] == orders["lines"]).all()  # a product a line: no false copies
    assert (orders[["customers", "days", "dates"]] == 1).all().all()
    # an order's lines are adjacent in the log
    first, last = (clean.reset_index().groupby("order_id")["index"].agg(f) for f in ("min", "max"))
    assert ((last - first + 1) == orders["lines"]).all()


def test_refunds_repeat_their_order_or_come_on_cancellation_invoices(sample_dir):
    lines = _lines(sample_dir)
    cancel = lines["order_id"].str.startswith("C")
    refund = lines["dirt"] == "refund"
    assert refund[cancel].all() and (lines.loc[cancel, "amount"] < 0).all()
    assert 0.3 < cancel.sum() / refund.sum() < 0.7  # a mix of both kinds
    orders = set(lines.loc[lines["dirt"] == "", "order_id"])
    assert lines.loc[refund & ~cancel, "order_id"].isin(orders).all()
    assert not lines.loc[cancel, "order_id"].isin(orders).any()
    summary = json.loads((sample_dir / "truth" / "summary.json").read_text())
    assert summary["transactions"]["cancellation_invoices"] == cancel.sum()


def test_cancellations_are_refunds_and_features_count_orders(cleaned, sample_dir):
    from features.build import build_features

    result, _ = cleaned
    lines = _lines(sample_dir)
    cancellations = set(lines.index[lines["order_id"].str.startswith("C")])  # source rows
    tx = result.transactions
    kept_cancel = tx[tx["order_id"].str.startswith("C")]
    # every cancellation line (its customer bought before) is kept as a refund, none dropped
    assert set(kept_cancel["source_row"]) == cancellations and kept_cancel["is_refund"].all()
    assert tx.loc[tx["is_refund"], "amount"].lt(0).all()

    as_of = date(2026, 3, 31)
    features = build_features(tx, result.customers, as_of).set_index("customer_id")
    orders = tx[~tx["is_refund"] & (tx["order_date"] <= pd.Timestamp(as_of))]
    expected = orders.groupby("customer_id", observed=True)["order_id"].nunique()
    assert len(expected) > 2000
    assert (features["frequency_orders"].reindex(expected.index) == expected).all()
    per_line = orders.groupby("customer_id", observed=True).size()
    assert (expected < per_line).sum() > 100  # many customers have more lines than orders
