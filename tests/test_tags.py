"""Dynamic tags with decay: the formula on hand-made orders, point in time, every engine,
activation at the threshold, config validation, tags skipped for lack of a column."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from core.errors import ConfigError
from features.build import active_tags, build_features, definition_hash
from features.definitions import DEFAULT_TAGS, FeatureConfig, TagConfig
from features.online import OnlineFeatures
from tests.conftest import needs_spark

D = date(2026, 6, 30)  # a Tuesday


def orders(rows: list[tuple], channel: bool = True, category: bool = True) -> pd.DataFrame:
    """(customer, days before D, amount[, channel[, category]])"""
    full = [r + (None,) * (5 - len(r)) for r in rows]
    df = pd.DataFrame(full, columns=["customer_id", "ago", "amount", "channel", "category"])
    df["order_date"] = pd.to_datetime([D - timedelta(days=int(a)) for a in df.pop("ago")])
    df["is_refund"] = df["amount"] < 0
    df["channel"] = df["channel"].fillna("offline")
    df["category"] = df["category"].fillna("食品")
    return df.drop(
        columns=[c for c, keep in (("channel", channel), ("category", category)) if not keep]
    )


def config(**tags: dict) -> FeatureConfig:
    return FeatureConfig.from_dict({"default_tags": False, "tags": tags})


def score(df: pd.DataFrame, cfg: FeatureConfig, tag: str, customer="A", **kw) -> float:
    table = build_features(df, None, D, cfg, **kw).set_index("customer_id")
    return float(table.loc[customer, f"tag_{tag}"])


def test_score_follows_the_decay_formula():
    # period 7 days, as of D: ages 0 (0..6 days ago), 1 (7..13), 3 (21..27)
    df = orders([("A", 0, 5.0), ("A", 6, 5.0), ("A", 7, 5.0), ("A", 27, 5.0), ("A", 28, 5.0)])
    cfg = config(any={})
    assert score(df, cfg, "any") == pytest.approx(2 + 0.85 + 0.85**3 + 0.85**4, rel=1e-12)
    cfg = config(any={"alpha": 0.5, "period_days": 10})  # ages 0, 0, 0, 2, 2
    assert score(df, cfg, "any") == pytest.approx(3 + 2 * 0.25, rel=1e-12)


def test_conditions_select_the_events():
    df = orders(
        [
            ("A", 0, 50.0, "online", "食品"),  # Tuesday
            ("A", 3, 150.0, "online", "服装"),  # Saturday
            ("A", 9, 150.0, "offline", "食品"),  # Sunday, age 1
            ("A", 10, -20.0, "offline", "食品"),  # a refund, Saturday, age 1
        ]
    )
    cfg = config(
        weekend={"days": "weekend"},
        big={"min_amount": 100},
        small={"max_amount": 100},
        online={"channel": "online"},
        food={"category": "食品"},
        top={"category": "@top"},  # the top category by spend: 食品 (200 vs 150)
        back={"refund": True},
        sat={"days": ["saturday"]},
    )
    table = build_features(df, None, D, cfg).set_index("customer_id")
    got = {t.name: table.loc["A", t.column] for t in cfg.tags}
    assert got == pytest.approx(
        {
            "weekend": 1 + 0.85,
            "big": 1 + 0.85,
            "small": 1,
            "online": 2,
            "food": 1 + 0.85,
            "top": 1 + 0.85,
            "back": 0.85,
            "sat": 1,
        }
    )
    assert "tag_back" in table and table.attrs["tags"]["back"] == 7.0


def test_order_lines_count_orders_and_category_lines():
    df = orders([("A", 0, 60.0, "online", "食品"), ("A", 0, 70.0, "online", "食品")])
    df["order_id"] = ["o1", "o1"]  # one order of two lines, 130 in total
    cfg = config(big={"min_amount": 100}, every={}, food={"category": "食品"})
    table = build_features(df, None, D, cfg).set_index("customer_id")
    assert table.loc["A", "tag_big"] == 1 and table.loc["A", "tag_every"] == 1
    assert table.loc["A", "tag_food"] == 2  # a category tag counts lines


def test_orders_after_the_as_of_date_change_nothing():
    df = orders([("A", 3, 5.0), ("A", 20, 5.0), ("B", 1, 5.0)])
    later = pd.concat([df, orders([("A", -1, 5.0), ("A", -30, -5.0), ("B", -2, 9.0)])])
    a = build_features(df, None, D)
    b = build_features(later, None, D)
    pd.testing.assert_frame_equal(a, b)


def test_activation_at_the_threshold():
    # three orders today: score exactly 3
    df = orders([("A", 0, 5.0), ("A", 0, 5.0), ("A", 0, 5.0), ("B", 0, 5.0)])
    cfg = config(three={"threshold": 3}, many={"threshold": 3.5})
    table = build_features(df, None, D, cfg)
    assert active_tags(table, table.attrs["tags"]) == [["three"], []]


def _sample_log(n: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    rows = [
        (
            f"C{rng.integers(40):02d}",
            int(rng.integers(-20, 200)),
            float(rng.choice([-15.0, 20.0, 80.0, 140.0])),
            str(rng.choice(["online", "offline"])),
            str(rng.choice(["食品", "服装", "数码"])),
        )
        for _ in range(n)
    ]
    return orders(rows)


def test_engines_agree_and_the_online_path_too():
    df = _sample_log()
    a = build_features(df, None, D, engine="duckdb")
    b = build_features(df, None, D, engine="polars")
    tags = [c for c in a if c.startswith("tag_")]
    assert sorted(tags) == sorted(t.column for t in DEFAULT_TAGS)
    pd.testing.assert_frame_equal(a, b, rtol=1e-9)
    online = OnlineFeatures(a.attrs["categories"], with_customers=False)(df, D)
    pd.testing.assert_frame_equal(a[tags], online[tags], rtol=1e-9)


@pytest.mark.slow
@needs_spark
def test_spark_agrees():
    df = _sample_log()
    pd.testing.assert_frame_equal(
        build_features(df, None, D), build_features(df, None, D, engine="spark"), rtol=1e-9
    )


def test_a_tag_without_its_column_is_skipped_with_a_note():
    df = orders([("A", 0, 5.0)], channel=False, category=False)
    table = build_features(df, None, D)
    assert "tag_online_fan" not in table and "tag_top_category_fan" not in table
    assert {"tag_weekend_shopper", "tag_big_basket", "tag_refunder"} <= set(table.columns)
    notes = " ".join(table.attrs["tag_notes"])
    assert "online_fan" in notes and "channel" in notes and "top_category_fan" in notes
    assert list(table.attrs["tags"]) == ["weekend_shopper", "big_basket", "refunder"]


def test_tags_change_the_definition_hash():
    cats = ["食品"]
    base = definition_hash(FeatureConfig(), cats)
    assert definition_hash(FeatureConfig(), cats, ["refunder"]) != base
    other = FeatureConfig.from_dict({"tags": {"refunder": {"refund": True, "threshold": 2}}})
    assert definition_hash(other, cats) != base


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({"tags": {"Bad Name": {}}}, "features.tags.Bad Name"),
        ({"tags": {"x": {"alpha": 1.5}}}, "features.tags.x.alpha"),
        ({"tags": {"x": {"alpha": 0}}}, "features.tags.x.alpha"),
        ({"tags": {"x": {"period_days": 0}}}, "features.tags.x.period_days"),
        ({"tags": {"x": {"threshold": -1}}}, "features.tags.x.threshold"),
        ({"tags": {"x": {"channel": "phone"}}}, "features.tags.x.channel"),
        ({"tags": {"x": {"days": ["someday"]}}}, "features.tags.x.days"),
        ({"tags": {"x": {"category": []}}}, "features.tags.x.category"),
        ({"tags": {"x": {"min_amount": "a lot"}}}, "features.tags.x.min_amount"),
        ({"tags": {"x": {"min_amount": 10, "max_amount": 5}}}, "max_amount"),
        ({"tags": {"x": {"refund": "yes"}}}, "features.tags.x.refund"),
        ({"tags": {"x": {"colour": "red"}}}, "colour"),
        ({"tags": {"x": 3}}, "features.tags.x"),
        ({"tags": 3}, "features.tags"),
        ({"default_tags": "no"}, "features.default_tags"),
    ],
)
def test_config_errors_name_the_key(data, needle):
    with pytest.raises(ConfigError, match=needle.replace(".", r"\.")):
        FeatureConfig.from_dict(data)


def test_config_merges_with_the_defaults():
    cfg = FeatureConfig.from_dict({"tags": {"refunder": {"refund": True, "threshold": 2}}})
    assert [t.name for t in cfg.tags] == [t.name for t in DEFAULT_TAGS]
    assert next(t for t in cfg.tags if t.name == "refunder").threshold == 2
    t = FeatureConfig.from_dict({"default_tags": False, "tags": {"w": {"days": "weekday"}}}).tags
    assert t == (TagConfig("w", days=("mon", "tue", "wed", "thu", "fri")),)


@settings(max_examples=25, deadline=None)
@given(
    ages=st.lists(st.integers(0, 120), min_size=1, max_size=8),
    extra=st.integers(0, 120),
    period=st.integers(1, 30),
    alpha=st.floats(0.05, 1.0),
)
@example(ages=[49, 107, 71, 23, 8, 8, 75, 119], extra=98, period=5, alpha=0.09121500706806451)
def test_adding_a_qualifying_event_never_lowers_the_score(ages, extra, period, alpha):
    cfg = config(any={"alpha": alpha, "period_days": period})
    df = orders([("A", a, 1.0) for a in ages])
    more = orders([("A", a, 1.0) for a in [*ages, extra]])
    before, after = score(df, cfg, "any", engine="polars"), score(more, cfg, "any", engine="polars")
    # a weight below float resolution (0.09 ** 19) may round the sum down by one last bit
    tiny = 1e-12 * max(1.0, before)
    assert after >= before - tiny
    assert after - before == pytest.approx(alpha ** (extra // period), rel=1e-9, abs=tiny)


def test_predict_answers_carry_the_active_tags():
    from serving.models import ModelSet
    from serving.schemas import CustomerAnswer

    rows = pd.DataFrame({"customer_id": ["A", "B"], "tag_x": [2.0, 1.9], "tag_y": [9.0, 0.0]})
    answers = ModelSet({}, {}, {}, tags={"x": 2.0, "y": 7.0, "absent": 1.0}).predict(rows)
    assert [a["active_tags"] for a in answers] == [["x", "y"], []]
    assert CustomerAnswer(**answers[0]).active_tags == ["x", "y"]


def test_monitoring_keeps_tag_prevalence_per_run(tmp_path):
    from types import SimpleNamespace

    from monitoring.report import _tags
    from monitoring.summary import update_tag_history

    path = tmp_path / "tag_history.csv"
    for day, share in (("2026-05-31", 0.1), ("2026-06-30", 0.2), ("2026-06-30", 0.25)):
        tags = {"current": {"x": share}, "reference": {"x": 0.05}}
        history = update_tag_history(path, SimpleNamespace(as_of=date.fromisoformat(day)), tags)
    assert [(r["as_of"], r["share"]) for r in history] == [
        ("2026-05-31", 0.1),
        ("2026-06-30", 0.25),
    ]
    shown = _tags({**tags, "history": history})
    assert shown["names"] == ["x"] and shown["reference"] == [0.05]
    assert shown["history"] == [("2026-05-31", [0.1]), ("2026-06-30", [0.25])]


def test_monitoring_prevalence_and_its_table_in_the_report(tmp_path):
    from types import SimpleNamespace

    from monitoring.report import write_report
    from monitoring.summary import tag_prevalence

    current = pd.DataFrame({"customer_id": ["A", "B", "C", "D"], "tag_x": [7.0, 6.9, 9.0, 0.0]})
    reference = pd.DataFrame({"customer_id": ["A", "B"], "tag_x": [0.0, 8.0]})
    m = SimpleNamespace(current=current, reference=SimpleNamespace(table=reference))
    tags = tag_prevalence(m, SimpleNamespace(tags={"x": 7.0}))
    assert tags == {"current": {"x": 0.5}, "reference": {"x": 0.5}}
    tags["current"]["x"] = 0.25
    tags["history"] = [{"as_of": "2026-05-31", "tag": "x", "share": 0.125}]
    bare = {"status": "healthy", "as_of": "2026-06-30", "trigger": {"needed": False}, "tags": tags}
    html = write_report(bare, pd.DataFrame(), tmp_path).read_text("utf-8")
    assert '<h2 id="tags">Dynamic tags</h2>' in html
    assert '<td>2026-05-31</td><td class="num">12.5%</td>' in html
    assert '<td>reference</td><td class="num">50.0%</td>' in html
