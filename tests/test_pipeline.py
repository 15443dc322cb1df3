"""The jobs as functions (what the commands call): the main job without tracking, and the
predictors alone (`custseg train`) tracked in a real MLflow store, from a log or a snapshot."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from tests.conftest import run_cli
from training.pipeline import Configs, Inputs, run
from training.prediction.config import PredictionConfig

AS_OF = date(2026, 3, 31)
FAST = Configs(prediction=PredictionConfig(trials=2, tune_rows=1000))


def _inputs(sample_dir) -> Inputs:
    return Inputs(sample_dir / "transactions.csv", sample_dir / "customers.csv")


@pytest.mark.slow
def test_the_main_job_is_a_function_a_test_can_call(sample_dir, tmp_path):
    r = run(_inputs(sample_dir), tmp_path, as_of=AS_OF, configs=FAST, trials=2, track=None)
    assert r.features.as_of == AS_OF and r.run_id is None and not r.segmenters
    scores = pd.read_csv(r.paths["scores"])
    assert len(scores) == len(r.features.table) > 1000
    assert {"repurchase_probability", "churn_probability"} <= set(scores.columns)
    assert {f"segment_{s.name}" for s in r.fitted} <= set(scores.columns)
    # the last columns: each customer's next-best products, never one it bought
    assert list(scores.columns[-3:]) == ["next_best_1", "next_best_2", "next_best_3"]
    bought = r.features.result.transactions.groupby("customer_id")["product"].agg(set)
    picks = scores.set_index(scores["customer_id"].astype(str))["next_best_1"].dropna()
    assert len(picks) > 1000
    assert not any(p in bought.get(c, set()) for c, p in picks.items())
    assert "What to offer" in r.paths["report"].read_text("utf-8")
    for target, p in r.predictions.items():  # untracked: nothing registered, nothing promoted
        assert not p.decision.promote and "not registered (--no-track)" in p.decision.reason
        assert scores[f"{target}_probability"].between(0, 1).all()
    for name in ("features", "segments", "profiles", "report", "audit_html"):
        assert r.paths[name].stat().st_size > 0, name


@pytest.mark.slow
def test_custseg_train_registers_the_predictors_alone(sample_dir, tmp_path, capsys):
    import mlflow

    from core import catalog, paths
    from training.scores import VALUE_COLUMNS

    args = ["-t", str(sample_dir / "transactions.csv"), "-c", str(sample_dir / "customers.csv")]
    code, _, err = run_cli(["train", *args, "--as-of", str(AS_OF), "--trials", "2"], capsys)
    assert code == 0, err
    scores = pd.read_csv(catalog.train_dir() / catalog.SCORES)
    assert list(scores.columns) == [
        "customer_id",
        "repurchase_probability",
        "repurchase_model",
        "churn_probability",
        "churn_model",
        *VALUE_COLUMNS,
        "value_model",
        "active_tags",
    ]
    # each target names the model that scored it: the registered, promoted version
    assert (
        scores["repurchase_model"]
        .str.fullmatch(r"(lightgbm|recency_rule|logistic_rfm|bg_nbd) v1")
        .all()
    )
    assert (catalog.train_dir() / catalog.RUN_REPORT).stat().st_size > 0
    client = mlflow.MlflowClient(paths.tracking_uri())
    registered = {m.name for m in client.search_registered_models()}
    predictors = {catalog.predictor_name(t) for t in ("repurchase", "churn", "value")}
    assert registered == predictors | {catalog.model_set_name()}  # no segmenter: the predictors
    assert "ROC-AUC" in err and "registered v1" in err
    runs = mlflow.search_runs(experiment_names=[catalog.EXPERIMENT], output_format="list")
    assert any(r.info.run_name == f"train {AS_OF} transactions" for r in runs)

    # the same from a snapshot of the log: its as-of is the cutoff, a different --as-of is refused
    snap = tmp_path / "f.parquet"
    code, _, err = run_cli(["features", *args, "--as-of", str(AS_OF), "-o", str(snap)], capsys)
    assert code == 0, err
    out = tmp_path / "from_snapshot"
    code, _, err = run_cli(
        ["train", *args, "-f", str(snap), "--trials", "2", "--no-track", "-o", str(out)], capsys
    )
    assert code == 0, err
    assert len(pd.read_csv(out / catalog.SCORES)) == len(scores)
    code, _, err = run_cli(["train", *args, "-f", str(snap), "--as-of", "2026-02-28"], capsys)
    assert code == 2 and "the snapshot is as of 2026-03-31, not --as-of 2026-02-28" in err
    # a snapshot with customer attributes, a log without its customer table: refused, not
    # predictors trained on other columns than the snapshot's
    alone = ["-t", str(sample_dir / "transactions.csv")]
    code, _, err = run_cli(["train", *alone, "-f", str(snap), "--no-track"], capsys)
    assert code == 2 and "only in the snapshot: " in err and "--customers" in err
