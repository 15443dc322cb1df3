"""Value tiers (issue 20): customers ranked by predicted CLV and cut by rank share; thresholds
learned at fit place new customers; schemes reading `clv` are skipped without it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import ConfigError, InputError
from training.segmentation import fit_scheme, fit_schemes, load, parse
from training.segmentation.definitions import definitions
from training.segmentation.model import SegmenterModel
from training.segmentation.spec import SchemeFile
from training.segmentation.tiers import EDGES, TierAssigner, TiersScheme, thresholds

KEYS = ["top_1", "top_1_5", "top_5_10", "top_10_25", "top_25_50", "bottom_50"]


def scheme_file(tmp_path, text: str) -> SchemeFile:
    path = tmp_path / "schemes.toml"
    path.write_text(text, "utf-8")
    return load(path)


def spec(name: str):
    sf = load()
    return next(s for s in sf.schemes if s.name == name), sf


def customers(clv) -> pd.DataFrame:
    clv = np.asarray(clv, dtype=float)
    return pd.DataFrame(
        {
            "customer_id": [f"C{i}" for i in range(len(clv))],
            "clv": clv,
            "monetary": np.nan_to_num(clv) / 2,
            "order_days_180d": np.arange(len(clv)) % 7,
        }
    )


def test_tier_sizes_are_the_configured_shares():
    s, sf = spec("value_tiers")
    features = customers(np.random.default_rng(3).permutation(10_000) * 1.5 + 0.25)
    fitted = fit_scheme(s, sf, features)
    sizes = pd.Series(fitted.labels).value_counts()
    assert [s.key for s in fitted.segments] == KEYS
    assert [int(sizes[k]) for k in KEYS] == [100, 400, 500, 1500, 2500, 5000]
    # the top tier holds the largest values, the bottom the smallest
    by = features.assign(tier=fitted.labels).groupby("tier")["clv"]
    assert by.min()["top_1"] > by.max()["top_1_5"] and by.max()["bottom_50"] < by.min()["top_25_50"]
    learned = {k: v for k, v in fitted.params.items() if k.startswith("learned.")}
    assert list(learned) == [f"learned.{k}_min_clv" for k in KEYS[:-1]]
    assert learned["learned.top_1_min_clv"] == float(np.sort(features["clv"])[-100])


def test_new_customers_are_placed_by_the_learned_thresholds():
    s, sf = spec("value_tiers")
    features = customers(np.arange(1000, dtype=float))
    fitted = fit_scheme(s, sf, features)
    t = fitted.assigner.thresholds
    assert t == (990.0, 950.0, 900.0, 750.0, 500.0)
    # the same rows, shuffled and alone: the same tiers as at fit time
    shuffled = features.sample(frac=1, random_state=1)
    assert list(fitted.assign(shuffled)) == list(pd.Series(fitted.labels)[shuffled.index])
    model = SegmenterModel(fitted, sf.strategies, {"as_of": "2026-06-30"})
    one = model.predict(None, features.iloc[[995]])
    assert one["segment"].tolist() == ["top_1"] and one["segment_name_zh"].tolist() == ["前1%客户"]
    # values never seen: at a threshold goes up, just under goes down, missing goes to the bottom
    new = customers([5000.0, 990.0, 989.99, 950.0, 500.0, 499.5, -3.0, np.nan, np.inf])
    assert list(fitted.assign(new)) == [
        "top_1",
        "top_1",
        "top_1_5",
        "top_1_5",
        "top_25_50",
        "bottom_50",
        "bottom_50",
        "bottom_50",
        "bottom_50",  # infinite counts as missing
    ]


def test_ties_go_to_the_higher_tier():
    s, sf = spec("value_tiers")
    clv = [100.0] * 8 + list(range(92))  # 8 customers tied at the top
    fitted = fit_scheme(s, sf, customers(clv))
    sizes = pd.Series(fitted.labels).value_counts()
    assert sizes["top_1"] == 8 and "top_1_5" not in sizes and sizes["top_5_10"] == 2
    text = definitions(fitted.assigner, None, fitted.labels, KEYS)
    assert text["top_1"] == "clv ≥ 100 (top 1%)"
    assert text["top_1_5"] == "nobody (top 1-5%)"
    assert text["top_5_10"] == "90 ≤ clv < 100 (top 5-10%)"
    assert text["top_10_25"] == "75 ≤ clv < 90 (top 10-25%)"
    assert text["bottom_50"] == "clv < 50 or missing (bottom 50%)"


def test_definitions_read_like_the_abc_ones():
    a = TierAssigner("clv", EDGES, (1234.5, 800.0, 300.0, 120.25, 40.0), tuple(KEYS))
    text = definitions(a, None, np.array([]), KEYS)
    assert text["top_1"] == "clv ≥ 1,234.5 (top 1%)"
    assert text["top_1_5"] == "800 ≤ clv < 1,234.5 (top 1-5%)"
    assert text["top_25_50"] == "40 ≤ clv < 120.2 (top 25-50%)"
    assert text["bottom_50"] == "clv < 40 or missing (bottom 50%)"
    nobody = TierAssigner("clv", (0.5,), (np.inf,), ("top", "rest"))
    assert definitions(nobody, None, np.array([]), ["top", "rest"]) == {
        "top": "nobody (top 50%)",
        "rest": "everyone (bottom 50%)",
    }


def test_missing_values_rank_last_and_land_in_the_bottom_tier():
    values = np.array([np.nan] * 6 + [4.0, 3.0, 2.0, 1.0])
    assert thresholds(values, (0.1, 0.5, 0.9)) == (4.0, 1.0, 1.0)
    assert thresholds(np.full(4, np.nan), (0.5,)) == (np.inf,)
    s, sf = spec("value_tiers")
    fitted = fit_scheme(s, sf, customers(values))
    assert list(fitted.labels[:6]) == ["bottom_50"] * 6


TIERS = '[schemes.t]\nkind = "tiers"\ncolumn = "clv"\n'
TWO = (
    'tiers = [{ key = "a", en = "a", zh = "甲", strategy = "core_loyal" },\n'
    '  { key = "b", en = "b", zh = "乙", strategy = "low_cost" }]\n'
)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[schemes.t]\nkind = "tiers"', r"\[schemes.t\]: missing key 'column'"),
        (TIERS + "edges = [0.5, 0.1]\n", r"edges = \[0.5, 0.1\]: expected cumulative top shares"),
        (TIERS + "edges = [0.1, 0.1]\n", r"edges = .*strictly increasing"),
        (TIERS + "edges = [0, 0.5]\n", r"edges = \[0, 0.5\]: .*between 0 and 1"),
        (TIERS + "edges = [0.5, 1]\n", r"edges = \[0.5, 1\]"),
        (TIERS + "edges = []\n", r"edges = \[\]"),
        (TIERS + 'edges = ["10%"]\n', r"edges = \['10%'\]"),
        (TIERS + "edges = [true]\n", r"edges = \[True\]"),
        (TIERS + "edges = 0.5\n", r"edges = 0.5: expected list"),
        (TIERS + "edges = [0.2]\n", r"tiers: needs 2 tier tables \(one more than edges\)"),
        (TIERS + "edges = [0.2, 0.6]\n" + TWO, r"tiers: 2 table\(s\) for 2 edges: expected 3"),
        (TIERS + TWO, r"tiers: 2 table\(s\) for 5 edges: expected 6"),
        (TIERS + "edges = [0.2]\n" + TWO.replace('"b"', '"a"'), "tier key.* used twice: a"),
        (TIERS + "edges = [0.2]\n" + TWO.replace("low_cost", "vip"), "strategy = 'vip'"),
        (TIERS + "edges = [0.2]\ntiers = [1, 2]\n", r"tiers\[0\]: expected a table"),
        (TIERS + "edge = [0.2]\n", "unknown key.*edge"),
    ],
)
def test_bad_tier_options_are_clear_errors(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        sf = scheme_file(tmp_path, text)
        for s in sf.schemes:
            parse(s, sf)


def test_custom_edges_and_default_tiers(tmp_path):
    sf = scheme_file(tmp_path, TIERS + "edges = [0.2]\n" + TWO)
    kind = parse(sf.schemes[0], sf)
    assert kind.edges == (0.2,) and [t.key for t in kind.tiers] == ["a", "b"]
    fitted = fit_scheme(sf.schemes[0], sf, customers(range(10)))
    assert list(fitted.labels) == ["b"] * 8 + ["a"] * 2
    default = parse(scheme_file(tmp_path, TIERS).schemes[0], load())
    assert default.edges == EDGES and [t.key for t in default.tiers] == KEYS
    assert default.tiers[0].name_zh == "前1%客户" and default.tiers[-1].strategy == "low_cost"
    assert default == parse(*spec("value_tiers"))  # the packaged table spells out the defaults


def test_the_packaged_value_schemes():
    sf = load()
    tiers = parse(*spec("value_tiers"))
    assert isinstance(tiers, TiersScheme) and tiers.column == "clv" and tiers.edges == EDGES
    assert [t.key for t in tiers.tiers] == KEYS
    matrix = parse(*spec("clv_activity"))
    assert (matrix.value, matrix.activity) == ("clv", "order_days_180d")
    assert {s.kind for s in sf.schemes} >= {"tiers", "matrix"}


def test_schemes_reading_clv_are_skipped_without_it():
    features = customers(np.arange(12.0)).drop(columns="clv")
    features = features.assign(recency_days=1, frequency_orders=2, orders_180d=2, spend_180d=1.0)
    fitted, skipped = fit_schemes(features, load())
    why = "needs column clv (predicted CLV): it comes from `custseg run`"
    assert skipped["value_tiers"] == skipped["clv_activity"] == why
    assert "value_tiers" not in [f.name for f in fitted]
    # with the value model's column both fit
    fitted, skipped = fit_schemes(features.assign(clv=np.arange(12.0)), load())
    assert {"value_tiers", "clv_activity"} <= {f.name for f in fitted}
    assert "value_tiers" not in skipped and "clv_activity" not in skipped


def test_a_misspelt_column_is_still_an_error_not_a_skip(tmp_path):
    sf = scheme_file(tmp_path, '[schemes.t]\nkind = "tiers"\ncolumn = "cvl"\n')
    features = customers(np.arange(12.0))
    with pytest.raises(InputError, match=r"lacks column\(s\) cvl \(did you mean clv\?\)"):
        fit_schemes(features, sf)
    sf = scheme_file(tmp_path, '[schemes.m]\nkind = "matrix"\nvalue = "p_alive"\n')
    _, skipped = fit_schemes(features, sf)
    assert skipped["m"] == (
        "needs column p_alive (probability the customer is still active): it comes from "
        "`custseg run`"
    )


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.one_of(st.floats(-1e6, 1e6, allow_nan=False), st.just(np.nan), st.sampled_from([0, 7])),
        min_size=1,
        max_size=300,
    ),
    st.lists(st.floats(0.001, 0.999), min_size=1, max_size=6, unique=True).map(sorted),
)
def test_every_customer_gets_one_tier_by_rank(values, edges):
    v = np.array(values, dtype=float)
    keys = tuple(f"t{i}" for i in range(len(edges) + 1))
    t = thresholds(v, tuple(edges))
    assigner = TierAssigner("clv", tuple(edges), t, keys)
    labels = assigner.assign(pd.DataFrame({"clv": v}))
    tier = np.array([keys.index(k) for k in labels])
    assert len(labels) == len(v)
    assert list(t) == sorted(t, reverse=True)  # thresholds never rise
    valid = ~np.isnan(v)
    assert (tier[~valid] == len(edges)).all()
    # a higher value is never in a lower tier
    order = np.argsort(-v[valid], kind="stable")
    assert (np.diff(tier[valid][order]) >= 0).all()
    # the top k tiers hold the top share, ties at the boundary pulled up, no more
    n, count = len(v), valid.sum()
    for k, edge in enumerate(edges):
        want = min(int(np.ceil(round(edge * n, 9))), count)
        top = tier <= k
        assert top.sum() >= want
        if want:
            assert (valid & (v > t[k])).sum() < want
        else:
            assert not top.any()
