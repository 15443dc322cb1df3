"""What the commands print: the cleaning summary, scheme tables, model verdicts, segment health.
Everything goes to stderr through the progress console, except tables a command exists to
print (`segment compare`), which go to stdout."""

from __future__ import annotations

from pathlib import Path

from core.progress import console, warn


def cleaning_summary(audit: dict, paths: dict[str, Path]) -> None:
    for name, t in audit["tables"].items():
        dropped = ", ".join(f"{r} {n:,}" for r, n in t["dropped_by_rule"].items()) or "none"
        console.print(
            f"{name}: {t['input_rows']:,} in, {t['kept_rows']:,} kept, "
            f"{t['dropped_rows']:,} dropped ({dropped})"
        )
    flagged = [r for r in audit["rules"] if r["action"] == "flag" and r["rows"]]
    if flagged:
        console.print("flagged (kept): " + ", ".join(f"{r['rule']} {r['rows']:,}" for r in flagged))
    m = audit["merges"]
    if m["customers_merged_away"]:
        console.print(
            f"duplicate customers: {m['customers_merged_away']:,} ids merged into "
            f"{m['groups']:,} customers"
        )
    for w in audit["warnings"]:
        warn(w)
    console.print(f"audit report: {paths['audit_html']}")


def schemes(fitted, skipped: dict[str, str], rows: int = 8) -> None:
    """One small table per scheme: its largest segments' names, sizes and revenue shares."""
    from rich.table import Table

    for name, why in skipped.items():
        console.print(f"[yellow]skipped scheme {name}:[/] {why}")
    for scheme in fitted:
        p = scheme.profile[(scheme.profile["segment"] != "all") & (scheme.profile["customers"] > 0)]
        more = len(p) - rows
        if more > 0:
            p = p.nlargest(rows, "customers")
        t = Table(title=f"{scheme.name} ({scheme.kind})", title_justify="left", box=None)
        t.add_column("segment", overflow="ellipsis", max_width=40, no_wrap=True)
        t.add_column("名称", overflow="ellipsis", max_width=16, no_wrap=True)
        for col in ("customers", "share", "revenue"):
            t.add_column(col, justify="right")
        for r in p.itertuples():
            t.add_row(
                r.name,
                r.name_zh,
                f"{r.customers:,}",
                f"{r.customer_share:.1%}",
                f"{r.revenue_share:.1%}",
            )
        if more > 0:
            t.caption = f"... and {more} smaller segments (profiles.csv has them all)"
        console.print(t)
        if scheme.kind == "tree":
            tree_leaves(scheme)
    ranked = sorted(
        (s for s in fitted if "heldout_eta2_repurchase" in s.metrics),
        key=lambda s: -s.metrics["heldout_eta2_repurchase"],
    )
    if ranked:
        console.print(
            "held-out separation (eta2 of repurchase / net spend in the 90 days after as_of - "
            "90 d): "
            + ", ".join(
                f"{s.name} {s.metrics['heldout_eta2_repurchase']:.3f} / "
                f"{s.metrics.get('heldout_eta2_spend', float('nan')):.3f}"
                for s in ranked
            ),
            markup=False,
        )


def tree_leaves(scheme) -> None:
    """A tree scheme's leaves: rule and the outcome's mean [95% interval] on the freshest
    window the served tree learned on; how the tree before it did on the held-out window."""
    from rich.text import Text

    eta2 = scheme.metrics.get("tree_heldout_eta2", float("nan"))
    console.print(
        Text(
            f"  {scheme.params.get('learned_how', '')}: held-out eta2 of "
            f"{scheme.params.get('target')} {eta2:.3f}; regrown on the freshest window, its "
            "leaves (mean outcome there [95% CI]):"
        )
    )
    for r in scheme.extras["leaves"].itertuples():
        console.print(
            Text(f"  {r.leaf}: {r.rule} -> {r.mean:.3g} [{r.ci_low:.3g}, {r.ci_high:.3g}]")
        )


def segmenters(registered: dict) -> None:
    """Which registered segmenters became champions."""
    champions = [n for n, v in registered.items() if v.get("champion")]
    if champions:
        console.print(f"registered segmenters; alias champion -> {', '.join(champions)}")


def predictors(predictions: dict, registered: dict, value=None) -> None:
    """Each target against its best baseline, the value model, and the registry's verdict."""
    from training.prediction.stage import summary_line, value_line

    for target, r in predictions.items():
        console.print(summary_line(target, r))
    if value is not None:
        console.print(value_line(value))
    for target in [*predictions, *(["value"] if value is not None else [])]:
        out = registered.get(target)
        if out:
            verdict = "[green]champion[/]" if out["promoted"] else "[yellow]not promoted[/]"
            console.print(f"{target}: registered v{out['version']}, {verdict}: {out['decision']}")


def next_best(out: dict) -> None:
    """The next-best model's registry verdict (nothing when it was not logged)."""
    if out:
        verdict = "[green]champion[/]" if out["promoted"] else "[yellow]not promoted[/]"
        console.print(f"next-best: registered v{out['version']}, {verdict}: {out['decision']}")


def model_set(version: str | None, dropped: list[str]) -> None:
    """What is served now: the model set this command published (in one step), if any."""
    from core import catalog

    if dropped:
        warn(
            f"{', '.join(dropped)} were served but fitted on other feature definitions (another "
            "data set or configuration): no longer served; use --project to keep data sets apart"
        )
    if version:
        console.print(f"served now: {catalog.model_set_name()} v{version} (promoted as one set)")
    else:
        console.print("what is served did not change")


def monitoring(m, data: dict, cfg, reevaluate: bool = False) -> None:
    from rich.table import Table

    t = Table(
        title=f"segment health as of {m.as_of} (reference {m.reference.as_of})",
        title_justify="left",
        box=None,
    )
    t.add_column("scheme")
    t.add_column("health", justify="right")
    for p in next(iter(m.health.values())).parts:
        t.add_column(p.name.replace("_", " "), justify="right")
    for scheme, h in m.health.items():
        t.add_row(
            scheme,
            f"{h.score:.0f}" + ("" if h.healthy else " !"),
            *("n/a" if p.score is None else f"{p.score:.0f}" for p in h.parts),
        )
    console.print(t)
    d = m.drift
    console.print(
        f"drift: {len(d.drifted_features())} of {len(d.features)} features drifted "
        f"(share {d.share_drifted:.2f}, threshold {cfg.drift_share:g})"
        + (f": {', '.join(d.drifted_features()[:8])}" if d.drifted_features() else "")
    )
    for why in m.reasons:
        console.print(f"[yellow]re-evaluation needed:[/] {why}")
    for note in m.notes:
        console.print(f"note: {note}")
    for line in reevaluation_lines(data, reevaluate):
        console.print(line)


def reevaluation_lines(data: dict, asked: bool) -> list[str]:
    """What a monitoring run says about re-evaluation: one line per scheme's verdict, or why
    nothing was re-evaluated (said also when the data is healthy: silence reads as a failure)."""
    verdicts = data.get("reevaluation") or {}
    if verdicts:
        lines = []
        for scheme, v in verdicts.items():
            if v["promoted"]:
                verdict = "[green]challenger promoted[/]" + (
                    f" as v{v['version']}" if v.get("version") else ""
                )
            else:
                verdict = "champion kept"
            lines.append(f"{scheme}: {verdict}: {v['reason']}")
        return lines
    if not data["trigger"]["needed"]:
        return ["[green]healthy:[/] no re-evaluation needed"]
    if not asked:
        return ["re-evaluation needed: run again with --reevaluate to refit and compare"]
    return []


def cell(value, share: bool = False) -> str:
    """A value of `segment compare`'s table as text."""
    if isinstance(value, float):
        if value != value:
            return "-"
        if share:
            return f"{value:.1%}"
        return f"{value:.0f}" if value.is_integer() and value > 1 else f"{value:.2f}"
    return "-" if value is None else str(value)
