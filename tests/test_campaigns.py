"""Campaigns: the holdout plan (seeded, stratified, balanced, powered) and the evaluation
(uplift within its intervals of a planted truth, Holm correction, clear errors on bad input),
and both commands end to end on a real `custseg run` output."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from core.errors import ConfigError, InputError
from tests.conftest import run_cli
from training.campaigns import stats
from training.campaigns.config import Benefit
from training.campaigns.evaluate import evaluate
from training.campaigns.plan import make_plan

# segment -> (customers, baseline conversion, planted uplift in points, mean order value)
TRUTH = {
    "a": (6000, 0.10, 0.05, 80.0),
    "b": (5000, 0.20, 0.08, 120.0),
    "c": (4000, 0.05, 0.03, 60.0),
    "none": (5000, 0.15, 0.00, 100.0),
}
PLAN_DATE = pd.Timestamp("2026-07-01")


def population(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    seg = np.repeat(list(TRUTH), [t[0] for t in TRUTH.values()])
    n = len(seg)
    return pd.DataFrame(
        {
            "customer_id": [f"C{i:06d}" for i in range(n)],
            "segment_demo": seg,
            "recency_days": rng.exponential(60, n),
            "frequency": rng.poisson(4, n) + 1,
            "monetary": rng.lognormal(5, 1, n),
        }
    )


def campaign(plan: pd.DataFrame, seed: int) -> pd.DataFrame:
    """One order at most per customer in July: the segment's baseline, plus the uplift when
    treated; order values exponential around the segment's mean."""
    rng = np.random.default_rng(seed)
    base = plan["segment"].map({k: t[1] for k, t in TRUTH.items()}).to_numpy()
    lift = plan["segment"].map({k: t[2] for k, t in TRUTH.items()}).to_numpy()
    value = plan["segment"].map({k: t[3] for k, t in TRUTH.items()}).to_numpy()
    p = base + lift * (plan["group"] == "treatment").to_numpy()
    bought = rng.random(len(plan)) < p
    return pd.DataFrame(
        {
            "customer_id": plan["customer_id"].to_numpy()[bought],
            "order_date": PLAN_DATE + pd.to_timedelta(rng.integers(0, 30, bought.sum()), "D"),
            "amount": rng.exponential(value[bought]),
        }
    )


def planned(seed: int = 42, share: float = 0.2):
    return make_plan(
        population(),
        "demo",
        control_share=share,
        seed=seed,
        plan_date=PLAN_DATE.date(),
        baseline_rate=0.1,
        mde_wanted=0.02,
    )


def test_plan_is_stratified_reproducible_and_balanced():
    p = planned()
    control = p.table.groupby("segment")["group"].apply(lambda g: (g == "control").mean())
    assert (control - 0.2).abs().max() < 0.001  # exactly the share in every segment
    again = planned()
    pd.testing.assert_frame_equal(p.table, again.table)
    assert p.summary["plan_id"] == again.summary["plan_id"]
    # the row order of the input does not change the draw
    shuffled = make_plan(
        population().sample(frac=1, random_state=3),
        "demo",
        control_share=0.2,
        seed=42,
        plan_date=PLAN_DATE.date(),
    )
    assert shuffled.summary["plan_id"] == p.summary["plan_id"]
    assert planned(seed=7).summary["plan_id"] != p.summary["plan_id"]
    smd = p.segments[["smd_recency_days", "smd_frequency", "smd_monetary"]].abs()
    assert (smd < 0.1).all().all(), smd
    assert not [w for w in p.warnings if "differ before" in w]


def test_power_calculation():
    # textbook: p0 = 0.10 -> 0.12 needs ~3,840 per group at alpha 0.05, power 0.8
    n = stats.control_needed(0.10, 0.02, 1.0)
    assert 3700 < n < 4000
    # the MDE of those groups is about the 2 points they were sized for
    assert stats.mde(0.10, n, n) == pytest.approx(0.02, rel=0.08)
    p = planned()
    seg = p.segments
    assert (seg["mde"] > 0).all() and (seg["control_needed"] > 0).all()
    assert seg.loc["a", "mde"] < seg.loc["c", "mde"]  # the larger segment detects less


def test_mde_is_undefined_at_a_certain_baseline():
    # everyone (or no one) converts: no variance, so no MDE rather than a misleading 0
    got = stats.mde([0.0, 1.0, 0.5, 0.5], [100, 100, 0, 100], [10, 10, 10, 10])
    assert np.isnan(got[:3]).all() and got[3] > 0


def test_holm():
    adj = stats.holm([0.01, 0.04, 0.03, np.nan])
    assert adj[0] == pytest.approx(0.03) and adj[2] == pytest.approx(0.06)
    assert adj[1] == pytest.approx(0.06) and np.isnan(adj[3])


def test_estimates_cover_the_planted_uplift():
    plan = planned().table
    covered, zero_significant, found = [], 0, 0
    for seed in range(20):
        e = evaluate(plan, campaign(plan, seed)).segments
        for key, (_, _, lift, value) in TRUTH.items():
            r = e.loc[key]
            covered.append(r["conversion_low"] <= lift <= r["conversion_high"])
            covered.append(r["revenue_low"] <= lift * value <= r["revenue_high"])
        zero_significant += bool(e.loc["none", "conversion_significant"])
        found += bool(e.loc["b", "conversion_significant"])
    assert np.mean(covered) >= 0.85, np.mean(covered)  # 95% intervals
    assert zero_significant <= 1  # Holm at 5%: at most about one seed in 20
    assert found >= 15  # an 8-point uplift on 1,000 controls is found


def test_effects_costs_and_mergeable_segments(tmp_path):
    from training.campaigns.config import load_costs

    plan = planned().table.assign(clv=100.0)
    costs = tmp_path / "costs.toml"
    costs.write_text("per_contact = 1.0\nmargin = 0.5\n[fixed]\nlabour = 1000\n")
    e = evaluate(plan, campaign(plan, 1), costs=load_costs(costs))
    t = e.segments
    assert t["cost"].sum() == pytest.approx(t["treatment"].sum() * 1.0 + 1000)
    assert "none" in e.not_paid  # no uplift, a cost: it did not pay
    assert {"ltv", "cac", "ltv_cac"} <= set(t.columns)
    from training.campaigns.evaluate import mergeable

    ci = pd.DataFrame(
        {"conversion_low": [0.0, 0.01, 0.2], "conversion_high": [0.05, 0.06, 0.3],
         "revenue_low": [0.0, 1.0, 5.0], "revenue_high": [2.0, 3.0, 9.0]},
        index=["x", "y", "z"],
    )  # fmt: skip
    assert mergeable(ci) == [("x", "y")]  # z responded differently


def test_funnel_from_events():
    plan = planned().table
    orders = campaign(plan, 2)
    treated = plan.loc[plan["group"] == "treatment", "customer_id"]
    events = pd.concat(
        [
            pd.DataFrame({"customer_id": treated, "event": "sent"}),
            pd.DataFrame({"customer_id": treated.iloc[::2], "event": "open"}),
            pd.DataFrame({"customer_id": treated.iloc[::4], "event": "click"}),
        ]
    )
    f = evaluate(plan, orders, events=events).funnel
    t = f[f["group"] == "treatment"].set_index("segment")
    assert t["open_rate"].between(0.45, 0.55).all()
    assert t["click_rate"].between(0.2, 0.3).all()


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda p: p.assign(group=np.where(p.index == 3, "maybe", p["group"])), "neither group"),
        (lambda p: pd.concat([p, p.head(2)]), "more than once"),
        (lambda p: p.drop(columns="group"), "missing column"),
        (lambda p: p.assign(scheme=np.where(p.index == 0, "x", "demo")), "several scheme"),
    ],
)
def test_bad_plans_get_clear_errors(change, message):
    plan = planned().table
    with pytest.raises(InputError, match=message):
        evaluate(change(plan), campaign(plan, 0))


def test_window_before_the_plan_date():
    plan = planned().table
    with pytest.raises(InputError, match="before the plan date"):
        evaluate(plan, campaign(plan, 0), start=pd.Timestamp("2026-06-01").date())


def test_benefit_questionnaire():
    b = Benefit.from_dict(
        {
            "market_maturity": 4,
            "product_standardisation": 2,
            "decision_cycle": 3,
            "segmentation_roi": 4,
            "weights": {"segmentation_roi": 2},
        }
    )
    assert b.score == pytest.approx((4 + 2 + 3 + 8) / 5)
    assert "pause segmenting" in b.advice
    assert Benefit.from_dict({}) is None
    with pytest.raises(ConfigError, match="expected a number"):
        Benefit.from_dict(
            {d: 6 for d in ("market_maturity", "product_standardisation", "decision_cycle")}
            | {"segmentation_roi": 3}
        )


@pytest.fixture(scope="module")
def scores(tmp_path_factory):
    """scores.csv of a real `custseg run` on a small sample (trials 1, no tracking)."""
    from custseg.sample import SampleConfig, generate, write

    root = tmp_path_factory.mktemp("campaign-run")
    write(generate(SampleConfig(customers=1200, seed=11)), root / "sample")
    return root


@pytest.mark.slow
def test_cli_plan_and_evaluate_end_to_end(scores, tmp_path, capsys):
    import sys

    sample, out = scores / "sample", scores / "out"
    tx = sample / "transactions.csv"
    if not (out / "scores.csv").exists():
        code, _, err = run_cli(
            ["run", "-t", str(tx), "-c", str(sample / "customers.csv"), "-o", str(out),
             "--trials", "1"],
            capsys,
        )  # fmt: skip
        assert code == 0, err
    plan = tmp_path / "plan.csv"
    args = ["campaign", "plan", "--segments", str(out / "scores.csv"), "--scheme",
            "rfm_rules", "-t", str(tx), "--control-share", "0.2", "--mde", "0.05",
            "--out", str(plan)]  # fmt: skip
    code, stdout, err = run_cli(args, capsys)
    assert code == 0, err
    assert "MDE" in stdout and plan.exists()
    first = plan.read_bytes()
    assert run_cli([*args, "--no-track"], capsys)[0] == 0
    assert plan.read_bytes() == first  # same inputs, same file
    summary = json.loads((tmp_path / "plan.summary.json").read_text("utf-8"))
    assert summary["segments"] and summary["plan_date"]

    sys.path.insert(0, str(__import__("pathlib").Path(__file__).parents[1] / "benchmarks"))
    from simulate_campaign import simulate

    table = pd.read_csv(plan, encoding="utf-8-sig", dtype={"customer_id": str})
    history = pd.read_csv(tx, dtype={"customer_id": str})
    history["order_date"] = pd.to_datetime(history["order_date"], errors="coerce")
    history["amount"] = pd.to_numeric(history["amount"], errors="coerce")
    orders, events = simulate(table, history, {"general": 0.1})
    orders.to_csv(tmp_path / "orders.csv", index=False)
    events.to_csv(tmp_path / "events.csv", index=False)
    (tmp_path / "costs.toml").write_text("per_contact = 0.5\n[fixed]\nlabour = 100\n")
    results = tmp_path / "results"
    code, stdout, err = run_cli(
        ["campaign", "evaluate", "--plan", str(plan), "-t", str(tmp_path / "orders.csv"),
         "--events", str(tmp_path / "events.csv"), "--costs", str(tmp_path / "costs.toml"),
         "--out", str(results)],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    assert "conversion" in stdout and "general" in stdout
    html = (results / "campaign_report.html").read_text("utf-8")
    assert "Did the strategy work?" in html and "<script" not in html
    from core import catalog

    assert catalog.campaign_effects().exists()
    code, stdout, _ = run_cli(["segment", "compare"], capsys)
    assert code == 0 and "business response" in stdout

    # bad input: a window before the plan date, exit code 2 and no traceback
    code, _, err = run_cli(
        ["campaign", "evaluate", "--plan", str(plan), "-t", str(tmp_path / "orders.csv"),
         "--start", "2020-01-01", "--out", str(results), "--no-track"],
        capsys,
    )  # fmt: skip
    assert code == 2 and "before the plan date" in err and "Traceback" not in err
