"""`custseg monitor` end to end over a real MLflow store and a real serving process: champions
fitted as of 2026-03-31, new data up to 2026-06-30 (the same customers three months on, with and
without injected drift), exit codes, outputs, re-evaluation and the service picking it up."""

from __future__ import annotations

import json
import time
import urllib.request

import numpy as np
import pandas as pd
import pytest

from custseg.process import running
from monitoring.health import PARTS
from tests.conftest import free_port, run_job, serve_env

pytestmark = pytest.mark.slow
REFERENCE_AS_OF = "2026-03-31"


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """A state folder whose champions were fitted as of 2026-03-31 on the sample data."""
    home = tmp_path_factory.mktemp("monitor-home")
    proc = run_job(
        home, "run", "--sample-customers", "2000", "--trials", "3", "--as-of", REFERENCE_AS_OF
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return home


@pytest.fixture(scope="module")
def drifted(fitted):
    """The same log, where after the reference date online orders vanish (all offline) and
    the customers of the largest province double their spend."""
    tx = pd.read_csv(fitted / "sample" / "transactions.csv", dtype=str)
    cu = pd.read_csv(fitted / "sample" / "customers.csv", dtype=str)
    after = pd.to_datetime(tx["order_date"], format="mixed", errors="coerce") > REFERENCE_AS_OF
    after = after.to_numpy()
    province = cu["region"].dropna().str.split("-").str[0].value_counts().index[0]
    ids = cu.loc[cu["region"].fillna("").str.startswith(province), "customer_id"]
    amount = pd.to_numeric(tx["amount"], errors="coerce")
    doubled = after & tx["customer_id"].isin(ids).to_numpy() & amount.notna().to_numpy()
    tx.loc[doubled, "amount"] = (amount[doubled] * 2).round(2).astype(str)
    tx.loc[after & tx["channel"].isin(["online", "线上", "APP"]).to_numpy(), "channel"] = "offline"
    path = fitted / "drifted.csv"
    tx.to_csv(path, index=False)
    return path


def monitor(home, tx, out, *extra):
    return run_job(
        home,
        "monitor",
        "-t",
        str(tx),
        "-c",
        str(home / "sample" / "customers.csv"),
        "--out",
        str(out),
        *extra,
    )


@pytest.fixture(scope="module")
def resampled(fitted):
    """A random 70% of the customers, their whole history: the same population, no drift."""
    tx = pd.read_csv(fitted / "sample" / "transactions.csv", dtype=str)
    ids = tx["customer_id"].drop_duplicates().sample(frac=0.7, random_state=1)
    path = fitted / "resampled.csv"
    tx[tx["customer_id"].isin(ids)].to_csv(path, index=False)
    return path


def test_resampled_stable_data_is_healthy_and_everything_is_written(fitted, resampled, tmp_path):
    import mlflow

    proc = monitor(fitted, resampled, tmp_path, "--as-of", REFERENCE_AS_OF)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == "healthy" and not summary["trigger"]["needed"]
    assert summary["reference_as_of"] == REFERENCE_AS_OF == summary["as_of"]
    assert summary["drift"]["share_drifted"] < 0.1, summary["drift"]["drifted_features"]
    health = summary["health"]["rfm_rules"]
    assert health["score"] >= 90
    parts = {p["name"]: p for p in health["parts"]}
    assert set(parts) == set(PARTS)
    # a few customers move: cleaning thresholds (outlier mean) come from the resampled log
    assert parts["freshness"]["detail"]["age_days"] == 0 and parts["stability"]["score"] >= 95
    assert {d["column"] for d in summary["drift"]["predictions"]} >= {
        "segment_rfm_rules",
        "churn_probability",
        "clv",  # the value champion's answers are compared like the other models'
        "p_alive",
        "segment_value_tiers",
    }
    assert "clv" not in {d["column"] for d in summary["drift"]["features"]}
    assert summary["health"]["value_tiers"]["score"] >= 90  # tier migration: its stability
    for name in ("summary.json", "monitor_report.html", "drift_features.html"):
        assert (tmp_path / name).stat().st_size > 1000, name
    uri = f"sqlite:///{fitted / 'mlflow.db'}"
    client = mlflow.MlflowClient(uri)
    runs = client.search_runs(
        [client.get_experiment_by_name("custseg").experiment_id],
        filter_string="tags.`custseg.stage` = 'monitoring'",
        order_by=["attributes.start_time DESC"],
    )
    assert len(runs) >= 1
    assert runs[0].data.metrics["health_rfm_rules"] == pytest.approx(health["score"])
    files = {a.path for a in client.list_artifacts(runs[0].info.run_id, "monitoring")}
    assert "monitoring/monitor_report.html" in files and "monitoring/summary.json" in files


def test_a_reference_without_the_value_columns_gets_them_from_the_value_champion(
    fitted, resampled, monkeypatch
):
    """A reference logged before the value model existed has no clv: the value champion
    computes it (as of the reference's date) for both sides, so value tiers and CLV x activity
    are assigned, clv drift is measured and tier migration shows in value tiers' health."""
    from dataclasses import replace
    from datetime import date

    from features.stage import read_inputs
    from monitoring.measure import measure
    from monitoring.reference import champion_references
    from serving.models import load_champions
    from training.pipeline import Configs
    from training.prediction.clv import SEGMENT_INPUTS

    monkeypatch.setenv("CUSTSEG_HOME", str(fitted))
    uri = f"sqlite:///{fitted / 'mlflow.db'}"
    models = load_champions(uri)
    assert models.value is not None and "value_tiers" in models.segmenters
    logged = champion_references(models.versions, uri)
    assert "clv" in logged["value_tiers"].table  # `custseg run` logs what the schemes read
    bare = {}
    for r in logged.values():  # schemes fitted together share one reference, kept so
        bare.setdefault(id(r), replace(r, table=r.table.drop(columns=list(SEGMENT_INPUTS))))
    references = {s: bare[id(r)] for s, r in logged.items()}
    cfg = Configs()
    tx, cust = read_inputs(resampled, fitted / "sample" / "customers.csv", {}, cfg.cleaning, None)
    as_of = date.fromisoformat(REFERENCE_AS_OF)
    m = measure(tx, cust, as_of, models, references, cfg.cleaning, cfg.features)
    predictions = {d.column for d in m.drift.predictions}
    assert {"clv", "expected_orders", "p_alive", "segment_value_tiers"} <= predictions
    assert not {d.column for d in m.drift.features} & set(SEGMENT_INPUTS)
    assert {"value_tiers", "clv_activity"} <= set(m.health)
    assert m.health["value_tiers"].part("stability").score >= 95
    # the champion's clv of the bare reference is the one logged: the same tiers
    tiers = models.segmenters["value_tiers"].assigner
    assert (m.segments["value_tiers"][0] == tiers.assign(logged["value_tiers"].table)).all()


def test_injected_drift_is_detected_and_named(fitted, drifted, tmp_path):
    """Three months on, the same log with and without the injection: online orders vanishing
    is named only where it was injected."""
    names = {}
    for label, tx in (("as is", fitted / "sample" / "transactions.csv"), ("drifted", drifted)):
        proc = monitor(fitted, tx, tmp_path / label.replace(" ", "_"))
        assert proc.returncode in (0, 1), proc.stderr[-3000:]
        summary = json.loads((tmp_path / label.replace(" ", "_") / "summary.json").read_text())
        names[label] = summary["drift"]["drifted_features"]
        assert summary["as_of"] == "2026-06-30"
    assert "online_share" in names["drifted"]
    assert "online_share" not in names["as is"]


def test_bad_input_exits_2_with_a_message(fitted, tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("customer_id,order_date,amount\n")
    proc = monitor(fitted, empty, tmp_path / "out")
    assert proc.returncode == 2
    assert "custseg: error:" in proc.stderr and "Traceback" not in proc.stderr
    proc = monitor(
        fitted, fitted / "sample" / "transactions.csv", tmp_path / "o", "--as-of", "2026-01-01"
    )
    assert proc.returncode == 2 and "before the champions' reference date" in proc.stderr
    tx = fitted / "sample" / "transactions.csv"
    proc = run_job(fitted, "monitor", "-t", str(tx), "--out", str(tmp_path / "no_customers"))
    assert proc.returncode == 2 and "pass it with --customers" in proc.stderr, proc.stderr[-800:]


def test_data_that_cannot_be_compared_is_refused_or_flagged(fitted, tmp_path):
    """Other customer ids, a log without its history, an as-of long after the data: an error
    (exit 2) rather than made-up drift; a customer table of other customers: unhealthy."""
    tx = pd.read_csv(fitted / "sample" / "transactions.csv", dtype=str)
    cu = pd.read_csv(fitted / "sample" / "customers.csv", dtype=str)
    other = tmp_path / "other.csv"
    tx.assign(customer_id="X" + tx["customer_id"]).to_csv(other, index=False)
    proc = monitor(fitted, other, tmp_path / "o1")
    assert proc.returncode == 2 and "none of the reference's" in proc.stderr, proc.stderr[-2000:]
    recent = tmp_path / "recent.csv"
    days = pd.to_datetime(tx["order_date"], format="mixed", errors="coerce")
    tx[days > "2026-04-15"].to_csv(recent, index=False)
    proc = monitor(fitted, recent, tmp_path / "o2")
    assert proc.returncode == 2 and "after the reference date" in proc.stderr, proc.stderr[-2000:]
    proc = monitor(
        fitted, fitted / "sample" / "transactions.csv", tmp_path / "o3", "--as-of", "2026-09-30"
    )  # 92 days after the sample's last order (a date after today is refused earlier)
    assert proc.returncode == 2 and "days after the last order" in proc.stderr
    strangers = tmp_path / "strangers.csv"
    cu.assign(customer_id="X" + cu["customer_id"]).to_csv(strangers, index=False)
    proc = run_job(
        fitted,
        "monitor",
        "-t",
        str(fitted / "sample" / "transactions.csv"),
        "-c",
        str(strangers),
        "--as-of",
        REFERENCE_AS_OF,
        "--out",
        str(tmp_path / "o4"),
    )
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    summary = json.loads((tmp_path / "o4" / "summary.json").read_text())
    assert any("customer table covers only" in r for r in summary["trigger"]["reasons"])


def served(base: str, rows: list[dict], name: str, want: str, timeout: float = 60) -> set[str]:
    deadline = time.monotonic() + timeout
    body = json.dumps({"customers": rows}).encode()
    while True:
        seen = set()
        for _ in range(10):
            req = urllib.request.Request(
                base + "/predict", body, {"content-type": "application/json"}
            )
            with urllib.request.urlopen(req, timeout=30) as r:
                seen.add(json.loads(r.read())["versions"][name])
        if seen == {want} or time.monotonic() > deadline:
            return seen
        time.sleep(0.5)


def test_reevaluation_promotes_only_better_schemes_and_the_service_uses_them(
    fitted, drifted, tmp_path
):
    """Health threshold raised to 85 so the run is unhealthy: every serving scheme is refitted
    on the current data. Fixed rules refit to the same segments (never promoted); a scheme is
    promoted only with more wins than losses, and the running service then answers with it."""
    import mlflow

    strict = tmp_path / "strict.toml"
    strict.write_text("[monitoring]\nthreshold = 85\n")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = serve_env(fitted, CUSTSEG_WATCH_SECONDS="1", CUSTSEG_WORKERS="1")
    features = pd.read_parquet(fitted / "output" / "features.parquet")
    with running(["serve", "--port", str(port)], env, base + "/readyz", fitted / "mon-serve.log"):
        with urllib.request.urlopen(base + "/metadata") as r:
            cols = [f["name"] for f in json.loads(r.read())["features"]]
        rows = json.loads(features[["customer_id", *cols]].head(3).to_json(orient="records"))
        proc = monitor(fitted, drifted, tmp_path / "re", "--config", str(strict), "--reevaluate")
        assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
        summary = json.loads((tmp_path / "re" / "summary.json").read_text())
        verdicts = summary["reevaluation"]
        assert set(verdicts) == set(summary["health"])
        rules = verdicts["rfm_rules"]
        assert not rules["promoted"] and rules["champion"] == rules["challenger"]
        client = mlflow.MlflowClient(f"sqlite:///{fitted / 'mlflow.db'}")
        for scheme, v in verdicts.items():
            name = f"custseg-segmenter-{scheme}"
            champion = str(client.get_model_version_by_alias(name, "champion").version)
            wins = sum(
                v["challenger"][k] is not None
                and v["champion"][k] is not None
                and v["challenger"][k] > v["champion"][k] + 0.01
                for k in v["champion"]
            )
            losses = sum(
                v["challenger"][k] is not None
                and v["champion"][k] is not None
                and v["challenger"][k] < v["champion"][k] - 0.01
                for k in v["champion"]
            )
            assert v["promoted"] == (wins > losses), (scheme, v)
            if v["promoted"]:  # registered, champion, with its decision
                assert champion == v["version"]
                tags = client.get_model_version(name, v["version"]).tags
                assert tags["custseg.reevaluation.reason"] == v["reason"]
            elif v["reason"].startswith("not refitted"):  # e.g. a tree needs the full log
                assert v["version"] is None and not v["champion"]
            else:  # the champion held (tagged so); the loser is not registered
                assert v["version"] is None
                tags = client.get_model_version(name, champion).tags
                assert tags["custseg.reevaluation.kept"] == v["reason"]
        promoted = [s for s, v in verdicts.items() if v["promoted"]]
        assert promoted, f"nothing promoted: {verdicts}"
        name = f"custseg-segmenter-{promoted[0]}"
        want = verdicts[promoted[0]]["version"]
        assert served(base, rows, name, want) == {want}

    # re-evaluated on today's data, promoted or held: today is every scheme's reference now,
    # so the next run on the same data is fresh and has nothing to re-evaluate
    proc = monitor(fitted, drifted, tmp_path / "next")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads((tmp_path / "next" / "summary.json").read_text())
    assert {r["as_of"] for r in summary["references"].values()} == {"2026-06-30"}
    for scheme in verdicts:
        assert np.isclose(summary["health"][scheme]["parts"][1]["score"], 100)  # fresh
