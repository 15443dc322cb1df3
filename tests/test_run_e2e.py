"""The main job end to end, as `make run` runs it: a real subprocess, a real MLflow SQLite store."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tests.conftest import run_job


@pytest.mark.slow
def test_custseg_run_cleans_sample_data_and_tracks_it_in_mlflow(tmp_path):
    home, out = tmp_path / "home", tmp_path / "out"
    proc = run_job(
        home,
        "run",
        "--sample-customers",
        "1500",
        "--out",
        str(out),
        "--as-of",
        "2026-03-31",
        "--trials",
        "4",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    for name in (
        "transactions.parquet",
        "customers.parquet",
        "id_map.parquet",
        "changes.parquet",
        "audit.json",
        "audit.html",
        "features.parquet",
        "segments.parquet",
        "profiles.csv",
        "scores.csv",
        "report.html",
    ):
        assert (out / name).stat().st_size > 0, name
    audit = json.loads((out / "audit.json").read_text())
    assert all(t["balanced"] for t in audit["tables"].values())
    assert audit["config"]["reference_date"] == "2026-03-31"  # cleaning is as of the cutoff
    assert audit["tables"]["transactions"]["rows_after_as_of"] > 0

    from features.snapshot import read_snapshot

    features, meta = read_snapshot(out / "features.parquet")
    assert meta["as_of"] == "2026-03-31" and len(features) > 1000
    assert features["recency_days"].min() >= 0

    import mlflow
    from mlflow import MlflowClient

    uri = f"sqlite:///{home / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    runs = mlflow.search_runs(experiment_names=["custseg"], output_format="list")
    main = [r for r in runs if r.data.tags.get("custseg.stage") == "run"]
    assert len(main) == 1
    run = main[0]
    schemes = {
        r.data.tags["custseg.scheme"]
        for r in runs
        if r.data.tags.get("custseg.stage") == "segmentation"
        and r.data.tags["mlflow.parentRunId"] == run.info.run_id
    }
    segments = pd.read_parquet(out / "segments.parquet")
    assert {f"segment_{s}" for s in schemes} == set(segments.columns) - {"customer_id"}
    assert len(schemes) == 9 and len(segments) == len(features)  # repurchase_tree included
    assert (
        run.data.metrics["transactions.input_rows"] == audit["tables"]["transactions"]["input_rows"]
    )
    assert run.data.metrics["customers.duplicate_customer.drop"] > 0
    assert run.data.params["cleaning.extreme_factor"] == "10.0"
    assert run.data.params["features.definition_hash"] == meta["definition_hash"]
    assert run.data.metrics["features.customers"] == len(features)
    artifacts = {a.path for a in MlflowClient(uri).list_artifacts(run.info.run_id, "cleaning")}
    assert artifacts == {"cleaning/audit.json", "cleaning/audit.html"}
    assert str(home) in run.info.artifact_uri  # the project's store, not the current directory

    # scores: one row per customer with an order on or before as-of
    scores = pd.read_csv(out / "scores.csv", dtype={"customer_id": str})
    assert list(scores.columns[:5]) == [
        "customer_id",
        "repurchase_probability",
        "repurchase_model",
        "churn_probability",
        "churn_model",
    ]
    value = [
        "clv",
        "expected_orders",
        "expected_order_value",
        "next_order_date",
        "days_to_next_order",
        "avg_days_between_orders",
        "p_alive",
        "value_model",
        "value_tier",
    ]
    assert list(scores.columns[5:14]) == value
    assert (scores["clv"] >= 0).all() and scores["p_alive"].between(0, 1).all()
    assert (pd.to_datetime(scores["next_order_date"]) > pd.Timestamp("2026-03-31")).all()
    assert set(scores["value_tier"]) == set(scores["segment_value_tiers_name"])
    # dynamic tags active as of the cutoff, `;`-joined (the seed thresholds: few on the sample)
    assert scores.columns[14] == "active_tags"
    tags = [t for t in features.columns if t.startswith("tag_")]
    assert (
        tags
        and scores["active_tags"]
        .fillna("")
        .str.split(";")
        .explode()
        .isin(["", *[t.removeprefix("tag_") for t in tags]])
        .all()
    )
    assert list(scores.columns[15:-3]) == [
        f"segment_{s}{suffix}"
        for s in segments.columns[1:].str.removeprefix("segment_")
        for suffix in ("", "_name", "_name_zh", "_strategy")
    ]
    assert list(scores.columns[-3:]) == ["next_best_1", "next_best_2", "next_best_3"]
    assert scores.filter(like="_name_zh").notna().all().all()
    assert len(scores) == len(features) and scores["customer_id"].is_unique
    for col in ("repurchase_probability", "churn_probability"):
        assert scores[col].between(0, 1).all(), col
    # higher churn probability goes with longer recency, overall
    merged = scores.merge(features[["customer_id", "recency_days"]], on="customer_id")
    assert merged["churn_probability"].corr(merged["recency_days"], method="spearman") > 0.5

    # both models: a run each with test and baseline metrics, plots, a registered version
    predictions = {
        r.data.tags["custseg.target"]: r
        for r in runs
        if r.data.tags.get("custseg.stage") == "prediction"
    }
    assert set(predictions) == {"repurchase", "churn", "value"}
    value_run = predictions.pop("value")
    assert (
        "test.lightgbm.spearman" in value_run.data.metrics
        or value_run.data.params["window_mode"] == "unsupervised"
    )
    assert value_run.data.tags["custseg.model_version"]
    client = MlflowClient(uri)
    for target, r in predictions.items():
        for m in (
            "test.roc_auc",
            "test.pr_auc",
            "test.brier",
            "test.log_loss",
            "test.lift_top_decile",
            "test.capture_top_decile",
            "baseline.recency_rule.roc_auc",
            "baseline.logistic_rfm.roc_auc",
            "baseline.bg_nbd.roc_auc",
            "vs.bg_nbd.roc_auc.ci_low",
            "vs.logistic_rfm.log_loss.ci_high",
        ):
            assert m in r.data.metrics, (target, m)
        kind = r.data.params["chosen_model"]
        assert r.data.tags["custseg.model_kind"] == kind
        # the model that scored is the chosen one, refitted on the freshest labels
        assert (scores[f"{target}_model"] == f"{kind} v1").all() == promoted_tag(r)
        assert r.data.params["test_cutoff"] in r.data.params["refit_cutoffs"]
        assert r.data.tags["custseg.decision"]
        plots = {a.path for a in client.list_artifacts(r.info.run_id, "plots")}
        assert {"plots/calibration.png", "plots/drivers.png", "plots/gains.png"} <= plots
        versions = client.search_model_versions(f"name = 'custseg-{target}'")
        assert len(versions) == 1
        promoted = r.data.tags["custseg.promoted"] == "true"
        aliases = client.get_registered_model(f"custseg-{target}").aliases
        assert ("champion" in aliases) == promoted

    report = (out / "report.html").read_text("utf-8")
    for text in (
        "Segments",
        "Predictions",
        "recency rule",
        "BG/NBD",
        "Top drivers",
        "mean |contribution| (log-odds)",
        "BG/NBD prior (log-odds)",  # drivers by readable names
        "defined by",
        "recency_days ≤ 30 and orders_180d ≥ 5",  # a rule segment's definition
        "in standard deviations",  # the clusters' definitions
        "LightGBM − this, ROC-AUC [95% CI]",
        "refitted on the labelled cutoffs",
        "data:image/png;base64",
    ):
        assert text in report, text


def promoted_tag(run) -> bool:
    return run.data.tags["custseg.promoted"] == "true"
