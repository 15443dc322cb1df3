"""No script of the data's runs in any HTML page custseg writes.

Category, product, region, industry and customer id values, and the free text of a scheme file
(segment keys and names, a description, a strategy), carry payloads that run script when they
reach a page unescaped: `</script><img onerror=...>` (ends Evidently's inline data script),
`"><svg onload=...>` (ends an attribute) and `<!--<script>` (changes where a script ends). Each
payload's script marks the page (`data-pwned` = a code naming its source). The data goes through
the real main job (audit.html, report.html) and the monitoring page writers on its feature
tables and segments (drift_*.html, monitor_report.html); every page is opened in headless
Chromium and must render, show the payloads as text and carry no mark. Evidently's unfixed page
of the same kind of data is opened too and must carry one: the check is not vacuous.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.errors import CustsegError
from core.html import dumps_for_script, scan, script_json
from monitoring.drift import detect_drift, inert_page
from monitoring.report import _links

pytestmark = [  # noise from Evidently's own imports
    pytest.mark.filterwarnings("ignore:numpy.core is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:Call to deprecated function 'Dependency'"),
    pytest.mark.filterwarnings("ignore:Use of deprecated class 'DependencyKwarg'"),
]

MARK = "data-pwned"  # what a payload's script sets on <html>; the payloads' text never holds it


def pwn(code: int) -> str:
    """Script that marks the page with `code`: no quotes, brackets, commas or colons, so it
    survives JSON and is a legal LightGBM feature name (a category becomes one)."""
    return f"document.documentElement.dataset.pwned={code}"


def closes_script(code: int) -> str:
    return f"</script><img src=x onerror={pwn(code)}>"


def closes_attribute(code: int) -> str:
    return f'"><svg onload={pwn(code)}>'


OPENS_COMMENT = "<!--<script>"


# ---- the helpers ------------------------------------------------------------------------------


VALUES = [
    closes_script(1),
    closes_attribute(2),
    OPENS_COMMENT,
    "a & b <-> c",
    "</SCRIPT >",
    "\u2028\u2029 线上 ✓",
]


def test_script_json_reads_back_the_same_and_cannot_end_a_script():
    value = {"names": VALUES, "x": [1.5, None, True], "<key>": {"&": "</"}}
    text = dumps_for_script(value)
    assert json.loads(text) == value
    assert not set(text) & {"<", ">", "&", "\u2028", "\u2029"}
    assert script_json(json.dumps("</script>")) == '"\\u003c/script\\u003e"'


def test_scan_finds_what_can_run_script():
    found = scan(
        '<p onclick="x()">a</p><a href=" JavaScript:alert(1)">b</a><img src="data:image/png;'
        'base64,AAAA"><iframe src="x.html"></iframe><script>var a = "<b>";</script>'
        '<meta http-equiv="Refresh" content="0; url=x"><svg><a xlink:href="vbscript:x"/></svg>'
    )
    assert found.handlers == ['<p onclick="x()">']
    assert len(found.urls) == 2  # javascript:, vbscript: (data:image is fine)
    assert found.elements == ["<iframe>", "<meta>"]
    assert [s["text"] for s in found.scripts] == ['var a = "<b>";']
    assert len(found.problems()) == 6 and len(found.problems(scripts_allowed=True)) == 5
    assert scan("<p title='&lt;script&gt;'>&lt;img onerror=x&gt;</p>").problems() == []


def evidently_like(data: str, *, extra: str = "") -> str:
    """A page laid out like Evidently 0.7's, with `data` (JSON text) embedded as it does."""
    return (
        "<!DOCTYPE html><html><head><style>p {}</style><script>\n"
        f"    var metric_0a1b = {data};\n"
        "    var additional_graphs_metric_0a1b = {};\n"
        '</script></head><body><div id="root_metric_0a1b"></div>'
        "<script>var global = globalThis</script><script>lib()</script>"
        f"{extra}<script>window.drawDashboard(metric_0a1b, new Map(), "
        '"root_metric_0a1b");</script></body></html>'
    )


def test_inert_page_escapes_the_data_script_whatever_it_holds():
    raw = evidently_like(json.dumps({"widgets": VALUES}))
    assert scan(raw).handlers  # as Evidently writes it, the payload is live
    page = inert_page(raw)
    found = scan(page)
    assert len(found.scripts) == 4 and found.problems(scripts_allowed=True) == []
    data = found.scripts[0]["text"]
    assert "<" not in data and ">" not in data
    body = data.split(" = ", 1)[1].split(";\n", 1)[0]
    assert json.loads(body) == {"widgets": VALUES}  # the dashboard reads the same strings
    start = raw.index("<script>\n")
    end = raw.index("\n</script>", start) + len("\n</script>")
    assert page.startswith(raw[:start]) and page.endswith(raw[end:])  # the rest as it was


def test_inert_page_refuses_a_page_it_does_not_know():
    with pytest.raises(CustsegError, match="not laid out as custseg expects"):
        inert_page("<html><body><script>var x = 1;</script></body></html>", "features")
    with pytest.raises(CustsegError, match="5 scripts"):
        inert_page(evidently_like("{}", extra="<script>more()</script>"))
    with pytest.raises(CustsegError, match="event handler"):
        inert_page(evidently_like("{}", extra="<img src=x onerror=alert(1)>"))


def test_monitor_report_links_never_become_script_urls():
    links = dict(
        _links(
            {
                "a": "javascript:alert(1)",
                "b": " JavaScript:alert(1)",
                "c": "data:text/html,x",
                "d": "drift_features.html",
                "e": "https://example.com/x/drift_target.html",
            }
        )
    )
    assert links == {
        "a": "./javascript:alert(1)",
        "b": "./ JavaScript:alert(1)",
        "c": "html,x",
        "d": "drift_features.html",
        "e": "drift_target.html",
    }


# ---- every page, through the pipeline, in Chromium ------------------------------------------

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

# where each code's payload was put (a failure names the source)
SOURCES = {
    11: "category",
    12: "category",
    21: "product",
    22: "product",
    31: "transaction region",
    32: "customer region",
    33: "customer region",
    41: "industry",
    42: "industry",
    51: "customer id",
    52: "customer id",
    61: "scheme file: segment key",
    62: "scheme file: segment name (en)",
    63: "scheme file: segment name (zh)",
    64: "scheme file: scheme description",
    65: "scheme file: segment key",
    71: "scheme file: strategy direction",
    72: "scheme file: strategy direction (zh)",
    73: "scheme file: strategy actions (zh)",
    74: "scheme file: strategy owner",
    81: "monitoring summary: trigger reason",
    82: "monitoring summary: note",
    83: "monitoring summary: re-evaluation reason",
    90: "control page",
}

# Evidently's dashboard draws its widgets on load and the rest on a click: once drawn, expand
# every column's details (the plots with the category labels); once plotted, note which
# payloads the dashboard shows as text and open the Tests tab. What was drawn goes on <body>.
EXPAND = """<script>
(function () {
  var step = 0, waited = 0;
  function tick() {
    var body = document.body;
    if (step === 0) {
      var toggles = document.querySelectorAll('[aria-label="Detail panel visibility toggle"]');
      if (toggles.length) {
        toggles.forEach(function (b) { b.click(); });
        body.dataset.expanded = toggles.length;
        step = 1;
      }
    } else {
      var plots = document.querySelectorAll(".js-plotly-plot").length;
      waited += 100;
      if (plots >= Number(body.dataset.expanded) || (plots && waited > 3000)) {
        body.dataset.plots = plots;
        var text = document.querySelector('[id^="root_"]').textContent;
        var codes = (text.match(/pwned=[0-9]+/g) || []).map(function (m) { return m.slice(6); });
        body.dataset.shown = codes.filter(function (c, i) { return codes.indexOf(c) === i; })
          .sort().join(" ");
        var tabs = Array.prototype.filter.call(
          document.querySelectorAll("[role=tab]"),
          function (t) { return t.textContent.trim() === "Tests"; });
        if (tabs.length) tabs[0].click();
        body.dataset.testsTab = tabs.length;
        return;
      }
    }
    setTimeout(tick, 100);
  }
  tick();
})();
</script>"""


def chromium() -> str:
    if Path(CHROMIUM).exists():
        return CHROMIUM
    if os.environ.get("CI"):
        pytest.fail("chromium is missing on CI (the Makefile installs it with apt)")
    pytest.skip("chromium is not installed (make install puts it there; CI has it)")


def dom_after_scripts(page: Path) -> str:
    """The DOM of `page` after its scripts ran (5 s of virtual time), offline."""
    with tempfile.TemporaryDirectory() as profile:
        cmd = [
            chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--host-resolver-rules=MAP * ~NOTFOUND",  # nothing may come from the network
            f"--user-data-dir={profile}",
            "--virtual-time-budget=5000",
            "--dump-dom",
            page.resolve().as_uri(),
        ]
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert run.returncode == 0 and "</html>" in run.stdout, run.stderr[-2000:]
    return run.stdout


def instrumented(page: Path, out: Path) -> Path:
    """A copy of an Evidently page with EXPAND before </body> (the page itself is untouched)."""
    html = page.read_text("utf-8")
    end = html.rindex("</body>")
    out.write_text(html[:end] + EXPAND + html[end:], "utf-8")
    return out


def marks(dom: str) -> list[str]:
    """The payload codes whose script ran, with their source."""
    codes = re.findall(rf'{MARK}="(\d+)"', dom)
    return [f"{c} ({SOURCES.get(int(c), '?')})" for c in codes] or ([MARK] if MARK in dom else [])


def shown(text: str) -> str:
    """`text` as the DOM serialises it when shown as text."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def inject(sample: Path, out: Path) -> tuple[Path, Path, Path]:
    """The sample's CSVs and the built-in scheme file with payloads in every free-text value
    that reaches a page."""
    from training.segmentation.spec import default_path

    tx = pd.read_csv(sample / "transactions.csv", dtype=str)
    cu = pd.read_csv(sample / "customers.csv", dtype=str)
    # whole categories renamed: each becomes a feature column `category_share__<name>`; no
    # closes_attribute here (LightGBM refuses feature names with quotes)
    common = tx["category"].value_counts().index
    tx["category"] = tx["category"].replace(
        {common[1]: closes_script(11), common[2]: closes_script(12), common[3]: OPENS_COMMENT}
    )
    row = np.arange(len(tx))
    for i, value in enumerate((closes_script(21), closes_attribute(22), OPENS_COMMENT)):
        tx.loc[row % 7 == i, "product"] = value
    tx.loc[row % 11 == 0, "region"] = closes_script(31)
    crow = np.arange(len(cu))
    cu.loc[crow % 9 == 0, "region"] = closes_attribute(32)
    cu.loc[crow % 9 == 1, "region"] = closes_script(33)
    common = cu["industry"].value_counts().index
    cu["industry"] = cu["industry"].replace(
        {common[0]: closes_script(41), common[1]: closes_attribute(42), common[2]: OPENS_COMMENT}
    )
    ids = dict(
        zip(
            cu["customer_id"][3:6],
            (closes_script(51), closes_attribute(52), OPENS_COMMENT),
            strict=True,
        )
    )
    cu["customer_id"] = cu["customer_id"].replace(ids)
    tx["customer_id"] = tx["customer_id"].replace(ids)
    tx_path, cu_path = out / "transactions.csv", out / "customers.csv"
    tx.to_csv(tx_path, index=False)
    cu.to_csv(cu_path, index=False)

    # `custseg segment init` writes this file; TOML literal strings take the payloads as they are
    text = default_path().read_text("utf-8")
    edits = {
        'default = { key = "general", en = "general", zh = "一般客户", strategy = "maintain" }': (
            f"default = {{ key = '{closes_script(61)}', en = '{closes_attribute(62)}', "
            f"zh = '{closes_script(63)}', strategy = 'payload' }}"
        ),
        'description = "RFM thresholds: recency in days, frequency and monetary over the last '
        '180 days"': f"description = '{closes_script(64)}'",
        'key = "high_value"\nen = "high value"': (
            f"key = '{closes_attribute(65)}'\nen = '{OPENS_COMMENT}'"
        ),
        'columns = ["age_band", "province"]\ntop = 6\nserve = false': (
            'columns = ["industry", "province"]\ntop = 6\nserve = true'  # keys from industries
        ),
    }
    for old, new in edits.items():
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    # without the clustering scheme (Optuna tuning; its segment names are not free text)
    start = text.index("# ---- Behavioural clustering")
    text = text[:start] + text[text.index("# ---- Strategy table") :]
    text += (
        "\n[strategies.payload]\n"
        f"direction = '{closes_script(71)}'\ndirection_zh = '{closes_attribute(72)}'\n"
        f"actions = '{OPENS_COMMENT}'\nactions_zh = '{closes_script(73)}'\n"
        f"owner = '{closes_attribute(74)}'\n"
    )
    schemes = out / "schemes.toml"
    schemes.write_text(text, "utf-8")
    return tx_path, cu_path, schemes


def monitoring_pages(r, out: Path) -> dict[str, Path]:
    """drift_*.html and monitor_report.html from the run's own data: features 90 days before its
    cutoff (reference) against its feature table (current), both segmented by its schemes."""
    from features.pipeline import features_as_of
    from monitoring.health import segment_health
    from monitoring.measure import feature_columns
    from monitoring.report import write_report

    current = r.features.table
    categories = current.attrs["categories"]  # as monitoring passes the reference's
    ref_day = r.features.as_of - timedelta(days=90)
    reference, _ = features_as_of(
        r.features.transactions, r.features.customers, ref_day, categories=categories
    )
    served = {s.name: s for s in r.fitted if s.serve and s.name in ("rfm_rules", "demographic")}
    frames = {}
    for side, table in (("reference", reference), ("current", current)):
        frame = table.copy()
        for name, scheme in served.items():
            frame[f"segment_{name}"] = scheme.assign(table)
        frame["repurchased"] = (table["recency_days"] < 60).astype(int)
        frames[side] = frame
    numeric, categorical = feature_columns(reference)
    drift = detect_drift(
        frames["reference"],
        frames["current"],
        numeric=numeric,
        categorical=categorical,
        predictions=[f"segment_{name}" for name in served],
        target=["repurchased"],
    )
    pages = drift.save_html(out)

    health, history = {}, []
    for name in served:
        h = segment_health(
            frames["reference"].rename(columns={f"segment_{name}": "segment"}),
            frames["current"].rename(columns={f"segment_{name}": "segment"}),
            segment="segment",
            repurchased="repurchased",
            reference_as_of=ref_day,
            current_as_of=r.features.as_of,
            audit=r.features.result.audit,
        )
        health[name] = h.to_dict()
        for seg in health[name]["segments"]:
            for side, day in (("reference", ref_day), ("current", r.features.as_of)):
                history.append(
                    {
                        "as_of": day,
                        "scheme": name,
                        "segment": seg["segment"],
                        "share": seg[f"{side}_share"],
                        "revenue_share": seg[f"{side}_revenue_share"],
                    }
                )
    summary = {  # the keys monitoring.summary.summary writes
        "status": "unhealthy",
        "as_of": str(r.features.as_of),
        "reference_as_of": str(ref_day),
        "reference_run": None,
        "customers": {"reference": len(reference), "current": len(current)},
        "drift": {**drift.to_dict(), "threshold_share": 0.3, "triggered": True},
        "health": health,
        "segment_names": {
            name: {seg.key: f"{seg.name} / {seg.name_zh}" for seg in s.segments}
            for name, s in served.items()
        },
        "trigger": {"needed": True, "reasons": [f"drifted: {closes_script(81)}"]},
        "notes": [closes_attribute(82)],
        "reevaluation": {
            "rfm_rules": {
                "promoted": False,
                "reason": f"kept: {closes_script(83)}",
                "version": None,
                "champion": {"separation": 0.3},
                "challenger": {"separation": 0.2},
            }
        },
        "reports": {k: Path(v).name for k, v in pages.items()},
    }
    summary = json.loads(json.dumps(summary, default=str))  # through JSON like summary.json
    report = write_report(summary, pd.DataFrame(history), out)
    return {**{f"drift_{k}": v for k, v in pages.items()}, "monitor_report": report}


@pytest.mark.slow
def test_no_script_of_the_data_runs_in_any_page_custseg_writes(tmp_path):
    from custseg.sample import SampleConfig, generate, write
    from training.pipeline import Configs, Inputs, run
    from training.prediction.config import PredictionConfig

    chromium()  # skip before the work when it cannot be checked
    write(generate(SampleConfig(customers=600, seed=7)), tmp_path / "sample")
    tx, cu, schemes = inject(tmp_path / "sample", tmp_path)
    fast = Configs(prediction=PredictionConfig(trials=2, tune_rows=1000))
    # untracked: MLflow refuses parameter names with these segment keys (see the report)
    r = run(Inputs(tx, cu), tmp_path / "run", configs=fast, schemes=schemes, trials=2, track=None)
    pages = {"audit": r.paths["audit_html"], "report": r.paths["report"]}
    pages |= monitoring_pages(r, tmp_path / "monitor")
    assert set(pages) == {
        "audit",
        "report",
        "drift_features",
        "drift_predictions",
        "drift_target",
        "monitor_report",
    }

    # the control: Evidently's own page of a category value like ours, as Evidently writes it
    control = detect_drift(
        pd.DataFrame({"x": np.arange(40.0), "c": ["a", closes_script(90)] * 20}),
        pd.DataFrame({"x": np.arange(40.0) + 1, "c": ["a", "b"] * 20}),
        numeric=["x"],
        categorical=["c"],
    )
    unsafe = tmp_path / "unsafe.html"
    unsafe.write_text(control._reports["features"].get_html_str(as_iframe=False), "utf-8")
    assert scan(unsafe.read_text("utf-8")).handlers

    # statically: custseg's own pages have no script at all, Evidently's only its own
    for name, path in pages.items():
        found = scan(path.read_text("utf-8"))
        assert found.problems(scripts_allowed=name.startswith("drift_")) == [], name

    opened = {name: path for name, path in pages.items() if not name.startswith("drift_")}
    for name, path in pages.items():
        if name.startswith("drift_"):
            opened[name] = instrumented(path, tmp_path / f"{name}.opened.html")
    opened["control"] = unsafe
    with ThreadPoolExecutor(max_workers=3) as pool:
        doms = dict(zip(opened, pool.map(dom_after_scripts, opened.values()), strict=True))

    assert marks(doms.pop("control")) == ["90 (control page)"]  # the check sees a breakout
    for name, dom in doms.items():
        assert marks(dom) == [], f"{name}: script of the data ran: {marks(dom)}"
    # the pages rendered, payloads shown as text
    for name in ("drift_features", "drift_predictions", "drift_target"):
        dom = doms[name]
        assert 'class="light"' in dom and "Dataset Drift" in dom, name  # the dashboard drew
        assert 'data-expanded="0"' not in dom and 'data-plots="0"' not in dom, name
        assert "data-expanded=" in dom and "data-plots=" in dom and 'data-tests-tab="1"' in dom, (
            name
        )
        assert "Value Drift for column" in dom, name  # the Tests tab drew
    assert 'data-shown="41 42 61 65"' in doms["drift_predictions"]  # segment keys, in plots
    text = pages["drift_features"].read_text("utf-8")
    for code in (11, 42):  # a category (its share column's name, spelt safe or not), an industry
        assert f"pwned={code}" in text or f"pwned_3D{code}" in text, SOURCES[code]
    expected = {
        "audit": {31, 32, 33},
        "report": {41, 42, 62, 63, 64, 71, 72, 73, 74},
        "monitor_report": {41, 42, 61, 62, 63, 65, 81, 82, 83},
    }
    for name, codes in expected.items():  # no script on these pages: every hit is text
        assert {int(c) for c in re.findall(r"pwned=(\d+)", doms[name])} >= codes, name
    assert shown(OPENS_COMMENT) in doms["report"] and shown(OPENS_COMMENT) in doms["monitor_report"]
