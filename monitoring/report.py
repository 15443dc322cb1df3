"""monitor_report.html: the one page an analyst reads after a monitoring run.

Status and customers, the health index per serving scheme with each of its parts, the features
that drifted most (with links to Evidently's own pages next to this one), segment sizes and
revenue share over time, the migration between segments as a heat map, and the re-evaluation
that a trigger started: champion against challenger and the decision.

Self-contained like training's report.html: plots are PNGs embedded as base64, no script, style
or font is fetched, the page opens from disk. Built from the run's JSON summary (summary.json)
and the segment history, so it can be rebuilt later without re-running anything.

    write_report(summary, history, out_dir)  # -> out_dir / "monitor_report.html"
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

import numpy as np
import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape

from core import catalog
from core.errors import InputError
from core.formats import number, pct
from training.report import _png

TOP_DRIFT = 10
HISTORY_COLUMNS = ("as_of", "scheme", "segment", "share", "revenue_share")
PART_LABELS = {
    "data_quality": "data quality",
    "freshness": "freshness",
    "stability": "stability",
    "separation": "separation",
    "business_signal": "business signal",
    "business_response": "business response",
}
METRIC_LABELS = {
    "separation": "separation (silhouette)",
    "stability": "stability",
    "business_signal": "business signal",
}
SEGMENT_MEASURES = ("share", "revenue_share", "repurchase_rate")
SIDES = ("reference", "current")
MAX_ANNOTATED = 12  # heat map cells carry their counts up to this many segments


def write_report(summary: dict, history: pd.DataFrame | None, out_dir: Path) -> Path:
    """Write out_dir/monitor_report.html from a monitoring run's summary and the segment history
    (as_of, scheme, segment, share, revenue_share; one row per run x scheme x segment, the
    reference point included). Returns the path. Missing pieces (no re-evaluation, no history,
    unmeasured parts, no target labels) are shown as such."""
    import training.segmentation.plots  # noqa: F401 - the Agg backend and the CJK font fallback

    history = _history(history)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    health = summary.get("health") or {}
    names = summary.get("segment_names") or {}
    schemes = list(dict.fromkeys([*health, *history["scheme"].unique()]))

    with warnings.catch_warnings():  # without a CJK font, labels lose glyphs: not an error
        warnings.filterwarnings("ignore", message="Glyph .* missing from font")
        health_plot = _png(_health_chart(health)) if health else None
        sections = [
            _scheme_section(
                s, health.get(s), history[history["scheme"] == s], names.get(s) or {}, summary
            )
            for s in schemes
        ]
    env = Environment(
        loader=PackageLoader("monitoring", "templates"), autoescape=select_autoescape(["html"])
    )
    env.filters["pct"] = pct
    env.filters["num"] = number
    html = env.get_template("monitor.html").render(
        s=summary,
        status=summary.get("status") or "unknown",
        customers={k: (summary.get("customers") or {}).get(k) for k in SIDES},
        health=[_health_card(k, v) for k, v in health.items()],
        health_plot=health_plot,
        drift=_drift(summary.get("drift")),
        reports=_links(summary.get("reports") or {}),
        trigger={
            "needed": bool((summary.get("trigger") or {}).get("needed")),
            "reasons": list((summary.get("trigger") or {}).get("reasons") or []),
        },
        reevaluation=_reevaluation(summary.get("reevaluation")),
        notes=[str(n) for n in summary.get("notes") or []],
        sections=sections,
        tags=_tags(summary.get("tags")),
    )
    path = out / catalog.MONITOR_REPORT
    path.write_text(html, "utf-8")
    return path


# ---- data for the template ---------------------------------------------------------------------


def _tags(t: dict | None) -> dict | None:
    """Dynamic tag prevalence: reference vs now, and one row per monitoring run (as of) with
    each tag's share of customers active."""
    if not t or not (t.get("current") or t.get("history")):
        return None
    names = list(
        dict.fromkeys([*(t.get("current") or {}), *(r["tag"] for r in t.get("history") or [])])
    )
    runs: dict[str, dict] = {}
    for r in t.get("history") or []:
        runs.setdefault(str(r["as_of"]), {})[r["tag"]] = r["share"]
    return {
        "names": names,
        "reference": [(t.get("reference") or {}).get(n) for n in names],
        "current": [(t.get("current") or {}).get(n) for n in names],
        "history": [(day, [runs[day].get(n) for n in names]) for day in sorted(runs)],
    }


def _history(history: pd.DataFrame | None) -> pd.DataFrame:
    if history is None or not len(history):
        return pd.DataFrame({c: pd.Series(dtype=object) for c in HISTORY_COLUMNS})
    missing = [c for c in HISTORY_COLUMNS if c not in history.columns]
    if missing:
        raise InputError(
            f"monitoring report: history lacks column(s) {', '.join(missing)}; "
            f"found: {', '.join(map(str, history.columns))}"
        )
    out = history[list(HISTORY_COLUMNS)].copy()
    out["as_of"] = pd.to_datetime(out["as_of"])
    out["scheme"] = out["scheme"].astype(str)
    out["segment"] = out["segment"].astype(str)
    for c in ("share", "revenue_share"):
        out[c] = pd.to_numeric(out[c], errors="coerce")
    return out.sort_values("as_of", kind="stable")


def _health_card(scheme: str, h: dict) -> dict:
    parts = [
        {
            "label": PART_LABELS.get(p.get("name"), p.get("name")),
            "score": p.get("score"),
            "weight_share": p.get("weight_share"),
            "explanation": p.get("explanation") or "",
        }
        for p in h.get("parts") or []
    ]
    return {
        "scheme": scheme,
        "score": h.get("score"),
        "healthy": h.get("healthy"),
        "threshold": h.get("threshold", 60.0),
        "parts": parts,
    }


def _severity_key(c: dict) -> float:
    sev = c.get("severity")
    return math.inf if sev is None else float(sev)


def _drift_rows(columns: list[dict]) -> list[dict]:
    rows = []
    for c in columns:
        sev = c.get("severity")
        rows.append(
            {
                "column": c.get("column"),
                "kind": c.get("kind"),
                "method": c.get("method"),
                "score": c.get("score"),
                "threshold": c.get("threshold"),
                "drifted": bool(c.get("drifted")),
                "severity_text": "column vanished" if sev is None else number(sev, "{:+.2f}"),
                # bar: 1 order of magnitude past the threshold fills half, a vanished column all
                "bar": 1.0 if sev is None else max(0.0, min(1.0, sev / 2)),
            }
        )
    return rows


def _drift(d: dict | None) -> dict | None:
    if not d:
        return None
    features = sorted(d.get("features") or [], key=_severity_key, reverse=True)
    n_drifted = sum(bool(c.get("drifted")) for c in features)
    top = features[:TOP_DRIFT]
    return {
        "share_drifted": d.get("share_drifted"),
        "threshold_share": d.get("threshold_share"),
        "triggered": d.get("triggered"),
        "n_reference": d.get("n_reference"),
        "n_current": d.get("n_current"),
        "top": _drift_rows(top),
        "n_features": len(features),
        "n_drifted": n_drifted,
        "drifted_not_shown": sum(bool(c.get("drifted")) for c in features[TOP_DRIFT:]),
        "prediction_rows": _drift_rows(d.get("predictions") or []),
        "target_rows": _drift_rows(d.get("target") or []),
    }


def _links(reports: dict) -> list[tuple[str, str]]:
    """(label, href): relative links to the Evidently pages written next to the report."""
    out = []
    for group, href in reports.items():
        if not href:
            continue
        href = str(href)
        parts = urlsplit(href)
        if parts.scheme or parts.netloc or href.startswith(("/", "\\")):
            href = PurePosixPath(href.replace("\\", "/")).name  # written next to this page
        if urlsplit(href).scheme:  # a name like "javascript:x" stays a file name, not a URL
            href = f"./{href}"
        out.append((str(group), href))
    return out


def _reevaluation(r: dict | None) -> list[dict] | None:
    if not r:
        return None
    out = []
    for scheme, d in r.items():
        d = d or {}
        champion, challenger = d.get("champion") or {}, d.get("challenger") or {}
        keys = list(dict.fromkeys([*METRIC_LABELS, *champion, *challenger]))
        rows = []
        for k in keys:
            a, b = champion.get(k), challenger.get(k)
            diff = b - a if isinstance(a, int | float) and isinstance(b, int | float) else None
            rows.append((METRIC_LABELS.get(k, k), a, b, diff))
        out.append(
            {
                "scheme": scheme,
                "promoted": bool(d.get("promoted")),
                "reason": d.get("reason") or "",
                "version": d.get("version"),
                "has_champion": bool(d.get("champion")),
                "rows": rows,
            }
        )
    return out


def _scheme_section(
    scheme: str, h: dict | None, hist: pd.DataFrame, names: dict, summary: dict
) -> dict:
    h = h or {}
    segments = []
    for r in h.get("segments") or []:
        key = str(r.get("segment"))
        a, b = r.get("reference_share"), r.get("current_share")
        segments.append(
            {
                **{f"{side}_{m}": r.get(f"{side}_{m}") for m in SEGMENT_MEASURES for side in SIDES},
                "key": key,
                "name": names.get(key) or "",
                "name_en": str(names.get(key) or "").partition(" / ")[0],
                "name_zh": str(names.get(key) or "").partition(" / ")[2],
                "change_pp": 100 * (b - a) if a is not None and b is not None else None,
            }
        )
    transitions = h.get("transitions") or {}
    stability = next((p for p in h.get("parts") or [] if p.get("name") == "stability"), None)
    dates = sorted(hist["as_of"].unique())
    return {
        "scheme": scheme,
        "score": h.get("score"),
        "healthy": h.get("healthy"),
        "segments": segments,
        "history_points": len(dates),
        "history_from": pd.Timestamp(dates[0]).date().isoformat() if dates else None,
        "history_plot": _png(_history_chart(scheme, hist, names, summary)) if len(hist) else None,
        "heatmap": _png(_heatmap(scheme, transitions, names))
        if any(any(v for v in row.values()) for row in transitions.values())
        else None,
        "migration": (stability or {}).get("detail") or {},
        "migration_text": (stability or {}).get("explanation"),
    }


# ---- plots -------------------------------------------------------------------------------------


def _seg_label(key: str, names: dict) -> str:
    """The segment's readable name, bilingual when a CJK font is installed (training's plots)."""
    from training.segmentation.plots import _label, segment_label

    name = names.get(key)
    if not name:
        return _label(key)
    en, sep, zh = str(name).partition(" / ")
    return segment_label(en, zh) if sep else _label(str(name))


def _health_chart(health: dict[str, dict]):
    """Per scheme: the index and each part (0-100), the threshold as a dashed line."""
    import matplotlib.pyplot as plt

    schemes = list(health)
    threshold = next(iter(health.values())).get("threshold", 60.0)
    ncols = min(len(schemes), 3)
    nrows = math.ceil(len(schemes) / ncols)
    fig, axes = plt.subplots(
        nrows,
        ncols,
        figsize=(3.7 * ncols + 0.9, 2.6 * nrows),
        sharey=True,
        squeeze=False,
        layout="constrained",  # room for every label and the title, computed when drawn
    )
    for ax in axes.flat[len(schemes) :]:
        ax.set_visible(False)
    for ax, scheme in zip(axes.flat, schemes, strict=False):
        h = health[scheme]
        threshold = h.get("threshold", threshold)
        parts = h.get("parts") or []
        labels = ["index", *(PART_LABELS.get(p["name"], p["name"]) for p in parts)]
        values = [h.get("score"), *(p.get("score") for p in parts)]
        y = np.arange(len(labels))[::-1]
        for yi, v, label in zip(y, values, labels, strict=True):
            if v is None:
                ax.text(2, yi, "n/a (not measured)", va="center", fontsize=9, color="#616e7c")
                continue
            ok = v >= threshold
            color = ("#0e7c3a" if ok else "#b42318") if label == "index" else "#3e7bfa"
            if label != "index" and not ok:
                color = "#f0a020"
            ax.barh(yi, v, height=0.65, color=color)
            ax.text(
                min(v, 100) + 2 if v < 80 else v - 2,
                yi,
                f"{v:.0f}",
                va="center",
                ha="left" if v < 80 else "right",
                fontsize=9,
                color="#1f2933" if v < 80 else "white",
            )
        ax.axvline(threshold, color="#b42318", ls="--", lw=1)
        ax.set_xlim(0, 100)
        ax.set_yticks(y, labels)
        ax.set_title(f"{scheme}", fontsize=11)
        ax.tick_params(labelsize=9)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    fig.suptitle(
        f"health index and its parts (0-100; dashed: threshold {threshold:g})", fontsize=11
    )
    return fig


def _history_chart(scheme: str, hist: pd.DataFrame, names: dict, summary: dict):
    """Customer share and revenue share per segment at each monitoring run."""
    import matplotlib.pyplot as plt
    from matplotlib.dates import DateFormatter
    from matplotlib.ticker import PercentFormatter

    last = hist[hist["as_of"] == hist["as_of"].max()].set_index("segment")["share"]
    order = sorted(hist["segment"].unique(), key=lambda s: -np.nan_to_num(last.get(s, 0.0)))
    cmap = plt.get_cmap("tab10" if len(order) <= 10 else "tab20")
    labels = [_seg_label(seg, names) for seg in order]
    ncol = _legend_columns(labels, 12.5)
    rows = math.ceil(len(order) / ncol)
    # constrained layout with the legend "outside": the axes shrink until every entry fits
    fig, (a, b) = plt.subplots(
        1, 2, figsize=(13, 3.6 + 0.25 * rows), sharex=True, layout="constrained"
    )
    handles = []
    for i, seg in enumerate(order):
        g = hist[hist["segment"] == seg]
        style = {"marker": "o", "ms": 4, "color": cmap(i % cmap.N)}
        (line,) = a.plot(g["as_of"], g["share"], **style)
        b.plot(g["as_of"], g["revenue_share"], **style)
        handles.append((line, labels[i]))
    dates = sorted(hist["as_of"].unique())
    own = ((summary.get("references") or {}).get(scheme) or {}).get("as_of")
    ref = own or summary.get("reference_as_of")
    for ax, title in ((a, "customer share"), (b, "revenue share")):
        if ref is not None and pd.Timestamp(ref) in set(map(pd.Timestamp, dates)):
            ax.axvline(pd.Timestamp(ref), color="grey", ls=":", lw=1)
        ax.set_xticks(dates)
        ax.xaxis.set_major_formatter(DateFormatter("%Y-%m-%d"))
        if len(dates) == 1:
            ax.set_xlim(dates[0] - pd.Timedelta(days=20), dates[0] + pd.Timedelta(days=20))
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        ax.set_ylim(bottom=0)
        ax.set_title(f"{scheme}: {title}", fontsize=11)
        ax.tick_params(labelsize=9)
        ax.grid(axis="y", color="#e4e7eb", lw=0.8)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    plt.setp(a.get_xticklabels() + b.get_xticklabels(), rotation=20, ha="right")
    fig.legend(
        [h for h, _ in handles],
        [label for _, label in handles],
        loc="outside lower center",
        ncol=max(ncol, 1),
        fontsize=9,
        frameon=False,
    )
    return fig


def _legend_columns(labels: list[str], width: float, most: int = 5) -> int:
    """Legend columns that fit `width` inches at font size 9: a legend wider than its figure
    is cut off whatever the layout (a CJK character is about twice a Latin one)."""
    import unicodedata

    def inches(text: str) -> float:
        wide = sum(unicodedata.east_asian_width(c) in "WF" for c in text)
        return 0.125 * wide + 0.07 * (len(text) - wide) + 0.6  # + the line sample and gap

    widest = max(map(inches, labels), default=1.0)
    return max(1, min(len(labels), most, int(width // widest)))


def _heatmap(scheme: str, transitions: dict, names: dict):
    """Migration from reference to current segment: row-normalised shares, counts annotated."""
    import matplotlib.pyplot as plt

    rows = [str(k) for k in transitions]
    cols = list(dict.fromkeys([*rows, *(str(c) for r in transitions.values() for c in r)]))
    counts = (
        pd.DataFrame.from_dict(
            {str(k): {str(c): v for c, v in (r or {}).items()} for k, r in transitions.items()},
            orient="index",
        )
        .reindex(index=rows, columns=cols)
        .fillna(0)
        .astype(float)
    )
    totals = counts.sum(axis=1)
    shares = counts.div(totals.where(totals > 0), axis=0)
    n = max(len(rows), len(cols))
    side = min(max(3.8, 0.75 * n + 2.2), 12)
    fig, ax = plt.subplots(figsize=(side + 1.6, side), layout="constrained")
    cmap = plt.get_cmap("Blues").with_extremes(bad="#f5f7fa")
    im = ax.imshow(
        np.ma.masked_invalid(shares.to_numpy()), cmap=cmap, vmin=0, vmax=1, aspect="auto"
    )
    if n <= MAX_ANNOTATED:
        for i in range(len(rows)):
            for j in range(len(cols)):
                share = shares.iat[i, j]
                count = int(counts.iat[i, j])
                text = f"{count:,}" + (f"\n{share:.0%}" if np.isfinite(share) else "")
                dark = np.isfinite(share) and share > 0.55
                ax.text(
                    j,
                    i,
                    text,
                    ha="center",
                    va="center",
                    fontsize=9,
                    color="white" if dark else "#1f2933",
                )
    ax.set_xticks(range(len(cols)), [_seg_label(c, names) for c in cols])
    ax.set_yticks(range(len(rows)), [_seg_label(r, names) for r in rows])
    plt.setp(ax.get_xticklabels(), rotation=30, ha="right")
    ax.tick_params(labelsize=9)
    ax.set_xlabel("current segment")
    ax.set_ylabel("reference segment")
    ax.set_title(f"{scheme}: migration between segments", fontsize=11)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="share of the reference segment")
    return fig
