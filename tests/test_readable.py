"""What readers get (issue 25): scores.csv names each segment and its strategy, profiles.csv is
rounded, CSVs open in Excel with their Chinese intact, the report says what defines a segment
and names the model's inputs with units, no "-0.0%"."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date

import numpy as np
import pandas as pd
import pytest

from core.catalog import PREDICTION_TARGETS
from core.formats import number, pct
from core.outputs import CSV_ENCODING, csv_text, write_csv

AS_OF = date(2026, 6, 30)
AUDIT = {"tables": {"transactions": {"kept_rows": 9, "input_rows": 9, "dropped_rows": 0}}}
SCHEMES = (
    "rfm_rules",
    "rfm_scores",
    "value_activity",
    "abc",
    "value_tiers",
    "clv_activity",
    "demographic",
    "behaviour_clusters",
)


@pytest.fixture(scope="module")
def fitted(sample_dir):
    """The default schemes on the shared sample's features; the clustering fitted with a fixed
    choice (K-Means, K = 5) rather than tuned: Optuna and the elbow plot are not tested here."""
    from features.contract import CUSTOMERS, TRANSACTIONS, read_table
    from features.pipeline import features_as_of
    from training.segmentation import FittedScheme, fit_schemes, load, parse
    from training.segmentation.clustering import Choice
    from training.segmentation.profile import profile

    table, _ = features_as_of(
        read_table(sample_dir / "transactions.csv", TRANSACTIONS),
        read_table(sample_dir / "customers.csv", CUSTOMERS),
        AS_OF,
    )
    # what `custseg run` adds before segmenting (the value model's CLV), here a stand-in
    table = table.assign(clv=(table["monetary"] * 0.8 + table["spend_180d"]).round(2))
    scheme_file = load()
    plain = [s for s in scheme_file.schemes if s.kind not in ("clustering", "tree")]
    schemes, skipped = fit_schemes(table, replace(scheme_file, schemes=plain))
    spec = next(s for s in scheme_file.schemes if s.kind == "clustering")
    kind = replace(
        parse(spec, scheme_file), chosen=Choice("behaviour", "log_standard", "kmeans", 5)
    )
    assigner = kind.fit(table)
    clusters = FittedScheme(
        spec.name, spec.kind, spec.description, assigner, kind.describe(assigner, table)
    )
    clusters.labels = assigner.assign(table)
    clusters.profile = profile(table, clusters.labels, clusters, scheme_file.strategies)
    schemes.append(clusters)
    assert not skipped and [s.name for s in schemes] == list(SCHEMES)
    return table, schemes


def test_numbers_never_print_minus_zero():
    assert pct(-0.00001) == "0.0%" and pct(-0.00001, signed=True) == "0.0%"
    assert pct(0.05, signed=True) == "+5.0%" and pct(-0.2) == "-20.0%"
    assert number(-0.0004) == "0.000" and number(-0.04, "{:+.1f} pp") == "0.0 pp"
    assert number(-1.5, "{:+.1f} pp") == "-1.5 pp" and number(-1e-9, "{:.3g}") == "-1e-09"
    assert number(None) == number(float("nan")) == pct(float("inf")) == "n/a"


def test_csvs_carry_a_bom_for_excel_and_read_back(tmp_path):
    frame = pd.DataFrame({"customer_id": ["007"], "name_zh": ["高价值客户"]})
    path = write_csv(frame, tmp_path / "x.csv", index=False)
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    assert path.read_bytes()[3:].decode("utf-8").startswith("customer_id,name_zh")
    for kwargs in ({}, {"encoding": CSV_ENCODING}):  # pandas skips the mark either way
        back = pd.read_csv(path, dtype=str, **kwargs)
        assert back.columns.tolist() == ["customer_id", "name_zh"], kwargs
        assert back.iloc[0].tolist() == ["007", "高价值客户"]
    assert csv_text(frame, index=False).startswith("\ufeffcustomer_id,")


def test_scores_name_each_segment_and_its_strategy(fitted, tmp_path):
    from training.scores import write_scores

    table, schemes = fitted
    paths = write_scores(tmp_path, table, AS_OF, AUDIT, schemes, {}, None, {}, [], None)
    assert paths["scores"].read_bytes().startswith(b"\xef\xbb\xbf")
    scores = pd.read_csv(paths["scores"], dtype={"customer_id": str})
    first = ["customer_id"] + [
        f"{t}_{c}" for t in PREDICTION_TARGETS for c in ("probability", "model")
    ]
    per_scheme = [
        f"segment_{s}{suffix}" for s in SCHEMES for suffix in ("", "_name", "_name_zh", "_strategy")
    ]
    assert scores.columns.tolist() == [*first, "active_tags", *per_scheme]
    for scheme in schemes:
        col = f"segment_{scheme.name}"
        assert scores[[col, f"{col}_name", f"{col}_strategy"]].notna().all().all(), col
        p = scheme.profile.iloc[:-1].set_index("segment")
        assert (scores[f"{col}_name"] == scores[col].map(p["name"])).all()
        assert (scores[f"{col}_name_zh"] == scores[col].map(p["name_zh"])).all()
        assert (scores[f"{col}_strategy"] == scores[col].map(p["strategy_direction"])).all()
    rules = scores[scores["segment_rfm_rules"] == "high_value"].iloc[0]
    assert rules["segment_rfm_rules_name_zh"] == "高价值客户"
    assert rules["segment_rfm_rules_strategy"] == "deepen the relationship and raise value"


def decimals(values: pd.Series) -> int:
    text = values.dropna().astype(str)
    return int(text.str.partition(".")[2].str.len().max())


def test_profiles_csv_is_rounded_and_opens_in_excel(fitted, tmp_path):
    from training.segmentation.stage import write

    table, schemes = fitted
    path = write(tmp_path, table, schemes)["profiles"]
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    got = pd.read_csv(path, encoding=CSV_ENCODING)
    assert got["name_zh"].str.contains("高价值").any()
    for column in ("customers", "recency_days", "frequency_orders", "tenure_days"):
        assert pd.api.types.is_integer_dtype(got[column]), column
    for column in ("customer_share", "revenue_share", "online_share"):
        assert decimals(got[column]) <= 4, column
    for column in ("monetary", "avg_order_value", "spend_180d", "monetary_vs_all"):
        assert decimals(got[column]) <= 2, column
    # rounding only: the values are the profile's
    mine = pd.concat([s.profile for s in schemes], ignore_index=True)
    assert np.allclose(got["customer_share"], mine["customer_share"], atol=5e-5)
    assert np.allclose(got["monetary"], mine["monetary"], atol=5e-3, equal_nan=True)


def test_each_segment_says_what_defines_it(fitted):
    from training.segmentation.definitions import TOP_FEATURES

    table, schemes = fitted
    by = {s.name: s.profile.set_index("segment")["definition"] for s in schemes}
    assert by["rfm_rules"]["high_value"] == (
        "recency_days ≤ 30 and orders_180d ≥ 5 and spend_180d ≥ 2,000"
    )
    assert by["rfm_rules"]["potential"] == (
        "recency_days ≤ 30 and 2 ≤ orders_180d ≤ 4 and 500 ≤ spend_180d < 2,000"
    )
    assert by["rfm_rules"]["general"] == "none of the rules above"
    assert by["rfm_scores"]["champions"].startswith("R 5, F 4-5: recency_days ≤ ")
    matrix = next(s for s in schemes if s.name == "value_activity").assigner
    assert by["value_activity"]["high_value_low_activity"] == (
        f"monetary > {matrix.value_split:.4g} and order_days_180d ≤ {matrix.activity_split:.4g}"
    )
    assert re.fullmatch(r"monetary ≥ [\d,.]+", by["abc"]["A"])
    assert re.fullmatch(r"clv ≥ [\d,.]+ \(top 1%\)", by["value_tiers"]["top_1"])
    assert re.fullmatch(r"[\d,.]+ ≤ clv < [\d,.]+ \(top 1-5%\)", by["value_tiers"]["top_1_5"])
    assert by["value_tiers"]["bottom_50"].endswith(" or missing (bottom 50%)")
    assert by["clv_activity"]["high_value_low_activity"].startswith("clv > ")
    demographic = by["demographic"].drop("all")
    assert demographic.str.startswith("age_band = ").any()
    assert demographic.str.contains("province not among the 6 most common").any()

    # clusters: the features furthest from everyone's mean, in standard deviations
    clusters = next(s for s in schemes if s.name == "behaviour_clusters")
    columns = list(clusters.assigner.columns)
    data = table[columns].astype(float)
    z = (data.groupby(clusters.labels).mean() - data.mean()) / data.std()
    for key, text in by["behaviour_clusters"].drop("all").items():
        named = re.findall(r"(\w+) (?:higher|lower): ", text)
        want = z.loc[key].abs().sort_values(ascending=False).index[:TOP_FEATURES].tolist()
        assert named == want, (key, text)
        assert len(re.findall(r"\([+-]\d+\.\d sd\)", text)) == TOP_FEATURES


def test_the_report_shows_segment_definitions(fitted, tmp_path):
    from training.report import write_report

    _, schemes = fitted
    served = [replace(s, serve=s.name in ("rfm_rules", "behaviour_clusters")) for s in schemes]
    for new, old in zip(served, schemes, strict=True):
        new.labels, new.profile = old.labels, old.profile
    html = write_report(
        tmp_path / "report.html",
        as_of=str(AS_OF),
        audit=AUDIT,
        schemes=served,
        predictions={},
        skipped={},
        notes=[],
        run_id=None,
    ).read_text("utf-8")
    assert "recency_days ≤ 30 and orders_180d ≥ 5 and spend_180d ≥ 2,000" in html
    assert "<th>sets it apart (segment mean vs everyone&#39;s, in standard deviations)</th>" in html
    assert re.search(r"\w+ (higher|lower): [\d,.]+ vs [\d,.]+ \([+-]\d\.\d sd\)", html)
    assert "-0.0%" not in html


def test_model_inputs_have_readable_names_and_units():
    from training.prediction.predictor import driver_label

    assert driver_label("bg_nbd_prior") == "BG/NBD prior (log-odds)"
    assert driver_label("recency_days") == "days since the last order, as of the cutoff (days)"
    assert driver_label("spend_90d") == "spend in the last 90 days (currency)"
    assert driver_label("btyd_p_alive").endswith("(probability)")
    assert driver_label("something_new") == "something_new"
