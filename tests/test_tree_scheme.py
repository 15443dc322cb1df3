"""Decision-tree segments: a planted rule is found, leaves read as simplified rules, the exported
rules refit to the same segmentation, an outcome tree needs the log, held-out eta2 is a share."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from training.segmentation import fit_schemes, load
from training.segmentation.rules import Condition
from training.segmentation.spec import SchemeSpec

AS_OF = date(2026, 6, 30)
N = 20_000


def customers(seed: int) -> pd.DataFrame:
    """Online share and recency plant the rule; the other columns are noise."""
    rng = np.random.default_rng(seed)
    online = rng.uniform(0, 1, N)
    online[rng.random(N) < 0.05] = np.nan  # missing values: placed where the median goes
    return pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(N)],
            "recency_days": rng.integers(0, 121, N).astype(float),
            "online_share": online,
            "frequency_orders": rng.integers(1, 20, N).astype(float),
            "monetary": rng.gamma(2.0, 300.0, N),
            "tenure_days": rng.integers(30, 900, N).astype(float),
            "order_days_180d": rng.integers(0, 12, N).astype(float),
        }
    )


def planted(table: pd.DataFrame, seed: int) -> np.ndarray:
    """Online share > 0.7 and recency < 30 days: repurchase at 3x the rate (45% vs 15%)."""
    rng = np.random.default_rng(seed + 1)
    online = table["online_share"].to_numpy()
    hot = (online > 0.7) & (table["recency_days"].to_numpy() < 30)
    return (rng.random(len(table)) < np.where(hot, 0.45, 0.15)).astype(float)


@dataclass
class PlantedHistory:
    """What a tree reads from the log (`outcomes.History`), generated: every cutoff draws new
    customers under the same planted law."""

    as_of: date = AS_OF
    first_order: date = AS_OF - timedelta(days=720)
    tables: dict = field(default_factory=dict)

    def features_at(self, cutoff: date) -> pd.DataFrame:
        return self.tables.setdefault(cutoff, customers(cutoff.toordinal()))

    def labelled(self, cutoff: date, days: int, outcome: str):
        table = self.features_at(cutoff)
        y = planted(table, cutoff.toordinal())
        spend = y * table["monetary"].to_numpy() * 0.2
        return table, {"repurchase": y, "churn": 1 - y, "spend": spend}[outcome]


def scheme_file(**options):
    base = load()
    tree = SchemeSpec(
        "t",
        "tree",
        "planted",
        True,
        {"target": "repurchase", "horizon_days": 90, "max_leaves": 3,
         "min_leaf_share": 0.02} | options,
    )  # fmt: skip
    rules = next(s for s in base.schemes if s.name == "value_activity")
    return replace(base, schemes=[tree, rules])


@pytest.fixture(scope="module")
def fitted():
    history = PlantedHistory()
    table = customers(0)
    done, skipped = fit_schemes(table, scheme_file(), history=history)
    assert not skipped
    return table, {s.name: s for s in done}, history


def test_the_tree_finds_the_planted_rule(fitted):
    _, schemes, _ = fitted
    tree = schemes["t"]
    top = tree.assigner.rules[0]  # leaf_1: the highest repurchase rate
    bounds = {(c.column, c.bound): c.value for c in top.conditions}
    assert set(bounds) == {("online_share", "above"), ("recency_days", "max")}
    assert bounds[("online_share", "above")] == pytest.approx(0.7, abs=0.03)
    assert bounds[("recency_days", "max")] == pytest.approx(29.5, abs=3)
    # the splits of the learned tree use the planted features first
    model = tree.extras["model"].model
    used = {tree.extras["model"].columns[f] for f in model.tree_.feature[:3] if f >= 0}
    assert model.tree_.feature[0] >= 0
    assert tree.extras["model"].columns[model.tree_.feature[0]] in {"online_share", "recency_days"}
    assert used <= {"online_share", "recency_days"}
    rate = tree.extras["leaves"].set_index("leaf")["mean"]
    assert rate["leaf_1"] == pytest.approx(0.45, abs=0.05)
    assert rate.drop("leaf_1").max() < 0.2
    # named from the profile with the outcome; the best leaf gets a deepen / grow strategy
    assert "repurchase 4" in tree.segment("leaf_1").name
    assert tree.segment("leaf_1").strategy in {"core_loyal", "grow"}
    assert (
        tree.profile.set_index("segment").loc["leaf_1", "definition"].startswith("online_share >")
        or "recency_days ≤" in tree.profile.set_index("segment").loc["leaf_1", "definition"]
    )


def test_held_out_eta2_is_a_share_for_every_scheme(fitted):
    _, schemes, _ = fitted
    tree = schemes["t"]
    assert 0 < tree.metrics["tree_heldout_eta2"] <= 1
    assert tree.params["learned_how"].startswith("learned on cutoff 2026-01-01")
    for s in schemes.values():
        for key in ("heldout_eta2_repurchase", "heldout_eta2_spend"):
            assert 0 <= s.metrics[key] <= 1, (s.name, key)
    # the planted tree separates repurchase better than a value x activity matrix
    assert (
        tree.metrics["heldout_eta2_repurchase"]
        > schemes["value_activity"].metrics["heldout_eta2_repurchase"]
    )


def test_simplified_rules_merge_redundant_bounds():
    from training.segmentation.definitions import _conditions
    from training.segmentation.tree import simplify

    path = [
        Condition("recency_days", "max", 90.0),
        Condition("online_share", "above", 0.5),
        Condition("recency_days", "max", 41.0),
        Condition("recency_days", "above", 3.0),
        Condition("online_share", "above", 0.7),
        Condition("recency_days", "above", 10.0),
    ]
    merged = simplify(path, {"online_share": 0.6})
    assert merged == (
        Condition("recency_days", "above", 10.0),
        Condition("recency_days", "max", 41.0),
        Condition("online_share", "above", 0.7),  # the median 0.6 is not above 0.7
    )
    assert _conditions(merged) == "10 < recency_days ≤ 41 and online_share > 0.7"
    assert _conditions(simplify(path, {"online_share": 0.8})).endswith(
        "(online_share > 0.7 or online_share missing)"
    )


def test_exported_rules_refit_to_the_identical_segmentation(fitted, tmp_path):
    from training.segmentation.export import rules_toml

    table, schemes, _ = fitted
    tree = schemes["t"]
    path = tmp_path / "learned.toml"
    path.write_text(rules_toml("learned", tree.assigner, load().strategies, "from the tree"))
    text = path.read_text()
    assert "missing = true" in text  # online_share's missing values follow its median
    exported = load(path)
    assert [s.kind for s in exported.schemes] == ["rules"]
    refit, skipped = fit_schemes(table, exported)
    assert not skipped
    assert (refit[0].labels == tree.labels).all()
    assert [s.key for s in refit[0].segments] == [s.key for s in tree.segments]
    assert {s.key: s.strategy for s in refit[0].segments} == {
        s.key: s.strategy for s in tree.segments
    }
    # and on new rows, missing values included, the rules assign as the tree does
    fresh = customers(7)
    assert (refit[0].assign(fresh) == tree.assign(fresh)).all()


def test_an_outcome_tree_without_the_log_is_skipped_with_the_reason():
    table = customers(0)
    done, skipped = fit_schemes(table, scheme_file())
    assert [s.name for s in done] == ["value_activity"]
    assert "feature snapshot" in skipped["t"] and "custseg run" in skipped["t"]
    assert "heldout_eta2_repurchase" not in done[0].metrics  # no log, no held-out window


def test_a_short_log_learns_on_the_last_window_and_says_so():
    history = PlantedHistory(first_order=AS_OF - timedelta(days=200))
    done, skipped = fit_schemes(customers(0), scheme_file(), history=history)
    tree = next(s for s in done if s.name == "t")
    assert "30%" in tree.params["learned_how"] and tree.extras["notes"]
    assert 0 <= tree.metrics["heldout_eta2_repurchase"] <= 1
    shorter = PlantedHistory(first_order=AS_OF - timedelta(days=120))
    _, skipped = fit_schemes(customers(0), scheme_file(), history=shorter)
    assert "needs at least 150 days" in skipped["t"]


def test_a_feature_target_needs_no_log():
    done, skipped = fit_schemes(customers(0), scheme_file(target="monetary", max_leaves=3))
    tree = next(s for s in done if s.name == "t")
    assert not skipped and len(tree.segments) == 3
    assert "monetary" not in tree.assigner.columns
    assert 0 <= tree.metrics["tree_heldout_eta2"] <= 1


def test_an_outcome_nobody_has_skips_the_tree():
    class Nobody(PlantedHistory):
        def labelled(self, cutoff, days, outcome):
            table, _ = super().labelled(cutoff, days, outcome)
            return table, np.zeros(len(table))

    done, skipped = fit_schemes(customers(0), scheme_file(), history=Nobody())
    assert [s.name for s in done] == ["value_activity"]
    assert "does not vary" in skipped["t"]
