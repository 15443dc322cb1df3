"""Segmentation schemes: each rule at its boundaries, learned thresholds, names, file errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import ConfigError, InputError
from training.segmentation import fit_scheme, load, parse
from training.segmentation.abc import thresholds
from training.segmentation.naming import level, name_segments, percentile, strategy
from training.segmentation.scores import score
from training.segmentation.spec import SchemeFile


def scheme_file(tmp_path, text: str) -> SchemeFile:
    path = tmp_path / "schemes.toml"
    path.write_text(text, "utf-8")
    return load(path)


def spec(name: str):
    sf = load()
    return next(s for s in sf.schemes if s.name == name), sf


def rfm(rows: list[tuple]) -> pd.DataFrame:
    """Customers as (recency_days, orders_180d, spend_180d)."""
    r, f, m = zip(*rows, strict=True)
    return pd.DataFrame(
        {
            "customer_id": [f"C{i}" for i in range(len(rows))],
            "recency_days": r,
            "orders_180d": f,
            "spend_180d": m,
            "frequency_orders": f,
            "monetary": m,
        }
    )


@pytest.mark.parametrize(
    ("recency", "orders", "spend", "segment"),
    [
        (30, 5, 2000.0, "high_value"),  # every bound at its edge
        (0, 9, 9000.0, "high_value"),
        (31, 5, 2000.0, "general"),  # R just over 30
        (30, 4, 2000.0, "general"),  # F 4 is potential's, but M 2000 is not below 2000
        (30, 5, 1999.99, "general"),  # F 5 is above potential's 2-4
        (30, 4, 1999.99, "potential"),
        (30, 2, 500.0, "potential"),
        (30, 1, 500.0, "general"),  # F under 2
        (30, 2, 499.99, "general"),  # M under 500
        (90, 1, 100.0, "churn_risk"),
        (400, 0, 0.0, "churn_risk"),
        (89, 1, 100.0, "general"),  # R under 90
        (90, 2, 100.0, "general"),  # F over 1
    ],
)
def test_rfm_rule_thresholds_at_each_boundary(recency, orders, spend, segment):
    s, sf = spec("rfm_rules")
    fitted = fit_scheme(s, sf, rfm([(recency, orders, spend)] * 3))
    assert list(fitted.labels) == [segment] * 3


def test_rules_treat_missing_values_as_not_matching():
    s, sf = spec("rfm_rules")
    features = rfm([(10, 6, 3000.0), (10, 6, 3000.0)])
    features.loc[1, "spend_180d"] = np.nan
    assert list(fit_scheme(s, sf, features).labels) == ["high_value", "general"]


def test_rule_thresholds_are_read_from_the_scheme_file(tmp_path):
    sf = scheme_file(
        tmp_path,
        """
[schemes.vip]
kind = "rules"
default = { key = "rest", en = "rest", zh = "其他", strategy = "maintain" }
[[schemes.vip.segments]]
key = "vip"
en = "VIP"
zh = "贵宾"
strategy = "core_loyal"
spend_180d = { above = 100 }
""",
    )
    fitted = fit_scheme(sf.schemes[0], sf, rfm([(1, 1, 100.0), (1, 1, 100.5)]))
    assert list(fitted.labels) == ["rest", "vip"]
    assert fitted.segment("vip").name_zh == "贵宾"


def test_score_counts_edges_strictly_below_and_reverses_recency():
    edges = np.array([1.0, 2.0, 6.0, 14.0])
    values = np.array([0, 1, 2, 3, 6, 7, 14, 15, np.nan])
    assert list(score(values, edges)) == [1, 1, 2, 3, 3, 4, 4, 5, 1]
    assert list(score(np.array([0.0, 1.0, 15.0]), edges, reverse=True)) == [5, 5, 1]


def test_rfm_scores_learn_quintiles_and_map_cells():
    n = 100
    features = rfm([(i, 100 - i, float(1000 - i)) for i in range(n)])  # recent = frequent
    s, sf = spec("rfm_scores")
    fitted = fit_scheme(s, sf, features)
    scores = fitted.assigner.scores(features)
    assert scores["r"].value_counts().to_dict() == {5: 20, 4: 20, 3: 20, 2: 20, 1: 20}
    assert (scores["r"] == scores["f"]).all()
    labels = pd.Series(fitted.labels)
    assert (labels[scores["r"] == 5] == "champions").all()  # R5 F5
    assert (labels[scores["r"] == 3] == "need_attention").all()  # R3 F3
    assert (labels[scores["r"] == 1] == "lost").all()  # R1 F1
    # thresholds learned at fit time are kept: a new customer is scored against them
    new = rfm([(0, 1, 5.0)])
    assert fitted.assign(new)[0] == "new"  # R5 F1


def test_rfm_score_map_must_cover_every_cell(tmp_path):
    with pytest.raises(ConfigError, match=r"\[schemes.s\].*R1F1"):
        sf = scheme_file(
            tmp_path,
            """
[schemes.s]
kind = "rfm_scores"
map = [{ key = "top", en = "top", zh = "顶", r = [2, 5], f = [1, 5], strategy = "grow" }]
""",
        )
        parse(sf.schemes[0], sf)


def test_value_activity_matrix_splits_above_the_learned_medians():
    features = pd.DataFrame({"monetary": [100.0, 200, 300, 400], "order_days_180d": [0, 3, 0, 3]})
    s, sf = spec("value_activity")
    fitted = fit_scheme(s, sf, features)
    assert fitted.params["kind"] == "matrix"
    assert list(fitted.labels) == [
        "low_value_low_activity",
        "low_value_high_activity",
        "high_value_low_activity",
        "high_value_high_activity",
    ]
    assert fitted.assigner.value_split == 250.0 and fitted.assigner.activity_split == 1.5


def test_abc_classes_follow_the_revenue_shares():
    # revenue 50, 30, 10, 5, 3, 2 (total 100): A starts before 80% -> the 50 and the 30
    features = pd.DataFrame({"monetary": [3.0, 50, 2, 30, 10, 5]})
    s, sf = spec("abc")
    fitted = fit_scheme(s, sf, features)
    assert list(fitted.labels) == ["C", "A", "C", "A", "B", "B"]
    assert fitted.profile.set_index("segment").loc["A", "revenue_share"] == pytest.approx(0.8)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0, 1e5, allow_nan=False), min_size=1, max_size=60))
def test_abc_a_class_is_the_smallest_top_set_reaching_the_share(revenue):
    r = np.array(revenue)
    a_min, _ = thresholds(r, 0.8, 0.15)
    if r.sum() == 0:
        assert a_min == np.inf
        return
    a = r >= a_min
    assert r[a].sum() >= 0.8 * r.sum() - 1e-6  # A makes at least 80%
    # without its smallest value A would fall short (ties at the boundary stay together)
    assert r[r > a_min].sum() < 0.8 * r.sum() + 1e-6


def test_demographic_keeps_the_top_values_and_groups_the_rest():
    features = pd.DataFrame(
        {
            "age_band": ["25-34", "25-34", "35-44", None],
            "province": ["广东", "广东", "西藏", "广东"],
        }
    )
    s, sf = spec("demographic")
    kind = parse(s, sf)
    assigner = type(kind)(kind.columns, 1).fit(features)
    assert list(assigner.assign(features)) == [
        "25-34|广东",
        "25-34|广东",
        "other|other",
        "unknown|广东",
    ]


RULES = (
    '[schemes.a]\nkind = "rules"\ndefault = { key = "g", en = "g", zh = "g", strategy = "%s" }\n'
)
ONE_RULE = '[[schemes.a.segments]]\nkey = "x"\nen = "x"\nzh = "x"\nstrategy = "grow"\n'
CLUSTERS = '[schemes.a]\nkind = "clustering"\nsubsets = { r = ["recency_days"] }\n'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[schemes.a]\nkind = "kmeans"', r"\[schemes.a\]: kind = 'kmeans': expected one of"),
        ("[schemes.a\nkind=1", "not valid TOML"),
        ("[other]\nx = 1", "unknown section"),
        ('[strategies.x]\ndirection = "d"', "no \\[schemes.NAME\\] tables"),
        (
            '[schemes.a]\nkind = "abc"\na_share = 0.9\nb_share = 0.2',
            "a_share \\+ b_share = 1.1",
        ),
        (
            '[schemes.a]\nkind = "abc"\nrevenu = "monetary"',
            r"\[schemes.a\]: unknown key\(s\) revenu",
        ),
        (
            '[schemes.a]\nkind = "matrix"\nvalue_split = "mean"',
            "value_split = 'mean': expected \"median\"",
        ),
        (RULES % "nope" + "segments = []", "strategy = 'nope' is not in the strategy table"),
        (
            RULES % "grow" + ONE_RULE + "recency_days = { atmost = 3 }",
            r"segments\[0\] \(x\): recency_days.atmost: unknown bound",
        ),
        (
            RULES % "grow" + ONE_RULE + 'recency_days = { max = "thirty" }',
            "recency_days.max = 'thirty': expected a number",
        ),
        ('[schemes.a]\nkind = "clustering"\nsubsets = {}', "at least one feature subset"),
        (CLUSTERS + 'families = ["dbscan"]', "families: unknown dbscan"),
        (CLUSTERS + "k_min = 6\nk_max = 4", "k_min = 6 is above k_max = 4"),
        (
            '[schemes.a]\nkind = "demographic"\ncolumns = ["provnce"]',
            "columns 'provnce': not a category feature; choose from .*province",
        ),
    ],
)
def test_a_scheme_file_with_an_error_gets_a_clear_message(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        sf = scheme_file(tmp_path, text)
        for s in sf.schemes:
            parse(s, sf)


def test_a_scheme_naming_a_missing_feature_is_an_input_error():
    s, sf = spec("rfm_rules")
    with pytest.raises(
        InputError, match="scheme rfm_rules: feature table lacks column\\(s\\) orders_180d"
    ):
        fit_scheme(s, sf, pd.DataFrame({"recency_days": [1], "spend_180d": [1.0]}))
    with pytest.raises(InputError, match="orders_180d \\(did you mean orders_18d\\?\\)"):
        fit_scheme(
            s, sf, pd.DataFrame({"recency_days": [1], "orders_18d": [1], "spend_180d": [1.0]})
        )


@pytest.mark.parametrize(
    ("name", "message"), [("nope.parquet", "no such file"), ("", "is a directory")]
)
def test_segment_fit_names_a_missing_or_folder_snapshot(tmp_path, capsys, name, message):
    from tests.conftest import run_cli

    args = ["segment", "fit", "-f", str(tmp_path / name), "--no-track", "-o", str(tmp_path / "o")]
    code, _, err = run_cli(args, capsys)
    assert code == 2 and message in err and "Traceback" not in err


def test_the_cli_reports_a_bad_scheme_file_in_one_line(tmp_path, capsys):
    from tests.conftest import run_cli

    bad = tmp_path / "bad.toml"
    bad.write_text('[schemes.a]\nkind = "abc"\na_share = 2\n')
    snap = tmp_path / "f.parquet"
    from features.snapshot import write_snapshot

    write_snapshot(rfm([(1, 1, 1.0)]), snap)
    code, _, err = run_cli(
        [
            "segment",
            "fit",
            "-f",
            str(snap),
            "--schemes",
            str(bad),
            "--no-track",
            "--out",
            str(tmp_path / "o"),
        ],
        capsys,
    )
    assert code == 2
    assert "a_share = 2: expected a number in [0.0, 1.0]" in err and "Traceback" not in err


def test_segment_init_writes_an_editable_copy(tmp_path, capsys):
    from tests.conftest import run_cli

    path = tmp_path / "mine.toml"
    assert run_cli(["segment", "init", str(path)], capsys)[0] == 0
    assert [s.name for s in load(path).schemes] == [s.name for s in load().schemes]
    code, _, err = run_cli(["segment", "init", str(path)], capsys)
    assert code == 2 and "--force" in err


# -- names and strategies -----------------------------------------------------------------------
def test_percentile_levels():
    overall = np.array([1.0, 1, 1, 2, 3, 4, 5, 6, 7, 8])
    assert percentile(overall, 1.0) == pytest.approx(0.15)  # ties count half
    assert level(0.9) == 0 and level(0.5) == 1 and level(0.1) == 2


@pytest.mark.parametrize(
    ("levels", "expected"),
    [
        ((0, 0, 0, 0), "core_loyal"),
        ((1, 1, 0, 2), "new_potential"),
        ((1, 1, 0, 0), "grow"),
        ((0, 1, 1, 0), "win_back_high_value"),
        ((2, 1, 1, 0), "nurture"),
        ((0, 0, 2, 0), "win_back_high_value"),
        ((2, 2, 2, 0), "low_cost"),
        ((1, 1, 2, 0), "win_back"),
    ],
)
def test_strategy_archetypes(levels, expected):
    assert strategy(*levels) == expected


def test_names_are_readable_bilingual_and_deterministic():
    rng = np.random.default_rng(0)
    n = 300
    features = pd.DataFrame(
        {
            "monetary": rng.lognormal(6, 1, n),
            "frequency_orders": rng.integers(1, 30, n),
            "recency_days": rng.integers(0, 700, n),
            "tenure_days": rng.integers(0, 900, n),
        }
    )
    top = features["monetary"] > features["monetary"].quantile(0.8)
    features.loc[top, ["frequency_orders", "recency_days"]] = [40, 3]
    labels = np.where(top, "a", np.where(features["recency_days"] > 400, "b", "c"))
    names = name_segments(features, labels, ["a", "b", "c"])
    assert names[0].name == "high value, frequent, recent"
    assert names[0].name_zh == "高价值-高频-近期" and names[0].strategy == "core_loyal"
    assert "dormant" in names[1].name
    assert names == name_segments(features.copy(), labels.copy(), ["a", "b", "c"])
    assert len({s.name for s in names}) == 3


def test_twin_segments_get_told_apart():
    features = pd.DataFrame(
        {
            "monetary": [100.0] * 4 + [100.0] * 4 + [5000.0] * 4,
            "frequency_orders": [2] * 12,
            "recency_days": [50] * 12,
            "online_share": [1.0] * 4 + [0.0] * 4 + [0.5] * 4,
        }
    )
    labels = np.repeat(["x", "y", "z"], 4)
    names = [s.name for s in name_segments(features, labels, ["x", "y", "z"])]
    assert names[0] != names[1]
    assert names[0].endswith("online") and names[1].endswith("offline")


def test_schemes_that_cannot_apply_are_skipped_with_a_reason():
    from training.segmentation import fit_schemes

    features = rfm([(i, i % 7, 100.0 * i) for i in range(12)]).assign(order_days_180d=1)
    fitted, skipped = fit_schemes(features, load())
    assert [f.name for f in fitted] == ["rfm_rules", "rfm_scores", "value_activity", "abc"]
    assert skipped["demographic"].startswith("no customer attributes (age_band, province)")
    assert skipped["behaviour_clusters"] == (
        "12 customer(s); clustering needs at least 60 (20 per cluster)"
    )
    assert "`custseg run` fits it" in skipped["repurchase_tree"]  # needs the log


# -- review cases: clear errors instead of silent nonsense ---------------------------------------
def test_a_rule_on_a_text_column_is_an_error_not_everyone_in_default(tmp_path):
    sf = scheme_file(tmp_path, RULES % "grow" + ONE_RULE + "province = { min = 1 }")
    features = rfm([(1, 1, 1.0)]).assign(province="广东")
    with pytest.raises(
        InputError, match=r"scheme a: column\(s\) province \(object\) must hold numbers"
    ):
        fit_scheme(sf.schemes[0], sf, features)


def test_infinite_values_count_as_missing():
    s, sf = spec("rfm_rules")
    features = rfm([(10, 6, 3000.0), (10, 6, 3000.0)])
    features.loc[1, "spend_180d"] = np.inf
    assert list(fit_scheme(s, sf, features).labels) == ["high_value", "general"]


def test_fitted_schemes_assign_ints_sent_as_floats_alike():
    s, sf = spec("rfm_scores")
    features = rfm([(i, 1 + i % 9, 50.0 * i) for i in range(50)])
    fitted = fit_scheme(s, sf, features)
    floats = features.astype({"recency_days": float, "frequency_orders": float})
    assert list(fitted.assign(floats)) == list(fitted.labels)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("strategies = 'x'", "strategies must be tables"),
        (
            '[schemes.a]\nkind = "rules"\ndefault = { key = "all", en = "a", zh = "a", '
            'strategy = "grow" }\nsegments = []',
            "key 'all' is reserved",
        ),
        (
            '[schemes.a]\nkind = "rfm_scores"\nmap = [\n'
            '{ key = "x", en = "x", zh = "x", r = [1, 5], f = [1, 2], strategy = "grow" },\n'
            '{ key = "x", en = "y", zh = "x", r = [1, 5], f = [3, 5], strategy = "grow" }]',
            "map key 'x' appears with different names",
        ),
        (
            '[schemes.a]\nkind = "rfm_scores"\nmap = [\n'
            '{ key = "x", en = "x", zh = "x", r = [true, 5], f = [1, 5], strategy = "grow" }]',
            r"r = \[True, 5\]: expected \[lo, hi\]",
        ),
        ('[schemes.a]\nkind = "abc"\ndescription = { x = 1 }', "description = .*expected text"),
    ],
)
def test_more_scheme_file_mistakes(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        sf = scheme_file(tmp_path, text)
        for s in sf.schemes:
            parse(s, sf)


def test_a_scheme_file_in_another_encoding_or_a_folder_is_a_clear_error(tmp_path):
    gbk = tmp_path / "gbk.toml"
    gbk.write_bytes('[schemes.a]\nkind = "abc"\ndescription = "客户"\n'.encode("gbk"))
    with pytest.raises(ConfigError, match="not UTF-8 text; save the scheme file as UTF-8"):
        load(gbk)
    with pytest.raises(ConfigError, match="cannot read the scheme file"):
        load(tmp_path)


def test_abc_with_no_a_share_puts_nobody_in_a():
    a_min, b_min = thresholds(np.array([50.0, 30, 20]), 0.0, 0.5)
    assert a_min == np.inf and b_min == 50.0


def test_demographic_whole_numbers_read_the_same_as_int_or_float():
    from training.segmentation.demographic import DemographicScheme

    ints = pd.DataFrame({"age": [30, 30, 40], "province": ["广东"] * 3})
    scheme = DemographicScheme(("age", "province"), 5)
    assigner = scheme.fit(ints)
    floats = ints.astype({"age": float})
    assert (
        list(assigner.assign(floats))
        == list(assigner.assign(ints))
        == ["30|广东", "30|广东", "40|广东"]
    )


def test_fixed_rules_report_no_stability_learned_thresholds_are_logged():
    s, sf = spec("rfm_rules")
    assert np.isnan(fit_scheme(s, sf, rfm([(1, 1, 1.0)] * 5)).metrics["stability_ari"])
    s, sf = spec("abc")
    fitted = fit_scheme(s, sf, pd.DataFrame({"monetary": [3.0, 50, 2, 30, 10, 5]}))
    assert fitted.params["learned.a_min_revenue"] == 30.0
    assert fitted.params["learned.b_min_revenue"] == 5.0
