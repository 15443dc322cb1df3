"""What `custseg campaign` prints: the plan's power table (stdout, before anything is written)
and the evaluation's per-segment table with the segments that did not pay."""

from __future__ import annotations

import math

from rich.table import Table
from rich.text import Text

from core.formats import number, pct
from core.progress import console, warn
from custseg.cli.fits import out


def _t(title: str) -> Table:
    return Table(title=title, title_justify="left", box=None, padding=(0, 1, 0, 0))


def plan(p) -> None:
    s, seg = p.summary, p.segments
    c = out()
    t = _t(
        f"plan {s['plan_id']}: scheme {s['scheme']}, from {s['plan_date']}, "
        f"{s['control_share']:.0%} held out (seed {s['seed']})"
    )
    for h in ("segment", "customers", "treat", "control", "base conv", "MDE", "MDE rel"):
        t.add_column(h, justify="left" if h == "segment" else "right", overflow="fold")
    if "control_needed" in seg:
        t.add_column("ctrl needed", justify="right")
    smd = [c for c in seg.columns if c.startswith("smd_")]
    if smd:
        t.add_column("max |SMD|", justify="right")
    for key, r in seg.iterrows():
        row = [
            str(key),
            f"{r['customers']:,}",
            f"{r['treatment']:,}",
            f"{r['control']:,}",
            pct(r["baseline"]),
            pct(r["mde"], 2),
            pct(r["mde_relative"], 0),
        ]
        if "control_needed" in seg:
            row.append(number(r["control_needed"], "{:,.0f}"))
        if smd:
            row.append(number(max(abs(r[x]) for x in smd), "{:.3f}"))
        t.add_row(*row)
    c.print(t)
    c.print(
        Text(
            f"base conv: {s['baseline_source']}. MDE: smallest absolute conversion uplift a "
            f"two-proportion test detects (alpha {s['alpha']}, power {s['power']}); MDE rel: "
            "over the baseline (n/a at a 0% or 100% baseline: no variance to test). "
            "SMD: standardised mean difference treatment - control of "
            f"{', '.join(s['balance_features']) or 'no pre-period feature'} (balanced below 0.1)."
        )
    )
    for w in p.warnings:
        warn(w)


def _ci(v, lo, hi, f) -> str:
    return f"{f(v)} ({f(lo)}, {f(hi)})"


def _table(title: str, heads: list[str]) -> Table:
    t = _t(title)
    for h in heads:
        t.add_column(h, justify="left" if h == "segment" else "right", overflow="fold")
    return t


def evaluation(e) -> None:
    c = out()
    seg = e.segments
    pts = lambda v: pct(v, 2, signed=True)  # noqa: E731
    money = lambda v: number(v, "{:+,.2f}")  # noqa: E731
    c.print(
        f"campaign on scheme {e.scheme}, {e.start} to {e.end} (plan {e.plan_id}); "
        "95% intervals, p-values Holm-corrected across segments (* significant at 5%)"
    )
    conv = _table(
        "conversion (any order)",
        ["segment", "treated", "control", "conv T", "conv C", "uplift", "95% CI", "p holm"],
    )
    rev = _table(
        "orders and revenue per customer",
        ["segment", "orders T", "orders C", "rev T", "rev C", "uplift", "95% CI", "p holm"],
    )
    heads = ["segment", "incr revenue", "95% CI"]
    if e.totals["has_costs"]:
        heads += ["cost", "ROI", "incr ROI"]
    ltv = "ltv_cac" in seg and e.totals["has_costs"]  # CAC needs a cost
    if ltv:
        heads.append("LTV/CAC")
    value = _table("value", heads)
    for key, r in seg.iterrows():
        name = str(key) + (" ✗" if key in e.not_paid else "")
        conv.add_row(
            name,
            f"{r['treatment']:,}",
            f"{r['control']:,}",
            pct(r["conversion_treatment"]),
            pct(r["conversion_control"]),
            pts(r["conversion_uplift"]),
            f"{pts(r['conversion_low'])}, {pts(r['conversion_high'])}",
            number(r["conversion_p_adj"], "{:.3g}") + ("*" if r["conversion_significant"] else ""),
        )
        rev.add_row(
            name,
            number(r["orders_treatment"], "{:.3f}"),
            number(r["orders_control"], "{:.3f}"),
            number(r["revenue_treatment"], "{:,.2f}"),
            number(r["revenue_control"], "{:,.2f}"),
            money(r["revenue_uplift"]),
            f"{money(r['revenue_low'])}, {money(r['revenue_high'])}",
            number(r["revenue_p_adj"], "{:.3g}") + ("*" if r["revenue_significant"] else ""),
        )
        row = [
            name,
            number(r["incremental_revenue"], "{:+,.0f}"),
            f"{number(r['incremental_revenue_low'], '{:+,.0f}')}, "
            f"{number(r['incremental_revenue_high'], '{:+,.0f}')}",
        ]
        if e.totals["has_costs"]:
            row += [number(r["cost"], "{:,.0f}"), pct(r["roi"], 0), pct(r["incremental_roi"], 0)]
        if ltv:
            row.append(number(r["ltv_cac"], "{:.2f}"))
        value.add_row(*row)
    for t in (conv, rev, value):
        c.print(t)
    tot = e.totals
    line = f"total incremental revenue {tot['incremental_revenue']:+,.0f}"
    if tot["has_costs"]:
        line += f", cost {tot['cost']:,.0f}"
        if "incremental_roi" in tot and math.isfinite(tot["incremental_roi"]):
            line += f", incremental ROI {tot['incremental_roi']:.0%}"
    c.print(Text(line + ". T: treatment, C: control; ✗: did not pay."))
    if e.not_paid:
        why = "incremental profit < 0" if tot["has_costs"] else "no incremental revenue"
        warn(f"the strategy did not pay in: {', '.join(e.not_paid)} ({why})")
    if e.mergeable:
        pairs = ", ".join(f"{a}+{b}" for a, b in e.mergeable)
        warn(
            "more segments than the measured differences support: these pairs responded "
            f"indistinguishably (overlapping uplift intervals) and could merge: {pairs}"
        )
    if e.benefit:
        console.print(f"segmentation benefit: {e.benefit.advice}")
    for n in e.notes:
        console.print(n)


def saved(s) -> None:
    for name, p in s.paths.items():
        console.print(f"{name}: {p}")
    if s.run_id:
        console.print(f"MLflow run {s.run_id}")
