"""What `segment fit`, `segment compare` and `segment diff` print about fits. Tables are sized
for 80 columns (a pipe or a file gets 80; a terminal its own width): headers wrap at spaces,
values are never cut."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from core.progress import console
from custseg.cli.display import cell
from training.segmentation.measures import COMPARED, LEGEND, fmt

WIDTH = 80
SHARES = {"largest", "smallest", "top rev"}
OPTIONAL = {"heldout_eta2_repurchase", "heldout_eta2_spend"}


def out() -> Console:
    """stdout: the output a command exists to print."""
    c = Console(highlight=False)
    return c if c.is_terminal else Console(width=WIDTH, highlight=False)


def _table(title: str | None = None) -> Table:
    return Table(title=title, title_justify="left", box=None, padding=(0, 1, 0, 0))


def fit_summary(done, command: str) -> None:
    """Per scheme: refitted or reused, served or not, against the served champion; then how
    to promote when nothing was."""
    for name, v in done.logged.items():
        r = done.reused.get(name)
        line = f"unchanged, reused v{r.version}" if r else f"refitted, registered v{v['version']}"
        verdict = done.versus.get(name)
        if not _serves(done, name):
            line += " (serve = false: never served)"
        elif verdict is None:
            line += " (served)"
        elif verdict.champion is None:
            line += "; nothing served before"
        else:
            line += f"; vs champion v{verdict.champion}: better on "
            line += ", ".join(verdict.better) or "no measure"
            line += "; worse on " + (", ".join(verdict.worse) or "no measure")
        if verdict is not None and v["champion"] and done.model_set:
            line += "; promoted"
        console.print(Text(f"{name}: {line}"))
    waiting = [s for s in done.versus if _serves(done, s) and not done.logged[s]["champion"]]
    if waiting and done.model_set is None:
        console.print(
            Text(
                f"not promoted: {', '.join(waiting)}. To serve these fits: {command} --promote "
                "(unchanged schemes are reused, nothing is refitted); `custseg segment diff "
                "--last 2` shows what changed"
            )
        )


def _serves(done, name: str) -> bool:
    fit = done.reused.get(name) or next(f for f in done.fitted if f.name == name)
    return fit.serve


def compare(table, title: str) -> None:
    """`segment compare`: one table per fit, measures headed by their better side."""
    c = out()
    for fit, rows in table.groupby("fit", sort=False):
        first = rows.iloc[0]
        name = first["fit name"] or "unnamed"
        t = _table(f"fit {fit}: {name}; as of {first['as of']}, started {first['started']}")
        t.add_column("scheme", overflow="fold")
        t.add_column("v", no_wrap=True)
        # measures only some fits have (held-out eta2 needs the log): shown when this one has
        shown = [m for m in COMPARED if m.metric not in OPTIONAL or rows[m.label].notna().any()]
        for m in shown:  # a word a line: the table is as narrow as its values allow
            head = "\n".join([*m.label.split(), m.arrow.strip()]).strip()
            t.add_column(head, justify="right", no_wrap=True)
        for r in rows.iloc[::-1].to_dict("records"):  # in fit order
            version = "-" if r["version"] is None else str(r["version"])
            version += ("r" if r["reused"] else "") + ("*" if r["champion"] else "")
            values = [cell(r[m.label], m.label in SHARES) for m in shown]
            t.add_row(r["scheme"], version, *values)
        c.print(t)
        ranking = heldout_ranking(rows)
        if ranking:
            c.print(Text(ranking))
        response = business_response(rows)
        if response:
            c.print(Text(response))
        c.print()
    c.print(Text(f"{title}. v: registered version (*: served, r: reused, not refitted). " + LEGEND))


def business_response(rows) -> str:
    """The schemes' measured response to their strategies (`campaign evaluate`): one line."""
    if "business response" not in rows:
        return ""
    got = rows.dropna(subset=["business response"])
    if got.empty:
        return ""
    return (
        "business response (segments with a significant Holm-corrected uplift / measured, "
        "latest `campaign evaluate`): "
        + ", ".join(f"{r['scheme']} {r['business response']}" for _, r in got.iterrows())
    )


def heldout_ranking(rows) -> str:
    """The schemes ranked by the held-out separation of repurchase (then spend): one line."""
    import math

    label = "repurch eta2"
    if label not in rows:
        return ""
    scored = [
        (r[label], r["scheme"])
        for r in rows.to_dict("records")
        if isinstance(r[label], int | float) and math.isfinite(r[label])
    ]
    if not scored:
        return ""
    ranked = sorted(scored, key=lambda x: -x[0])
    return "ranked by held-out repurchase eta2: " + ", ".join(
        f"{i}. {name} {value:.3f}" for i, (value, name) in enumerate(ranked, 1)
    )


def diff(d) -> None:
    """`segment diff`: per scheme the scheme-file changes, measures, sizes and migration."""
    c = out()
    for label, f in (("A", d.a), ("B", d.b)):
        c.print(Text(f"{label}: {f.run_id[:8]} {f.name}, as of {f.as_of}, started {f.started}"))
    for s in d.schemes:
        c.print()
        a, b = (v or "-" for v in s.versions)
        c.print(Text(f"== {s.scheme}: A {a}, B {b}", style="bold"))
        if s.note:
            c.print(Text(s.note))
        if s.same_fit or None in s.versions:
            continue
        c.print(Text("scheme file:" + ("" if s.changes else " no change (the data differs)")))
        for key, old, new in s.changes:
            c.print(Text(f"  {key}: {_value(old)} -> {_value(new)}"))
        _measures(c, s.measures)
        if s.sizes is not None:
            _sizes(c, s.sizes)
        if s.migration is not None:
            _migration(c, s.migration)
    c.print()
    c.print(Text(LEGEND))


def _value(v) -> str:
    return "(none)" if v is None else str(v)


def _measures(c: Console, measures) -> None:
    t = _table()
    for col in ("measure", "better", "A", "B", "wins"):
        t.add_column(col, justify="right" if col in "AB" else "left", no_wrap=True)
    for m, a, b, w in measures:
        won = {"a": "A", "b": "B", "tie": "tie"}.get(w, "")
        t.add_row(m.label, m.better or "-", fmt(a), fmt(b), won)
    c.print(t)


def _sizes(c: Console, sizes) -> None:
    t = _table("segment sizes (customers)")
    t.add_column("segment", overflow="fold")
    for col in ("A", "B", "change"):
        t.add_column(col, justify="right", no_wrap=True)
    for r in sizes.itertuples():
        t.add_row(str(r.segment), f"{r.a:,}", f"{r.b:,}", f"{r.b - r.a:+,}")
    c.print(t)


def _migration(c: Console, cross) -> None:
    """A crosstab when it fits the width, else the moves as a list, largest first."""
    moved = int(cross.to_numpy().sum() - sum(cross.at[k, k] for k in cross.index if k in cross))
    total = int(cross.to_numpy().sum())
    c.print(Text(f"customers moved: {moved:,} of {total:,} ({moved / max(total, 1):.1%})"))
    cols = [str(k) for k in cross.columns]
    need = max(len(str(k)) for k in cross.index) + 6 + sum(max(len(k), 6) + 1 for k in cols)
    if need <= c.width:
        t = _table("rows: segment in A, columns: segment in B")
        t.add_column("A \\ B", no_wrap=True)
        for k in cols:
            t.add_column(k, justify="right", no_wrap=True)
        for k, row in cross.iterrows():
            t.add_row(str(k), *(f"{v:,}" for v in row))
        c.print(t)
        return
    t = _table("moves (segment in A -> segment in B)")
    for col in ("from", "to", "customers"):
        t.add_column(col, justify="right" if col == "customers" else "left", overflow="fold")
    flows = cross.stack().rename("n").reset_index()
    flows = flows[(flows["n"] > 0) & (flows.iloc[:, 0] != flows.iloc[:, 1])]
    for r in flows.sort_values("n", ascending=False).itertuples(index=False):
        t.add_row(str(r[0]), str(r[1]), f"{r[2]:,}")
    c.print(t)
