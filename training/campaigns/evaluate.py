"""Treatment against control per segment over the campaign window: conversion, orders and
revenue per customer, the funnel, uplift with 95% intervals and Holm-corrected p-values, cost,
ROI, incremental ROI and LTV/CAC; which segments did not pay and which could merge."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from itertools import combinations

import numpy as np
import pandas as pd

from core.errors import InputError
from training.campaigns import stats
from training.campaigns.config import Benefit, Costs
from training.campaigns.plan import GROUPS

REQUIRED = ("customer_id", "scheme", "segment", "group", "plan_date")
EVENTS = ("sent", "open", "click")
CORRECTION = "holm"  # Holm-Bonferroni across the segments, per measure
LEVEL = 0.95


@dataclass
class Evaluation:
    scheme: str
    plan_id: str
    start: date
    end: date
    segments: pd.DataFrame  # one row per segment
    funnel: pd.DataFrame | None  # segment x group: sent, open, click and their rates
    not_paid: list[str]
    mergeable: list[tuple[str, str]]
    benefit: Benefit | None
    totals: dict
    notes: list[str] = field(default_factory=list)


def check_plan(plan: pd.DataFrame, source: str = "the plan") -> pd.DataFrame:
    """The plan's rows, or an InputError for missing columns, customers in neither group,
    customers assigned twice, several schemes or plan dates."""
    missing = [c for c in REQUIRED if c not in plan]
    if missing:
        raise InputError(
            f"{source}: missing column(s) {', '.join(missing)}; a plan has "
            f"{', '.join(REQUIRED)} (written by `custseg campaign plan`)"
        )
    if plan.empty:
        raise InputError(f"{source}: no customers")
    plan = plan.copy()
    plan["customer_id"] = plan["customer_id"].astype(str)
    plan["segment"] = plan["segment"].astype(str)
    group = plan["group"].astype(str).str.strip().str.lower()
    bad = ~group.isin(GROUPS)
    if bad.any():
        ids = ", ".join(plan.loc[bad, "customer_id"].head(5))
        raise InputError(
            f"{source}: {int(bad.sum())} customer(s) in neither group (group must be treatment "
            f"or control), e.g. {ids}"
        )
    plan["group"] = group
    dup = plan["customer_id"].duplicated(keep=False)
    if dup.any():
        ids = ", ".join(plan.loc[dup, "customer_id"].drop_duplicates().head(5))
        raise InputError(
            f"{source}: {int(plan.loc[dup, 'customer_id'].nunique())} customer(s) assigned more "
            f"than once (duplicate assignments), e.g. {ids}; a customer is in one group only"
        )
    for col in ("scheme", "plan_date"):
        if plan[col].nunique() != 1:
            raise InputError(f"{source}: several {col} values; evaluate one plan at a time")
    try:
        plan["plan_date"] = pd.to_datetime(plan["plan_date"], format="%Y-%m-%d")
    except ValueError:
        raise InputError(f"{source}: plan_date is not a date as YYYY-MM-DD") from None
    return plan


def window(
    plan: pd.DataFrame, orders: pd.DataFrame, start: date | None, end: date | None
) -> tuple[date, date]:
    """The campaign window: from the plan date (or `start`, not before it) to `end` (default:
    the last order of the log)."""
    planned = plan["plan_date"].iloc[0].date()
    start = start or planned
    if start < planned:
        raise InputError(
            f"--start {start}: the window begins before the plan date {planned}; orders before "
            "the groups were drawn say nothing about the campaign"
        )
    if end is None:
        if orders.empty:
            raise InputError("the order log is empty")
        end = orders["order_date"].max().date()
    if end < start:
        raise InputError(
            f"the window ends ({end}) before it starts ({start}); is the order log the one from "
            "after the campaign?"
        )
    return start, end


def outcomes(plan: pd.DataFrame, orders: pd.DataFrame, start: date, end: date) -> pd.DataFrame:
    """The plan with converted, orders and revenue per customer over [start, end]."""
    d = orders["order_date"].dt.normalize()
    inside = orders[(d >= pd.Timestamp(start)) & (d <= pd.Timestamp(end))]
    key = inside["order_id"] if "order_id" in inside else inside["order_date"]
    per = inside.assign(_o=key.astype(str)).groupby(inside["customer_id"].astype(str))
    got = pd.DataFrame({"orders": per["_o"].nunique(), "revenue": per["amount"].sum()})
    out = plan.join(got, on="customer_id")
    out[["orders", "revenue"]] = out[["orders", "revenue"]].fillna(0.0)
    out["converted"] = out["orders"] > 0
    return out


def funnel(plan: pd.DataFrame, events: pd.DataFrame, converted: pd.Series) -> pd.DataFrame:
    """Per segment and group: customers sent, opening, clicking (any time) and converting, and
    the rates over those sent."""
    missing = [c for c in ("customer_id", "event") if c not in events]
    if missing:
        raise InputError(f"the events file: missing column(s) {', '.join(missing)}")
    ev = events.assign(
        customer_id=events["customer_id"].astype(str),
        event=events["event"].astype(str).str.strip().str.lower(),
    )
    unknown = sorted(set(ev["event"]) - set(EVENTS))
    if unknown:
        raise InputError(
            f"the events file: unknown event(s) {', '.join(unknown[:5])}; "
            f"known: {', '.join(EVENTS)}"
        )
    flags = pd.crosstab(ev["customer_id"], ev["event"]).reindex(columns=list(EVENTS), fill_value=0)
    p = plan[["customer_id", "segment", "group"]].reset_index(drop=True)
    seen = (flags > 0).reindex(p["customer_id"], fill_value=False).reset_index(drop=True)
    p = pd.concat([p, seen], axis=1)
    p["converted_sent"] = p["sent"] & converted.to_numpy()
    f = p.groupby(["segment", "group"])[[*EVENTS, "converted_sent"]].sum()
    sent = f["sent"].where(f["sent"] > 0)
    f["open_rate"], f["click_rate"] = f["open"] / sent, f["click"] / sent
    f["conversion_rate"] = f["converted_sent"] / sent
    return f.reset_index()


def measure(
    result: pd.DataFrame,
    costs: Costs,
    contacts: pd.Series | None = None,
) -> pd.DataFrame:
    """The per-segment table (see the module docstring)."""
    g = result.groupby(["segment", "group"])
    agg = pd.DataFrame(
        {
            "n": g.size(),
            "conversions": g["converted"].sum(),
            "orders_mean": g["orders"].mean(),
            "orders_var": g["orders"].var(),
            "revenue_mean": g["revenue"].mean(),
            "revenue_var": g["revenue"].var(),
            "revenue_sum": g["revenue"].sum(),
        }
    ).unstack("group")
    segs = sorted(result["segment"].unique())
    agg = agg.reindex(segs)

    def col(name: str, group: str) -> pd.Series:
        if (name, group) in agg:
            return agg[(name, group)].astype(float)
        return pd.Series(np.nan, index=agg.index)

    nt, nc = col("n", "treatment").fillna(0), col("n", "control").fillna(0)
    t = pd.DataFrame(index=pd.Index(segs, name="segment"))
    names = result.groupby("segment")["segment_name"].first() if "segment_name" in result else None
    t["name"] = names.reindex(segs).fillna("") if names is not None else ""
    strategies = result.groupby("segment")["strategy"].first() if "strategy" in result else None
    t["strategy"] = strategies.reindex(segs).fillna("") if strategies is not None else ""
    t["treatment"], t["control"] = nt.astype(int), nc.astype(int)
    xt, xc = col("conversions", "treatment"), col("conversions", "control")
    t["conversion_treatment"], t["conversion_control"] = xt / nt, xc / nc
    diff, lo, hi, p = stats.two_proportions(xt, nt, xc, nc, LEVEL)
    t["conversion_uplift"], t["conversion_low"], t["conversion_high"] = diff, lo, hi
    t["conversion_p"] = p
    t["orders_treatment"] = col("orders_mean", "treatment")
    t["orders_control"] = col("orders_mean", "control")
    t["revenue_treatment"] = col("revenue_mean", "treatment")
    t["revenue_control"] = col("revenue_mean", "control")
    diff, lo, hi, p = stats.welch(
        t["revenue_treatment"],
        col("revenue_var", "treatment"),
        nt,
        t["revenue_control"],
        col("revenue_var", "control"),
        nc,
        LEVEL,
    )
    t["revenue_uplift"], t["revenue_low"], t["revenue_high"], t["revenue_p"] = diff, lo, hi, p
    t["conversion_p_adj"] = stats.holm(t["conversion_p"])
    t["revenue_p_adj"] = stats.holm(t["revenue_p"])
    alpha = 1 - LEVEL
    t["conversion_significant"] = t["conversion_p_adj"] < alpha
    t["revenue_significant"] = t["revenue_p_adj"] < alpha
    t["incremental_revenue"] = t["revenue_uplift"] * nt
    t["incremental_revenue_low"] = t["revenue_low"] * nt
    t["incremental_revenue_high"] = t["revenue_high"] * nt
    t["incremental_conversions"] = t["conversion_uplift"] * nt
    t["treatment_revenue"] = col("revenue_sum", "treatment").fillna(0.0)
    contacted = nt if contacts is None else contacts.reindex(segs).fillna(0).astype(float)
    t["contacts"] = contacted.astype(int)
    unit = pd.Series(segs, index=segs).map(costs.per_contact_segments).fillna(costs.per_contact)
    fixed_share = nt / nt.sum() if nt.sum() > 0 else nt * 0
    t["cost"] = unit.to_numpy() * contacted + costs.fixed_total * fixed_share
    cost = t["cost"].where(t["cost"] > 0)
    t["roi"] = (t["treatment_revenue"] * costs.margin - cost) / cost
    t["incremental_roi"] = (t["incremental_revenue"] * costs.margin - cost) / cost
    t["incremental_profit"] = t["incremental_revenue"] * costs.margin - t["cost"]
    if "clv" in result:
        clv = pd.to_numeric(result["clv"], errors="coerce")
        treated = result["group"] == "treatment"
        t["ltv"] = clv[treated].groupby(result.loc[treated, "segment"]).mean().reindex(segs)
        gained = t["incremental_conversions"].where(t["incremental_conversions"] > 0)
        t["cac"] = cost / gained
        t["ltv_cac"] = t["ltv"] / t["cac"]
    return t


def unpaid(t: pd.DataFrame, has_costs: bool) -> list[str]:
    """Segments where the strategy did not pay: incremental profit below 0 (with costs), else
    no incremental revenue."""
    measured = t["incremental_revenue"].notna()
    lost = t["incremental_profit"] < 0 if has_costs else t["incremental_revenue"] <= 0
    return list(t.index[measured & lost])


def mergeable(t: pd.DataFrame) -> list[tuple[str, str]]:
    """Pairs of segments whose conversion-uplift and revenue-uplift intervals both overlap:
    the campaign could not tell their responses apart."""
    ok = t.dropna(subset=["conversion_low", "conversion_high", "revenue_low", "revenue_high"])
    keys = list(ok.index)

    def overlap(lo: str, hi: str) -> np.ndarray:
        a, b = ok[lo].to_numpy(), ok[hi].to_numpy()
        return (a[:, None] <= b[None, :]) & (a[None, :] <= b[:, None])

    both = overlap("conversion_low", "conversion_high") & overlap("revenue_low", "revenue_high")
    return [(keys[i], keys[j]) for i, j in combinations(range(len(keys)), 2) if both[i, j]]


def evaluate(
    plan: pd.DataFrame,
    orders: pd.DataFrame,
    *,
    start: date | None = None,
    end: date | None = None,
    events: pd.DataFrame | None = None,
    costs: Costs | None = None,
    benefit: Benefit | None = None,
    plan_id: str = "",
    source: str = "the plan",
) -> Evaluation:
    plan = check_plan(plan, source)
    start, end = window(plan, orders, start, end)
    result = outcomes(plan, orders, start, end)
    costs = costs or Costs()
    notes = []
    outside = set(orders["customer_id"].astype(str)) - set(plan["customer_id"])
    if outside:
        notes.append(f"{len(outside)} customer(s) of the order log are not in the plan: ignored")
    fun, contacts = None, None
    if events is not None:
        fun = funnel(plan, events, result["converted"])
        treated = fun[fun["group"] == "treatment"].set_index("segment")["sent"]
        contacts = treated if treated.sum() > 0 else None
    t = measure(result, costs, contacts)
    one_sided = t.index[(t["treatment"] == 0) | (t["control"] == 0)]
    for key in one_sided:
        notes.append(f"segment {key}: no treatment or no control customers; not measured")
    has_costs = costs.per_contact > 0 or costs.fixed_total > 0 or bool(costs.per_contact_segments)
    totals = {
        "customers": int(len(plan)),
        "treatment": int(t["treatment"].sum()),
        "control": int(t["control"].sum()),
        "incremental_revenue": float(np.nansum(t["incremental_revenue"])),
        "incremental_conversions": float(np.nansum(t["incremental_conversions"])),
        "cost": float(t["cost"].sum()),
        "has_costs": has_costs,
        "margin": costs.margin,
    }
    if has_costs and totals["cost"] > 0:
        profit = totals["incremental_revenue"] * costs.margin - totals["cost"]
        totals["incremental_roi"] = profit / totals["cost"]
    return Evaluation(
        scheme=str(plan["scheme"].iloc[0]),
        plan_id=plan_id,
        start=start,
        end=end,
        segments=t,
        funnel=fun,
        not_paid=unpaid(t, has_costs),
        mergeable=mergeable(t),
        benefit=benefit,
        totals=totals,
        notes=notes,
    )
