"""What customers buy together: rules equal a hand-computed example, planted pairs are found
with their planted confidence (overall and per segment), next-best products exclude what the
customer bought, lines after the cutoff and refunds change nothing, the config is checked."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import date

import numpy as np
import pandas as pd
import pytest

from core.errors import ConfigError
from tests.conftest import needs_spark, run_cli
from training.baskets import BasketConfig, build_baskets, distinctive, next_best, rules, validate

AS_OF = date(2026, 3, 31)
LOOSE = BasketConfig(min_support=0.0, min_confidence=0.0, min_lift=0.0, min_count=1)


def log(orders: list[tuple[str, str, str, list[str]]], **extra) -> pd.DataFrame:
    """Clean order lines from (order_id, customer_id, date, products)."""
    rows = [
        {
            "order_id": o,
            "customer_id": c,
            "order_date": pd.Timestamp(d),
            "product": p,
            "amount": 1.0,
        }
        for o, c, d, products in orders
        for p in products
    ]
    out = pd.DataFrame(rows)
    out["is_refund"] = False
    return out.assign(**extra)


HAND = log(
    [
        ("1", "u1", "2026-03-01", ["a", "b", "c"]),
        ("2", "u1", "2026-03-02", ["a", "b"]),
        ("3", "u2", "2026-03-03", ["a", "c"]),
        ("4", "u2", "2026-03-04", ["b"]),
        ("5", "u3", "2026-03-05", ["a", "b", "d"]),
    ]
)


def rule(table: pd.DataFrame, x: str, y: str, segment: str = "all") -> pd.Series:
    hit = table[
        (table["antecedent"] == x) & (table["consequent"] == y) & (table["segment"] == segment)
    ]
    assert len(hit) == 1, (x, y, segment)
    return hit.iloc[0]


def test_rules_equal_a_hand_computed_example():
    table = rules(build_baskets(HAND, AS_OF), LOOSE)
    # 5 baskets; a in 4, b in 4, c in 2; a+b in 3, a+c in 2, b+c in 1
    ab = rule(table, "a", "b")
    assert (ab.n_baskets, ab.n_antecedent, ab.n_consequent, ab.n_both) == (5, 4, 4, 3)
    assert ab.support == pytest.approx(0.6) and ab.confidence == pytest.approx(0.75)
    assert ab.lift == pytest.approx(0.75 / 0.8) and ab.conviction == pytest.approx(0.2 / 0.25)
    ac = rule(table, "a", "c")
    assert ac.confidence == pytest.approx(0.5) and ac.lift == pytest.approx(1.25)
    assert ac.conviction == pytest.approx(0.6 / 0.5)
    ca = rule(table, "c", "a")  # every basket with c has a: conviction is infinite
    assert ca.confidence == 1.0 and ca.lift == pytest.approx(1.25) and math.isinf(ca.conviction)
    # thresholds: lift >= 1 drops a -> b (0.94); a minimum of 3 baskets keeps only a, b
    strict = rules(build_baskets(HAND, AS_OF), BasketConfig(min_lift=1.0, min_count=1))
    assert not ((strict["antecedent"] == "a") & (strict["consequent"] == "b")).any()
    counted = rules(build_baskets(HAND, AS_OF), BasketConfig(min_lift=0, min_count=3))
    assert set(zip(counted["antecedent"], counted["consequent"], strict=True)) == {
        ("a", "b"),
        ("b", "a"),
    }


def test_itemset_rules_equal_a_hand_computed_example():
    """X1, X2 -> Y from triples: the antecedent's count is its pair's; a triple below the
    minimum count gives no rule; single-item rules are unchanged."""
    bk = build_baskets(HAND, AS_OF)
    table = rules(bk, replace(LOOSE, max_antecedent=2))
    two = table[table["antecedent_2"].notna()]
    # triples: {a, b, c} in basket 1, {a, b, d} in basket 5: each in 1 of 5 baskets
    got = {(r.antecedent, r.antecedent_2, r.consequent): r for r in two.itertuples()}
    assert set(got) == {("a", "b", "c"), ("a", "c", "b"), ("b", "c", "a"),
                        ("a", "b", "d"), ("a", "d", "b"), ("b", "d", "a")}  # fmt: skip
    abc = got["a", "b", "c"]  # a+b in 3 baskets, c in 2
    assert (abc.n_antecedent, abc.n_consequent, abc.n_both, abc.n_baskets) == (3, 2, 1, 5)
    assert abc.support == pytest.approx(0.2) and abc.confidence == pytest.approx(1 / 3)
    assert abc.lift == pytest.approx((1 / 3) / (2 / 5)) and abc.conviction == pytest.approx(0.9)
    acb = got["a", "c", "b"]  # a+c in 2, b in 4
    assert acb.confidence == pytest.approx(0.5) and acb.lift == pytest.approx(0.625)
    assert acb.conviction == pytest.approx(0.2 / 0.5)
    bca = got["b", "c", "a"]  # b+c in 1 basket, which has a
    assert bca.confidence == 1 and bca.lift == pytest.approx(1.25) and math.isinf(bca.conviction)
    assert got["a", "b", "d"].lift == pytest.approx((1 / 3) / (1 / 5))
    assert two["antecedent_2_label"].eq(two["antecedent_2"]).all()
    single = table[table["antecedent_2"].isna()].drop(
        columns=["antecedent_2", "antecedent_2_label"]
    )
    pd.testing.assert_frame_equal(single.reset_index(drop=True), rules(bk, LOOSE))
    # every triple is in 1 basket: a minimum of 2 leaves pairs only
    assert rules(bk, replace(LOOSE, min_count=2, max_antecedent=2))["antecedent_2"].isna().all()
    with pytest.raises(ConfigError, match="max_antecedent = 3: 1"):
        BasketConfig.from_dict({"max_antecedent": 3})


def test_the_page_shows_each_pair_and_triple_once(tmp_path):
    from training.baskets.page import top_rules, write_page
    from training.baskets.stage import BasketResult, basket_rules, summary

    cfg = replace(LOOSE, max_antecedent=2)
    bk = build_baskets(HAND, AS_OF)
    table = basket_rules(bk, cfg, None)
    top = top_rules(table, 100)
    # pairs ab ac ad bc bd (c and d never together) and triples abc abd: one rule each
    sets = {frozenset({r["antecedent"], r["consequent"], r["antecedent_2"]} - {None}) for r in top}
    assert len(top) == len(sets) == 7
    r = BasketResult(bk, table, next_best(bk, cfg), validate(bk, cfg), None)
    r.summary = summary(r, cfg)
    html = write_page(tmp_path / "p.html", r, cfg).read_text("utf-8")
    # each triple by its rule of highest lift: b, c -> a (1.25) and a, b -> d (1.67)
    assert "<td>b + c</td><td>a</td>" in html and "<td>a + b</td><td>d</td>" in html
    assert html.count(" + ") == 2


def test_itemset_rules_are_not_compared_with_the_rest():
    tx, segments = two_segments()
    bk = build_baskets(tx, AS_OF)
    cfg = BasketConfig(min_support=0.003, min_count=3, max_antecedent=2)
    apart = distinctive(bk, rules(bk, cfg, segments), segments)
    two = apart["antecedent_2"].notna()
    assert two.any() and (~two).any()
    assert apart.loc[two, "p_value"].isna().all() and not apart.loc[two, "distinctive"].any()
    assert rule(apart[~two], "tea", "cup", "tea people").distinctive


def planted(seed: int = 1, n: int = 3000, conf: float = 0.7, pair=("p1", "p2"), customers=None):
    """Random baskets of 1-3 of 40 products; a basket with pair[0] (20%) also has pair[1] with
    probability `conf`, and pair[1] is in no other basket."""
    rng = np.random.default_rng(seed)
    orders = []
    for i in range(n):
        items = list(rng.choice([f"x{j}" for j in range(40)], rng.integers(1, 4), replace=False))
        if rng.random() < 0.2:
            items.append(pair[0])
            if rng.random() < conf:
                items.append(pair[1])
        customer = customers[i % len(customers)] if customers else f"c{i % 500}"
        orders.append((f"{pair[0]}-{i}", customer, f"2026-0{1 + i % 3}-{1 + i % 28:02d}", items))
    return log(orders)


def test_a_planted_pair_is_found_with_its_planted_confidence():
    table = rules(build_baskets(planted(), AS_OF), BasketConfig(min_support=0.01))
    assert {table.iloc[0].antecedent, table.iloc[0].consequent} == {"p1", "p2"}  # highest lift
    assert rule(table, "p2", "p1").confidence == 1.0  # p2 only ever comes with p1
    found = rule(table, "p1", "p2")
    assert found.confidence == pytest.approx(0.7, abs=0.05) and found.lift > 3
    # the random pairs are near independence: no other rule has a lift above 2
    others = table[
        ~table["antecedent"].isin(["p1", "p2"]) & ~table["consequent"].isin(["p1", "p2"])
    ]
    assert (others["lift"] < 2).all()


def test_segments_get_their_own_rules_and_what_sets_them_apart():
    tx, segments = two_segments()
    bk = build_baskets(tx, AS_OF)
    cfg = BasketConfig(min_support=0.02)
    per_segment = rules(bk, cfg, segments)
    tea = per_segment[per_segment["segment"] == "tea people"]
    pen = per_segment[per_segment["segment"] == "pen people"]
    assert rule(tea, "tea", "cup", "tea people").confidence == pytest.approx(0.7, abs=0.06)
    assert rule(pen, "tea", "ink", "pen people").confidence == pytest.approx(0.7, abs=0.06)
    assert not tea["consequent"].eq("ink").any() and not pen["consequent"].eq("cup").any()
    everyone = rule(rules(bk, cfg), "tea", "cup")  # diluted: half the tea buyers never buy cups
    assert everyone.confidence == pytest.approx(0.35, abs=0.05)
    apart = distinctive(bk, per_segment, segments)
    row = rule(apart, "tea", "cup", "tea people")
    assert row.distinctive and row.confidence_rest == 0 and row.p_value < 1e-10
    assert rule(apart, "tea", "ink", "pen people").distinctive
    assert not apart[apart["consequent"] == "tea"]["distinctive"].any()  # same in both


def two_segments() -> tuple[pd.DataFrame, pd.Series]:
    """Tea people buy tea with cups, pen people tea with ink (planted pairs, 200 customers
    each)."""
    a = planted(seed=2, pair=("tea", "cup"), customers=[f"a{i}" for i in range(200)])
    b = planted(seed=3, pair=("tea", "ink"), customers=[f"b{i}" for i in range(200)])
    tx = pd.concat([a, b], ignore_index=True)
    segments = pd.Series({c: c[0] for c in tx["customer_id"].unique()}).map(
        {"a": "tea people", "b": "pen people"}
    )
    return tx, segments


@pytest.mark.slow  # a Spark session starts in 13-20 s
@needs_spark
def test_spark_counts_the_same_rules_as_duckdb():
    """The same SQL text on Spark: the same rules, counts exact, measures to float rounding,
    overall, per segment and in the comparison with the rest; the hand example too."""
    from training.baskets.stage import basket_rules

    tx, segments = two_segments()
    bk = build_baskets(tx, AS_OF)
    cfg = BasketConfig(min_support=0.01, min_count=3, max_antecedent=2)
    duck = basket_rules(bk, cfg, segments, "duckdb")
    spark = basket_rules(bk, cfg, segments, "spark")
    assert set(duck["segment"]) == {"all", "tea people", "pen people"}
    assert duck["antecedent_2"].notna().any()
    key = ["segment", "antecedent", "antecedent_2", "consequent"]
    both = duck.merge(spark, on=key, how="outer", suffixes=("", "_s"), indicator=True)
    assert (both["_merge"] == "both").all() and len(both) == len(duck) == len(spark)
    for c in ("n_baskets", "n_antecedent", "n_consequent", "n_both"):
        assert (both[c] == both[f"{c}_s"]).all(), c
    measures = ["support", "confidence", "lift", "conviction", "confidence_rest", "lift_rest"]
    for c in [*measures, "lift_ratio", "p_value"]:
        np.testing.assert_allclose(both[f"{c}_s"], both[c], rtol=1e-12, err_msg=c)
    pd.testing.assert_series_equal(both["distinctive"], both["distinctive_s"], check_names=False)
    assert rule(spark, "tea", "cup", "tea people").distinctive  # the planted pair is there
    hand = [rules(build_baskets(HAND, AS_OF), LOOSE, engine=e) for e in ("duckdb", "spark")]
    pd.testing.assert_frame_equal(hand[0], hand[1], check_exact=False, rtol=1e-12)
    assert math.isinf(rule(hand[1], "c", "a").conviction)


def test_an_unknown_engine_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(ConfigError, match="--engine 'polars': choose one of duckdb, spark"):
        rules(build_baskets(HAND, AS_OF), LOOSE, engine="polars")
    args = ["basket", "-t", str(tmp_path / "none.csv"), "--engine", "polars", "--no-track"]
    code, _, err = run_cli(args, capsys)  # said before the log is read
    assert code == 2 and "--engine 'polars': choose one of duckdb, spark" in err, err


def test_next_best_excludes_what_the_customer_bought():
    tx = planted(seed=4)
    bk = build_baskets(tx, AS_OF)
    picks = next_best(bk, BasketConfig(top_k=3))
    bought = tx.groupby("customer_id")["product"].agg(set)
    assert len(picks) == tx["customer_id"].nunique()
    for col in ("next_best_1", "next_best_2", "next_best_3"):
        assert not any(
            p in bought[c] for c, p in zip(picks["customer_id"], picks[col], strict=True)
        )
    # a customer with p1 and without p2 is offered p2 first
    lonely = log([("z1", "new", "2026-03-30", ["p1"])])
    picks = next_best(build_baskets(pd.concat([tx, lonely]), AS_OF), BasketConfig())
    assert picks.set_index("customer_id").loc["new", "next_best_1"] == "p2"
    # repeat_after_days: what was bought longer ago may be offered again
    again = next_best(build_baskets(HAND, AS_OF), LOOSE.__class__(repeat_after_days=28))
    assert (again.set_index("customer_id").loc["u1"] == "a").any()  # bought 2026-03-01/02


def test_lines_after_the_cutoff_and_refunds_change_nothing():
    before = planted(seed=5)
    cutoff = date(2026, 3, 28)
    later = log([(f"L{i}", "c1", "2026-03-30", ["zz1", "zz2", "p2"]) for i in range(50)])
    refund = log([("R1", "c2", "2026-02-01", ["zz3", "x1"])]).assign(amount=-1.0, is_refund=True)
    cfg = BasketConfig(min_support=0.01)
    base = rules(build_baskets(before[before["order_date"] <= "2026-03-28"], cutoff), cfg)
    with_more = rules(build_baskets(pd.concat([before, later, refund]), cutoff), cfg)
    pd.testing.assert_frame_equal(base, with_more)
    b1 = build_baskets(before[before["order_date"] <= "2026-03-28"], cutoff)
    b2 = build_baskets(pd.concat([before, later, refund]), cutoff)
    assert "zz1" not in set(b2.items) and "zz3" not in set(b2.items)
    pd.testing.assert_frame_equal(next_best(b1, cfg), next_best(b2, cfg))


def test_without_order_ids_a_basket_is_a_customer_day():
    tx = HAND.drop(columns="order_id").assign(order_date=pd.Timestamp("2026-03-01"))
    bk = build_baskets(tx, AS_OF)
    assert bk.n_baskets == 3  # u1, u2, u3 on one day each
    assert rule(rules(bk, LOOSE), "d", "a").confidence == 1.0


def test_out_of_time_check_beats_popularity_on_planted_habits():
    rng = np.random.default_rng(6)
    orders = []
    for i in range(600):
        c = f"c{i}"
        habit = ("p1", "p2") if i % 2 else ("q1", "q2")
        orders.append((f"{c}a", c, "2026-01-10", [habit[0]]))
        orders.append((f"{c}b", c, "2026-03-20", [habit[1], f"x{rng.integers(5)}"]))
    for i in range(300):  # earlier customers who bought both: the co-occurrence to learn
        habit = ("p1", "p2") if i % 2 else ("q1", "q2")
        orders.append((f"o{i}", f"o{i}", "2026-01-05", list(habit)))
    tx = log(orders)
    segments = pd.Series({c: "odd" if int(c[1:]) % 2 else "even" for c in tx["customer_id"]})
    check = validate(build_baskets(tx, AS_OF), BasketConfig(horizon_days=30, top_k=1),
                     lambda cutoff: segments)  # fmt: skip
    m = check["methods"]
    assert check["customers"] == 600
    # each bought 2 new items later (the habit's second and a random one): top 1 finds one
    assert m["co-occurrence"]["hit_rate"] > 0.95 and m["co-occurrence"]["recall"] > 0.45
    assert m["co-occurrence"]["recall"] > m["popularity"]["recall"] + 0.2
    assert set(m) == {"co-occurrence", "popularity", "segment popularity"}


@pytest.mark.parametrize(
    "data, words",
    [
        ({"min_support": 2}, "baskets.min_support = 2: a share between 0 and 1"),
        ({"level": "sku"}, "one of product, category"),
        ({"top_k": 0}, "a whole number >= 1"),
        ({"min_lift": "high"}, "a number"),
        ({"min_lift": -1}, "a number >= 0"),
        ({"typo": 1}, "unknown key(s) typo"),
    ],
)
def test_config_errors_name_the_key(data, words):
    with pytest.raises(ConfigError, match=None) as exc:
        BasketConfig.from_dict(data)
    assert words in str(exc.value)


def test_the_config_file_has_a_baskets_section(tmp_path):
    from core.config import section

    path = tmp_path / "c.toml"
    path.write_text("[baskets]\nmin_support = 0.02\nlevel = 'category'\n")
    cfg = section(path, "baskets", BasketConfig.from_dict)
    assert cfg.min_support == 0.02 and cfg.level == "category"
    path.write_text("[baskets]\nmin_confidence = 1.5\n")
    with pytest.raises(ConfigError, match=r"c\.toml: baskets\.min_confidence"):
        section(path, "baskets", BasketConfig.from_dict)


def test_custseg_basket_on_the_sample(sample_dir, tmp_path, capsys):
    from core.html import scan

    tx = pd.read_csv(sample_dir / "transactions.csv", dtype=str)
    tx.loc[tx.index[:40], "product"] = "<script>alert(1)</script>"  # text from the data
    path = tmp_path / "tx.csv"
    tx.to_csv(path, index=False)
    out = tmp_path / "out"
    config = tmp_path / "baskets.toml"  # sample baskets hold 1.3 products of 354: rare pairs
    config.write_text("[baskets]\nmin_support = 0.0002\nmin_count = 3\n")
    args = ["basket", "-t", str(path), "--as-of", str(AS_OF), "--config", str(config)]
    args += ["--out", str(out), "--no-track"]
    code, _, err = run_cli(args, capsys)
    assert code == 0, err
    table = pd.read_parquet(out / "rules.parquet")
    assert len(set(table["segment"]) - {"all"}) >= 2  # rfm_rules segments
    assert (table["lift"] >= 1).all() and (table["confidence"] >= 0.1).all()
    assert len(pd.read_csv(out / "rules.csv")) == len(table)
    picks = pd.read_csv(out / "next_best.csv")
    assert list(picks.columns) == ["customer_id", "next_best_1", "next_best_2", "next_best_3"]
    page = (out / "baskets.html").read_text("utf-8")
    assert not scan(page).problems() and "What customers buy together" in page
    assert "recall@3" in page and "segment popularity" in page
    code, _, err = run_cli([*args[:-1], "--level", "category", "--scheme", "nope"], capsys)
    assert code == 2 and "no such scheme" in err


def test_the_served_model_recommends_as_the_batch_job():
    """NextBestModel.recommend (what the service answers) gives each customer's history the
    products next_best gives it in the batch job; never one in the history; [] without one."""
    from training.baskets.model import NextBestModel

    tx = planted(seed=5)
    bk = build_baskets(tx, AS_OF)
    cfg = BasketConfig()
    model = NextBestModel.fit(bk, cfg)
    picks = next_best(bk, cfg, 3, model).set_index("customer_id")
    bought = tx.groupby("customer_id")["product"].agg(lambda p: list(dict.fromkeys(p)))
    got = model.recommend(list(bought), 3)
    for customer, history, served in zip(bought.index, bought, got, strict=True):
        assert served == [p for p in picks.loc[customer] if p is not None]
        assert len(served) == 3 and not set(served) & set(history)
    # the order of a history and repeats in it change nothing
    assert model.recommend([list(reversed(bought.iloc[0])) * 2], 3) == [got[0]]
    # p1 without p2: p2 first; no history: nothing; unknown products only: the most popular
    out = model.recommend([["p1"], [], None, ["no such product"]], 2)
    assert out[0][0] == "p2" and out[1] == [] and out[2] == []
    popular = list(model.items[np.argsort(-model.tie, kind="stable")[:2]])
    assert out[3] == popular
    assert model.recommend([["p1"]], 1) == [["p2"]]


def test_the_model_keeps_items_of_enough_baskets_only():
    """Items in fewer than min_item_baskets baskets are left out of the model: never offered,
    and a history of them points nowhere (the sparse matrix holds the others' pairs only)."""
    from training.baskets.model import NextBestModel

    lone = log([("z1", "u9", "2026-03-30", ["rare", "p1"])])
    bk = build_baskets(pd.concat([planted(seed=6, n=600), lone]), AS_OF)
    model = NextBestModel.fit(bk, BasketConfig(min_item_baskets=2))
    assert "rare" not in set(model.items) and "p1" in set(model.items)
    assert model.conf.shape == (model.n_items, model.n_items) and model.conf.nnz > 0
    assert model.conf.diagonal().sum() == 0
    picks = next_best(bk, BasketConfig(min_item_baskets=2), 3, model)
    assert "rare" not in set(picks[["next_best_1", "next_best_2", "next_best_3"]].stack())
    everything = NextBestModel.fit(bk, BasketConfig(min_item_baskets=1))
    assert "rare" in set(everything.items)
    with pytest.raises(ConfigError, match="min_item_baskets"):
        BasketConfig.from_dict({"min_item_baskets": 0})


def test_the_next_best_gate():
    from training.baskets.tracking import decide

    check = {"k": 3, "cutoff": "2026-01-01", "customers": 10, "methods": {}}
    better = {"co-occurrence": {"recall": 0.3}, "popularity": {"recall": 0.1}}
    worse = {"co-occurrence": {"recall": 0.1}, "popularity": {"recall": 0.3}}
    assert decide({**check, "methods": better}, "4").promote
    assert decide({**check, "methods": worse}, None).promote  # no champion yet
    kept = decide({**check, "methods": worse}, "4")
    assert not kept.promote and "champion v4 stays" in kept.reason
    assert decide(check, None).promote and not decide(check, "2").promote
