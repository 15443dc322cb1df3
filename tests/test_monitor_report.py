"""The monitoring report: built from real health and drift results on generated customers,
checked for content and self-containment, then rendered in headless Chromium.

Evidently runs once (module fixture, ~10 s with its import); every test reuses the summary.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.errors import CustsegError
from monitoring.drift import detect_drift
from monitoring.health import PARTS, segment_health
from monitoring.report import write_report

pytestmark = [  # noise from Evidently's own imports
    pytest.mark.filterwarnings("ignore:numpy.core is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:Call to deprecated function 'Dependency'"),
    pytest.mark.filterwarnings("ignore:Use of deprecated class 'DependencyKwarg'"),
]

REF_DAY, MID_DAY, CUR_DAY = date(2026, 6, 30), date(2026, 7, 31), date(2026, 9, 30)
NUMERIC = ["recency_days", "frequency_orders", "monetary", "avg_order_value", "online_share"]
CATEGORICAL = ["province"]
PROVINCES = ["ON", "QC", "BC", "AB", "MB"]
SCHEMES = ("rfm_rules", "value_activity", "behaviour_clusters")
NAMES = {
    "rfm_rules": {
        "high_value": "high value / 高价值客户",
        "potential": "potential / 潜力客户",
        "churn_risk": "churn risk / 流失风险客户",
        "general": "general / 一般客户",
    },
    "value_activity": {
        "high_active": "high value, active / 高价值活跃",
        "high_lapsing": "high value, lapsing / 高价值流失中",
        "low_active": "low value, active / 低价值活跃",
        "low_lapsing": "low value, lapsing / 低价值流失中",
    },
    "behaviour_clusters": {"0": "online regulars / 线上常客", "1": "store browsers / 门店客户"},
}
AUDIT = {
    "tables": {
        "transactions": {
            "input_rows": 52_000,
            "kept_rows": 51_300,
            "dropped_rows": 700,
            "dropped_by_rule": {"duplicate_transaction": 500, "bad_amount": 200},
            "balanced": True,
        }
    },
    "missing_rates": {
        "customers": {"province": {"input": 0.03, "output": 0.03, "key": True}},
        "transactions": {"amount": {"input": 0.004, "output": 0.0, "key": True}},
    },
}


def customers(seed: int, ids: np.ndarray, shift: float = 0.0) -> pd.DataFrame:
    """Customers with RFM features, a churn score and label, and three schemes' segments."""
    rng = np.random.default_rng(seed)
    n = len(ids)
    frequency = rng.poisson(4 + 2 * shift, n) + 1
    aov = rng.lognormal(np.log(60 * (1 + shift)), 0.5, n)
    recency = rng.gamma(2.0, 30.0 * (1 + shift), n).round()
    monetary = frequency * aov
    online = rng.beta(2, 3, n)
    churn = 1 / (1 + np.exp(2.0 - recency / 60 + frequency / 5))
    return pd.DataFrame(
        {
            "customer_id": ids,
            "recency_days": recency,
            "frequency_orders": frequency,
            "monetary": monetary,
            "avg_order_value": aov,
            "online_share": online,
            "province": rng.choice(PROVINCES, n, p=[0.38, 0.23, 0.14, 0.12, 0.13]),
            "churn_probability": churn,
            "churned": (rng.random(n) < churn).astype(int),
            "repurchased": (rng.random(n) > churn).astype(int),
            "rfm_rules": np.select(
                [(monetary > 500) & (recency < 60), recency > 120, frequency >= 5],
                ["high_value", "churn_risk", "potential"],
                "general",
            ),
            "value_activity": np.char.add(
                np.where(monetary > 300, "high_", "low_"),
                np.where(recency < 75, "active", "lapsing"),
            ),
            "behaviour_clusters": np.where(online > 0.45, "0", "1"),
        }
    )


@pytest.fixture(scope="module")
def tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    """3,000 reference customers; now 2,600 of them plus 400 new, spending more, the online
    channel's feed broken (online_share all missing)."""
    reference = customers(1, np.array([f"c{i}" for i in range(3000)]))
    current = customers(2, np.array([f"c{i}" for i in range(400, 3400)]), shift=0.35)
    current["online_share"] = np.nan
    kept = current["customer_id"].isin(reference["customer_id"])
    # most customers who stay keep their segment: copy the reference one for 70% of them
    same = kept & (np.random.default_rng(3).random(len(current)) < 0.7)
    old = reference.set_index("customer_id")
    for scheme in SCHEMES:
        current.loc[same, scheme] = old.loc[current.loc[same, "customer_id"], scheme].to_numpy()
    return reference, current


@pytest.fixture(scope="module")
def drift(tables):
    reference, current = tables
    return detect_drift(
        reference.assign(segment_rfm_rules=reference["rfm_rules"]),
        current.assign(segment_rfm_rules=current["rfm_rules"]),
        numeric=NUMERIC,
        categorical=CATEGORICAL,
        predictions=["churn_probability", "segment_rfm_rules"],
        target=["churned"],
    )


def health_of(tables, scheme: str, audit: dict | None = AUDIT) -> dict:
    reference, current = tables
    h = segment_health(
        reference,
        current,
        segment=scheme,
        repurchased="repurchased",
        reference_as_of=REF_DAY,
        current_as_of=CUR_DAY,
        audit=audit,
    )
    return h.to_dict()


def history_of(health: dict[str, dict], points: tuple[date, ...]) -> pd.DataFrame:
    """Reference and current shares from the health tables, a run in between interpolated."""
    rows = []
    for scheme, h in health.items():
        for r in h["segments"]:
            for day in points:
                w = (day - REF_DAY).days / (CUR_DAY - REF_DAY).days
                rows.append(
                    {
                        "as_of": day,
                        "scheme": scheme,
                        "segment": r["segment"],
                        "share": (1 - w) * r["reference_share"] + w * r["current_share"],
                        "revenue_share": (1 - w) * r["reference_revenue_share"]
                        + w * r["current_revenue_share"],
                    }
                )
    return pd.DataFrame(rows)


def assemble(drift, health: dict[str, dict], reevaluation: dict | None = None) -> dict:
    """The job's summary.json, through JSON like the real one."""
    d = drift.to_dict()
    share = d["share_drifted"]
    reasons = [f"drifted feature share {share:.2f} > 0.3"] if share > 0.3 else []
    reasons += [
        f"{s} health {h['score']:.0f} < {h['threshold']:.0f}"
        for s, h in health.items()
        if not h["healthy"]
    ]
    summary = {
        "status": "unhealthy" if reasons else "healthy",
        "as_of": CUR_DAY.isoformat(),
        "reference_as_of": REF_DAY.isoformat(),
        "reference_run": "0f3c9a1e2b4d4f0c8e7a6b5c4d3e2f10",
        "customers": {"reference": 3000, "current": 3000},
        "drift": {**d, "threshold_share": 0.3, "triggered": share > 0.3},
        "health": health,
        "segment_names": {s: NAMES[s] for s in health},
        "trigger": {"needed": bool(reasons), "reasons": reasons},
        "reevaluation": reevaluation,
        "reports": {
            "features": "drift_features.html",
            "predictions": "drift_predictions.html",
            "target": "drift_target.html",
        },
    }
    return json.loads(json.dumps(summary, allow_nan=False))


@pytest.fixture(scope="module")
def summary(tables, drift) -> dict:
    return assemble(drift, {s: health_of(tables, s) for s in SCHEMES})


@pytest.fixture(scope="module")
def history(summary) -> pd.DataFrame:
    return history_of(summary["health"], (REF_DAY, MID_DAY, CUR_DAY))


REEVALUATION = {
    "rfm_rules": {
        "promoted": True,
        "reason": "challenger separates better <by 0.06> & is as stable",
        "version": "3",
        "champion": {"separation": 0.352, "stability": 0.81, "business_signal": 0.64},
        "challenger": {"separation": 0.412, "stability": 0.80, "business_signal": 0.66},
    },
    "behaviour_clusters": {
        "promoted": False,
        "reason": "<script>alert(1)</script> challenger's business signal is not better",
        "version": None,
        "champion": {"separation": 0.298, "stability": None, "business_signal": 0.71},
        "challenger": {"separation": 0.305, "stability": None, "business_signal": 0.52},
    },
}


# ---- headless Chromium --------------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def render_png(html: Path, png: Path, *, width: int = 1280, height: int = 2000) -> Path:
    """Screenshot of `html` (a local file) at width x height in headless Chromium, offline."""
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed")
    with tempfile.TemporaryDirectory() as profile:
        cmd = [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
            "--disable-extensions",
            "--host-resolver-rules=MAP * ~NOTFOUND",  # nothing may come from the network
            f"--user-data-dir={profile}",
            f"--window-size={width},{height}",
            f"--screenshot={png}",
            html.resolve().as_uri(),
        ]
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert png.exists(), f"chromium wrote no screenshot: {run.stderr[-2000:]}"
    return png


def check_screenshot(png: Path, width: int, height: int) -> None:
    """A real page: the right size, tens of KB, text and coloured charts on it, not blank."""
    from PIL import Image

    assert png.stat().st_size > 60_000, png.stat().st_size
    with Image.open(png) as im:
        assert im.size == (width, height)
        rgb = np.asarray(im.convert("RGB"), dtype=int)
    ink = (rgb < 200).any(axis=2).mean()  # text, lines, bars
    colour = (rgb.max(axis=2) - rgb.min(axis=2) > 60).mean()  # charts, badges, heat map
    assert ink > 0.02, ink
    assert colour > 0.01, colour
    rows_used = (rgb < 240).any(axis=(1, 2))
    assert rows_used[: height // 2].mean() > 0.3  # the top half is not empty


# ---- tests -------------------------------------------------------------------------------------


def test_report_is_self_contained_and_shows_health_drift_and_migration(summary, history, tmp_path):
    path = write_report(summary, history, tmp_path / "out")
    assert path == tmp_path / "out" / "monitor_report.html"
    html = path.read_text("utf-8")

    # self-contained: nothing fetched
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "<link" not in html and "<script" not in html and "@import" not in html
    assert "url(" not in html

    # header
    assert summary["status"] == "unhealthy" and 'class="badge unhealthy"' in html
    assert "2026-09-30" in html and "2026-06-30" in html and "3,000" in html
    # health: the score of each scheme and every part by name
    for scheme, h in summary["health"].items():
        assert f"{h['score']:.1f}" in html, scheme
        for p in h["parts"]:
            assert p["explanation"].replace("'", "&#39;") in html
    for part in PARTS:
        assert f'<td class="part">{part.replace("_", " ")}</td>' in html
    # drift: the drifted features, the vanished column, the threshold, links to Evidently
    drifted = summary["drift"]["drifted_features"]
    assert "online_share" in drifted and "monetary" in drifted
    for name in drifted[:10]:
        assert f"<td>{name}</td>" in html
    assert "column vanished" in html
    assert f"{100 * summary['drift']['share_drifted']:.0f}%" in html and "threshold of 30%" in html
    for href in summary["reports"].values():
        assert f'href="{href}"' in html
    assert (
        "segment_rfm_rules" in html and "churn_probability" in html and "<td>churned</td>" in html
    )
    # per scheme: history chart, table with readable names, a migration heat map
    images = re.findall(r'<img[^>]*alt="([^"]*)"[^>]*src="data:image/png;base64,([^"]+)"', html)
    alts = [alt for alt, _ in images]
    for scheme in SCHEMES:
        assert f"migration heat map for {scheme}" in alts
        assert f"segment sizes and revenue share over time for {scheme}" in alts
    assert "health index and parts per scheme" in alts
    assert all(len(data) > 5_000 for _, data in images)
    assert "high value<br>" in html and "高价值客户 · <code>high_value</code>" in html
    assert "线上常客 · <code>0</code>" in html
    # trigger reasons, escaped
    assert "drifted feature share" in html and "&gt; 0.3" in html
    assert "No re-evaluation result in this run." in html

    png = render_png(path, tmp_path / "monitor.png", height=2400)
    check_screenshot(png, 1280, 2400)


def test_reevaluation_champion_against_challenger(summary, history, tmp_path):
    data = {**summary, "reevaluation": REEVALUATION}
    html = write_report(data, history, tmp_path).read_text("utf-8")
    section = html[html.index('id="reevaluation"') :]
    assert "challenger promoted as version 3" in section
    assert "champion kept" in section
    assert "0.352" in section and "0.412" in section and "+0.060" in section
    assert "n/a" in section  # stability not measured on either side
    # reasons are text, never markup
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in section
    assert "&lt;by 0.06&gt; &amp; is as stable" in section


def test_missing_pieces(tables, drift, tmp_path):
    """No audit (data quality n/a), no re-evaluation, no target labels, no names, no report
    links, one history point; then no history and no drift at all."""
    health = {"rfm_rules": health_of(tables, "rfm_rules", audit=None)}
    assert health["rfm_rules"]["parts"][0]["score"] is None
    data = assemble(drift, health)
    data["notes"] = ["no repurchase labels yet for a reference less than 90 days old"]
    data["drift"]["target"] = []
    for key in ("segment_names", "reports"):
        del data[key]
    one_point = history_of(health, (CUR_DAY,))
    path = write_report(data, one_point, tmp_path / "a")
    html = path.read_text("utf-8")
    assert "not available: no cleaning audit" in html
    assert '<td class="part">data quality</td><td class="num">n/a</td>' in html
    assert "No target drift" in html and "Evidently reports" not in html
    assert "Note: no repurchase labels yet" in html
    assert "One monitoring point so far (2026-09-30)" in html
    assert "migration heat map for rfm_rules" in html
    assert "No re-evaluation result in this run." in html

    bare = {"status": "healthy", "as_of": "2026-09-30", "trigger": {"needed": False}}
    html = write_report(bare, pd.DataFrame(), tmp_path / "b").read_text("utf-8")
    assert "Drift was not measured" in html and "No health index" in html
    assert "No trigger fired" in html and 'class="badge healthy"' in html
    png = render_png(tmp_path / "b" / "monitor_report.html", tmp_path / "bare.png", height=900)
    assert png.stat().st_size > 5_000

    with pytest.raises(CustsegError, match="history lacks column"):
        write_report(data, one_point.drop(columns="revenue_share"), tmp_path / "c")
