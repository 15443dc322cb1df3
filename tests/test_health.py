"""Segment health index: each part on hand-computable numbers, the edge cases, the config."""

from __future__ import annotations

import json
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.config import section
from core.errors import ConfigError, CustsegError
from monitoring.health import PARTS, HealthConfig, linear, segment_health

REF_DAY = date(2026, 1, 1)


def health(reference, current, days=0, **kw):
    kw.setdefault("segment", "segment")
    return segment_health(
        reference,
        current,
        reference_as_of=REF_DAY,
        current_as_of=REF_DAY + timedelta(days=days),
        **kw,
    )


def six():
    """c1..c5 in both (c2 A->B, c5 B->A), c6 gone, c7 new."""
    ref = pd.DataFrame(
        {
            "customer_id": ["c1", "c2", "c3", "c4", "c5", "c6"],
            "segment": ["A", "A", "A", "B", "B", "C"],
            "monetary": [100.0, 100, 0, 200, 0, 100],  # A 200, B 200, C 100: .4 .4 .2
            "rep": [1, 0, 1, 1, 0, 1],  # A 2/3, B 1/2, C 1
        }
    )
    cur = pd.DataFrame(
        {
            "customer_id": ["c1", "c2", "c3", "c4", "c5", "c7"],
            "segment": ["A", "B", "A", "B", "A", "B"],
            "monetary": [100.0, 100, 100, 100, 100, 0],  # A 300, B 200: .6 .4 0
            "rep": [1, 1, 0, 1, 1, 0],  # A 2/3, B 2/3
        }
    )
    return ref, cur


def clusters(n_per: int = 40, seed: int = 0, scramble: bool = False) -> pd.DataFrame:
    """Three well separated groups in recency/frequency/monetary, with revenue and repurchase."""
    rng = np.random.default_rng(seed)
    centres = {"A": (5, 20, 5000), "B": (60, 5, 500), "C": (300, 1, 50)}
    parts = []
    for k, (r, f, m) in centres.items():
        parts.append(
            pd.DataFrame(
                {
                    "segment": k,
                    "recency_days": r * rng.uniform(0.9, 1.1, n_per),
                    "frequency_orders": f * rng.uniform(0.9, 1.1, n_per),
                    "monetary": m * rng.uniform(0.9, 1.1, n_per),
                    "rep": (rng.random(n_per) < {"A": 0.9, "B": 0.5, "C": 0.1}[k]).astype(int),
                }
            )
        )
    out = pd.concat(parts, ignore_index=True)
    out.insert(0, "customer_id", [f"c{i}" for i in range(len(out))])
    if scramble:
        out["segment"] = rng.permutation(out["segment"].to_numpy())
    return out


CLEAN_AUDIT = {
    "tables": {
        "transactions": {
            "input_rows": 1000,
            "kept_rows": 990,
            "dropped_rows": 10,
            "dropped_by_rule": {"duplicate_transaction": 10},
            "balanced": True,
        }
    },
    "missing_rates": {
        "transactions": {"customer_id": {"input": 0.001, "output": 0.0, "key": True}},
    },
}


# --- scoring -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, expected",
    [(-1, 100), (0.1, 100), (0.2, 75), (0.3, 50), (0.5, 0), (0.9, 0)],
)
def test_linear_endpoints(value, expected):
    assert linear(value, 0.1, 0.5) == pytest.approx(expected)


@pytest.mark.parametrize("days, expected", [(0, 100), (30, 100), (105, 50), (180, 0), (400, 0)])
def test_freshness_is_linear_between_fresh_and_stale(days, expected):
    ref, cur = six()
    part = health(ref, cur, days).part("freshness")
    assert part.score == pytest.approx(expected)
    assert part.detail["age_days"] == days
    assert f"{days} days old" in part.explanation


# --- stability ---------------------------------------------------------------------------------


def test_stability_transition_matrix_of_six_customers():
    ref, cur = six()
    h = health(ref, cur)
    expected = pd.DataFrame(
        [[2, 1, 0], [1, 1, 0], [0, 0, 0]], index=list("ABC"), columns=list("ABC")
    )
    assert (h.transitions.to_numpy() == expected.to_numpy()).all()
    assert list(h.transitions.index) == list("ABC")
    assert (h.transitions.index.name, h.transitions.columns.name) == ("reference", "current")
    part = h.part("stability")
    assert part.detail["customers_in_both"] == 5
    assert (part.detail["new_customers"], part.detail["gone_customers"]) == (1, 1)
    assert part.detail["changed_share"] == pytest.approx(0.4)
    assert part.score == pytest.approx(20.0)  # 0.4 of the way to 0.5
    assert part.detail["row_shares"]["A"] == pytest.approx({"A": 2 / 3, "B": 1 / 3, "C": 0})
    assert "C" not in part.detail["row_shares"]  # no reference customer of C is still here
    assert "40.0% of 5 customers" in part.explanation and "1 new, 1 gone" in part.explanation


def test_no_shared_customers_leaves_stability_out():
    ref, cur = six()
    cur = cur.assign(customer_id=cur["customer_id"] + "x")
    h = health(ref, cur)
    part = h.part("stability")
    assert part.score is None
    assert part.explanation.startswith("not available")
    assert h.transitions.to_numpy().sum() == 0
    assert part.detail["new_customers"] == 6 and part.detail["gone_customers"] == 6


def test_integer_and_text_ids_match():
    ref, cur = six()
    ref["customer_id"] = range(6)
    cur["customer_id"] = [str(i) for i in range(6)]
    assert health(ref, cur).part("stability").detail["customers_in_both"] == 6


# --- business signal ---------------------------------------------------------------------------


def test_business_signal_revenue_and_repurchase_shift():
    ref, cur = six()
    h = health(ref, cur, repurchased="rep")
    part = h.part("business_signal")
    assert part.detail["revenue_shift"] == pytest.approx(0.2)  # (|.4-.6| + 0 + |.2-0|) / 2
    assert part.detail["repurchase_shift"] == pytest.approx(1 / 12)  # A 0, B 1/6; C only before
    revenue_score, repurchase_score = 100 / 3, 100 * (0.2 - 1 / 12) / 0.2
    assert part.score == pytest.approx((revenue_score + repurchase_score) / 2)
    seg = h.segments
    assert seg.loc["C", "current_share"] == 0
    assert np.isnan(seg.loc["C", "current_repurchase_rate"])
    assert seg.loc["A", "reference_revenue_share"] == pytest.approx(0.4)
    assert seg.loc["A", "current_revenue_share"] == pytest.approx(0.6)
    assert seg.loc["B", "reference_repurchase_rate"] == pytest.approx(0.5)


def test_repurchase_needs_the_label_on_both_sides():
    ref, cur = six()
    part = health(ref, cur.drop(columns="rep"), repurchased="rep").part("business_signal")
    assert "repurchase_shift" not in part.detail
    assert part.score == pytest.approx(100 / 3)  # revenue alone
    assert "no repurchase label" in part.explanation
    no_label = health(ref, cur).segments
    assert no_label["reference_repurchase_rate"].isna().all()


def test_business_signal_without_revenue_is_not_available():
    ref, cur = six()
    part = health(ref.assign(monetary=0.0), cur).part("business_signal")
    assert part.score is None and part.explanation.startswith("not available")


# --- separation --------------------------------------------------------------------------------


def test_separation_drops_to_zero_when_segments_blur():
    ref = clusters()
    part = health(ref, clusters(scramble=True)).part("separation")
    assert part.detail["reference_silhouette"] > 0.8
    assert part.detail["current_silhouette"] < 0.1
    assert part.score == 0.0


def test_separation_uses_separate_feature_tables():
    ref = clusters()
    feats = ref.drop(columns=["segment", "rep"])
    labels = ref[["customer_id", "segment", "monetary"]]
    part = health(labels, labels, features_reference=feats, features_current=feats)
    assert part.part("separation").score == 100.0


@pytest.mark.parametrize(
    "current, why",
    [
        (clusters().assign(segment="A"), "fewer than 2 current segments"),
        (clusters().drop(columns="frequency_orders"), "current features lack frequency_orders"),
    ],
)
def test_separation_not_available(current, why):
    part = health(clusters(), current).part("separation")
    assert part.score is None
    assert part.explanation == f"not available: {why}"


def test_separation_sample_is_bounded_and_seeded():
    ref, cur = clusters(n_per=200), clusters(n_per=200, seed=1)
    config = HealthConfig(separation_sample=60)
    a = health(ref, cur, config=config, seed=3).part("separation")
    b = health(ref, cur, config=config, seed=3).part("separation")
    assert a.detail == b.detail and a.detail["sample"] == 60


# --- data quality ------------------------------------------------------------------------------


def test_data_quality_worst_field_and_lost_rows():
    audit = {
        "tables": {
            "transactions": {
                "input_rows": 1000,
                "dropped_rows": 60,
                "dropped_by_rule": {"missing_key_field": 50, "duplicate_transaction": 10},
                "balanced": True,
            }
        },
        "missing_rates": {
            "transactions": {
                "customer_id": {"input": 0.01, "output": 0.0, "key": True},
                "product": {"input": 0.5, "output": 0.5, "key": False},  # not a key field
            },
            "customers": {"age": {"input": 0.1, "output": 0.175, "key": True}},
        },
    }
    ref, cur = six()
    part = health(ref, cur, audit=audit).part("data_quality")
    assert part.detail["worst_missing_field"] == "customers.age"
    assert part.detail["worst_missing_rate"] == pytest.approx(0.175)  # output: invalid -> missing
    assert part.detail["fields_over_limit"] == ["customers.age"]
    assert part.detail["lost_share"]["transactions"] == pytest.approx(0.05)  # copies not lost
    assert part.detail["dropped_share"]["transactions"] == pytest.approx(0.06)
    missing_score = 100 * (0.30 - 0.175) / 0.25  # 50
    lost_score = 100 * (0.20 - 0.05) / 0.18
    assert part.score == pytest.approx(min(missing_score, lost_score))


def test_clean_audit_scores_100_and_missing_audit_is_left_out():
    ref, cur = six()
    assert health(ref, cur, audit=CLEAN_AUDIT).part("data_quality").score == 100.0
    part = health(ref, cur).part("data_quality")
    assert part.score is None and part.explanation == "not available: no cleaning audit"


def test_real_cleaning_audit():
    from custseg.sample import SampleConfig, generate
    from features.cleaning import CleaningConfig, clean
    from features.contract import CUSTOMERS, TRANSACTIONS, type_table

    data = generate(SampleConfig(customers=300, seed=5))
    result = clean(
        type_table(data["transactions"], TRANSACTIONS),
        type_table(data["customers"], CUSTOMERS),
        CleaningConfig(reference_date=date(2026, 6, 30)),
    )
    ref, cur = six()
    part = health(ref, cur, audit=result.audit).part("data_quality")
    assert 0 <= part.score <= 100
    assert set(part.detail["lost_share"]) == {"transactions", "customers"}
    assert "customers.gender" in part.detail["key_missing_rates"]
    assert "transactions.product" not in part.detail["key_missing_rates"]
    # audit.json read back gives the same part
    again = json.loads(json.dumps(result.audit, default=str))
    assert health(ref, cur, audit=again).part("data_quality") == part


def test_audit_of_the_wrong_shape_is_an_error():
    ref, cur = six()
    with pytest.raises(CustsegError, match="not a cleaning audit"):
        health(ref, cur, audit={"rules": []})


# --- the index ---------------------------------------------------------------------------------


def test_identical_reference_and_current_is_fully_healthy():
    ref = clusters()
    worked = campaign(A=True, B=True, C=False)  # 2 of 3 responded: above the 50% for full marks
    h = health(ref, ref.copy(), repurchased="rep", audit=CLEAN_AUDIT, campaign=worked)
    assert all(p.score == 100.0 for p in h.parts), [(p.name, p.explanation) for p in h.parts]
    assert h.score == 100.0 and h.healthy
    assert [p.name for p in h.parts] == list(PARTS)
    json.dumps(h.to_dict(), allow_nan=False)


def test_migrated_stale_and_shifted_is_unhealthy():
    ref = clusters()
    cur = ref.copy()
    cur["segment"] = cur["segment"].map({"A": "B", "B": "C", "C": "A"})  # everyone moves
    cur["rep"] = 1 - cur["rep"]
    h = health(ref, cur, days=365, repurchased="rep", audit=CLEAN_AUDIT)
    assert h.part("stability").score == 0.0
    assert h.part("freshness").score == 0.0
    assert h.part("business_signal").score < 20
    assert h.score < 60 and not h.healthy


def test_unavailable_parts_renormalise_the_weights():
    ref, cur = six()  # no audit, no feature columns: data_quality and separation are None
    config = HealthConfig(weight_freshness=2.0, weight_stability=1.0, weight_business_signal=1.0)
    h = health(ref, cur, days=105, config=config)
    assert h.part("data_quality").score is None and h.part("separation").score is None
    names = ("freshness", "stability", "business_signal")
    fresh, stable, business = (h.part(name).score for name in names)
    assert (fresh, stable, business) == pytest.approx((50.0, 20.0, 100 / 3))
    assert h.score == pytest.approx((2 * fresh + stable + business) / 4)
    shares = {p["name"]: p["weight_share"] for p in h.to_dict()["parts"]}
    assert shares == pytest.approx(
        {
            "data_quality": 0,
            "freshness": 0.5,
            "stability": 0.25,
            "separation": 0,
            "business_signal": 0.25,
            "business_response": 0,
        }
    )


def campaign(**responded) -> pd.DataFrame:
    """The scheme's rows of an evaluated campaign (training.campaigns.effects.latest)."""
    return pd.DataFrame(
        {
            "segment": list(responded),
            "responded": list(responded.values()),
            "plan_id": "p1",
            "incremental_roi": [1.5 if r else -0.4 for r in responded.values()],
        }
    )


def test_business_response_is_the_share_of_segments_that_responded():
    ref, cur = six()  # current segments: A, B
    part = health(ref, cur, campaign=campaign(A=False, B=False)).part("business_response")
    assert part.score == 0.0
    assert part.detail["no_response"] == ["A", "B"] and part.detail["did_not_pay"] == ["A", "B"]
    part = health(ref, cur, campaign=campaign(A=True, B=False)).part("business_response")
    assert part.score == 100.0  # half responded: the default full-marks share
    config = HealthConfig(min_response_share=0.8)
    part = health(ref, cur, campaign=campaign(A=True, B=False), config=config).part(
        "business_response"
    )
    assert part.score == pytest.approx(100 * 0.5 / 0.8)
    assert "1 of 2 segment(s) responded to campaign p1" in part.explanation


def test_business_response_counts_only_segments_still_assigned():
    ref, cur = six()
    # C is no longer assigned: its success says nothing about today's scheme
    part = health(ref, cur, campaign=campaign(A=False, C=True)).part("business_response")
    assert part.score == 0.0 and part.detail["gone"] == ["C"] and part.detail["measured"] == 1
    part = health(ref, cur, campaign=campaign(C=True)).part("business_response")
    assert part.score is None and "no longer assigned" in part.explanation


def test_no_campaign_leaves_business_response_out():
    ref, cur = six()
    with_none = health(ref, cur)
    part = with_none.part("business_response")
    assert part.score is None and "custseg campaign evaluate" in part.explanation
    # a failed campaign pulls the index down; no campaign does not
    assert health(ref, cur, campaign=campaign(A=False, B=False)).score < with_none.score


def test_threshold_decides_healthy():
    ref, cur = six()
    score = health(ref, cur).score
    assert health(ref, cur, config=HealthConfig(threshold=score)).healthy
    assert not health(ref, cur, config=HealthConfig(threshold=min(score + 1, 100))).healthy


def test_no_measurable_weighted_part_is_an_error():
    ref, cur = six()
    config = HealthConfig(weight_freshness=0, weight_stability=0, weight_business_signal=0)
    with pytest.raises(CustsegError, match="no part with a weight > 0"):
        health(ref, cur, config=config)


def test_to_dict_is_json_ready():
    ref, cur = six()
    out = json.loads(json.dumps(health(ref, cur, repurchased="rep").to_dict(), allow_nan=False))
    assert out["transitions"]["A"] == {"A": 2, "B": 1, "C": 0}
    seg_c = next(s for s in out["segments"] if s["segment"] == "C")
    assert seg_c["current_repurchase_rate"] is None


# --- input errors ------------------------------------------------------------------------------


def test_empty_current_is_an_error():
    ref, cur = six()
    with pytest.raises(CustsegError, match="current has no rows"):
        health(ref, cur.iloc[:0])


def test_missing_columns_are_named():
    ref, cur = six()
    with pytest.raises(CustsegError, match="current lacks column.*segment, monetary"):
        health(ref, cur.drop(columns=["segment", "monetary"]))
    with pytest.raises(CustsegError, match="reference lacks column.*customer_id"):
        health(ref.drop(columns="customer_id"), cur)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda f: f.assign(customer_id="c1"), "repeated customer_id"),
        (lambda f: f.assign(segment=[None, "A", "A", "B", "A", "B"]), "segment is empty in 1"),
        (lambda f: f.assign(monetary="lots"), "must hold numbers"),
        (lambda f: f.assign(rep=[0, 1, 2, 1, 1, 0]), "rep must be 0/1"),
    ],
)
def test_bad_values_are_errors(change, message):
    ref, cur = six()
    with pytest.raises(CustsegError, match=message):
        health(ref, change(cur), repurchased="rep")


def test_boolean_repurchase_label_is_accepted():
    ref, cur = six()
    h = health(ref.assign(rep=ref["rep"].astype(bool)), cur, repurchased="rep")
    assert h.part("business_signal").detail["repurchase_shift"] == pytest.approx(1 / 12)


def test_current_before_reference_is_an_error():
    ref, cur = six()
    with pytest.raises(CustsegError, match="before reference_as_of"):
        health(ref, cur, days=-1)


# --- config ------------------------------------------------------------------------------------


def test_config_defaults():
    c = HealthConfig()
    assert (c.threshold, c.fresh_days, c.stale_days) == (60, 30, 180)
    assert (c.missing_limit, c.max_changed_share, c.separation_drop) == (0.05, 0.5, 0.2)
    assert (c.max_revenue_shift, c.max_repurchase_shift) == (0.3, 0.2)
    assert all(c.weight(p) == 1 for p in PARTS)


@pytest.mark.parametrize(
    "data, message",
    [
        ({"fresh_dayz": 10}, "unknown key.*fresh_dayz"),
        ({"threshold": "high"}, "threshold = 'high': not a number"),
        ({"weight_stability": True}, "weight_stability = True: not a number"),
        ({"weight_stability": -1}, "weight_stability = -1: must be a number >= 0"),
        ({"fresh_days": 200}, "fresh_days = 200 must be below monitoring.stale_days"),
        ({"fresh_days": 180}, "fresh_days = 180 must be below"),
        ({"missing_limit": 0.4}, "missing_limit = 0.4 must be below monitoring.missing_bad"),
        ({"max_changed_share": 1.5}, "max_changed_share = 1.5: a share"),
        ({"max_revenue_shift": 0}, "max_revenue_shift = 0: must be > 0"),
        ({"min_response_share": 0}, "min_response_share = 0: must be > 0"),
        ({"min_response_share": 2}, "min_response_share = 2: a share"),
        ({"threshold": 101}, "threshold = 101"),
        ({"separation_sample": 2.5}, "separation_sample = 2.5: a whole number"),
        ({f"weight_{p}": 0 for p in PARTS}, "all weights are 0"),
    ],
)
def test_config_errors_name_key_and_value(data, message):
    with pytest.raises(ConfigError, match=message):
        HealthConfig.from_dict(data)


def test_monitoring_section_of_the_config_file(tmp_path):
    path = tmp_path / "custseg.toml"
    path.write_text("[monitoring]\nthreshold = 70\nweight_separation = 0\nstale_days = 90\n")
    c = section(path, "monitoring", HealthConfig.from_dict)
    assert (c.threshold, c.weight_separation, c.stale_days, c.fresh_days) == (70, 0, 90, 30)
    assert section(None, "monitoring", HealthConfig.from_dict) == HealthConfig()
    path.write_text("[monitoring]\nstale_days = 10\n")
    with pytest.raises(ConfigError, match=rf"{path.name}: monitoring.fresh_days = 30.0 must"):
        section(path, "monitoring", HealthConfig.from_dict)


# --- property ----------------------------------------------------------------------------------

side = st.lists(
    st.tuples(
        st.integers(0, 25),  # customer id: small range, so the sides overlap
        st.sampled_from("ABC"),
        st.one_of(st.floats(-100, 1e4), st.just(float("nan"))),  # refunds and missing too
        st.integers(0, 1),
        st.floats(0, 400),
        st.integers(1, 30),
    ),
    min_size=1,
    max_size=25,
    unique_by=lambda t: t[0],
)


def as_frame(rows) -> pd.DataFrame:
    cols = ["customer_id", "segment", "monetary", "rep", "recency_days", "frequency_orders"]
    return pd.DataFrame(rows, columns=cols)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    ref=side,
    cur=side,
    days=st.integers(0, 500),
    rates=st.tuples(st.floats(0, 1), st.floats(0, 1), st.integers(0, 100)),
)
def test_every_score_stays_within_0_and_100(ref, cur, days, rates):
    audit = {
        "tables": {"t": {"input_rows": 100, "dropped_by_rule": {"missing_key_field": rates[2]}}},
        "missing_rates": {"t": {"x": {"input": rates[0], "output": rates[1], "key": True}}},
    }
    h = health(as_frame(ref), as_frame(cur), days, repurchased="rep", audit=audit)
    for p in h.parts:
        assert p.score is None or 0 <= p.score <= 100, p
    assert 0 <= h.score <= 100
    assert h.healthy == (h.score >= 60)


def test_current_repurchase_rates_come_from_the_labelled_cohort():
    """Today's customers have no label yet: the newest labelled cohort (segmented as of its own
    cutoff) gives the current rates, so a rate is compared with a rate of the same kind."""
    from datetime import date

    import pandas as pd

    from monitoring.health import segment_health

    ref = pd.DataFrame(
        {
            "customer_id": ["a", "b", "c", "d"],
            "segment": ["x", "x", "y", "y"],
            "monetary": [10.0, 10.0, 10.0, 10.0],
            "repurchased": [1, 1, 0, 0],
        }
    )
    cur = ref.drop(columns="repurchased")
    cohort = pd.DataFrame(
        {
            "customer_id": ["a", "b", "c", "d"],
            "segment": ["x", "x", "y", "y"],
            "repurchased": [0, 0, 1, 1],
        }
    )
    kw = dict(segment="segment", repurchased="repurchased", reference_as_of=date(2026, 1, 1))
    moved = segment_health(ref, cur, current_as_of=date(2026, 1, 2), current_cohort=cohort, **kw)
    rates = moved.segments["current_repurchase_rate"].to_dict()
    assert rates == {"x": 0.0, "y": 1.0}
    assert moved.part("business_signal").detail["repurchase_shift"] == 1.0
    same = segment_health(ref, cur, current_as_of=date(2026, 1, 2), current_cohort=ref, **kw)
    assert same.part("business_signal").detail["repurchase_shift"] == 0.0
