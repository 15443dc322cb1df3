"""Every target gets a model and every customer a probability: a log too short for labelled
windows is scored by BG/NBD alone, and a model the promotion gate refuses never scores (the
champion does)."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from tests.conftest import run_cli
from training.pipeline import Inputs, train

AS_OF = date(2026, 3, 31)  # as in test_pipeline: the sample runs on past it
TARGETS = ("repurchase", "churn")


def _last_days(sample_dir, out, days: int) -> Inputs:
    """The sample's orders of the `days` days up to AS_OF (the raw rows, untouched), and its
    customer table, written to `out`."""
    from features.parsing import parse_dates

    raw = pd.read_csv(sample_dir / "transactions.csv", dtype=str, keep_default_na=False)
    when = parse_dates(raw["order_date"]).values
    keep = (when > pd.Timestamp(AS_OF - timedelta(days=days))) & (when <= pd.Timestamp(AS_OF))
    out.mkdir(parents=True, exist_ok=True)
    raw[keep.fillna(False).to_numpy(bool)].to_csv(out / "transactions.csv", index=False)
    customers = pd.read_csv(sample_dir / "customers.csv", dtype=str, keep_default_na=False)
    customers.to_csv(out / "customers.csv", index=False)
    return Inputs(out / "transactions.csv", out / "customers.csv")


@pytest.mark.slow
def test_a_60_day_log_gets_bg_nbd_probabilities_for_every_customer(sample_dir, tmp_path):
    from core import catalog
    from training.prediction.windows import UNSUPERVISED

    inputs = _last_days(sample_dir, tmp_path / "log", 60)
    r = train(inputs, tmp_path / "out", as_of=AS_OF, track=None)

    scores = pd.read_csv(r.paths["scores"], dtype={"customer_id": str})
    assert scores.columns[:5].tolist() == [
        "customer_id",
        "repurchase_probability",
        "repurchase_model",
        "churn_probability",
        "churn_model",
    ]
    table = r.features.table
    assert len(scores) == len(table) > 500 and scores["customer_id"].is_unique
    assert set(scores["customer_id"]) == set(table["customer_id"].astype(str))
    assert not r.skipped
    for target in TARGETS:
        p = scores[f"{target}_probability"]
        assert p.notna().all() and ((p > 0) & (p < 1)).all(), target
        assert p.nunique() > 10, f"{target}: one constant for everybody"
        assert (scores[f"{target}_model"] == "bg_nbd (not registered)").all(), target
        result = r.predictions[target]
        assert result.plan.mode == UNSUPERVISED and result.chosen == "bg_nbd"
        assert not result.plan.train and result.plan.valid is None
        # the note says why: the log is too short for labelled windows
        why = [n for n in r.notes if n.startswith(f"{target}:") and "BG/NBD" in n]
        assert why and "labelled training windows" in why[0] and "need at least" in why[0]
    assert (tmp_path / "out" / catalog.RUN_REPORT).stat().st_size > 0

    # BG/NBD ranks by recency: the more recent a customer's last order, the likelier a new one
    recency = table.set_index(table["customer_id"].astype(str))["recency_days"]
    joined = scores.set_index("customer_id").join(recency.rename("recency_days"))
    rho = joined["repurchase_probability"].corr(joined["recency_days"], method="spearman")
    assert rho < -0.2, rho
    rho_churn = joined["churn_probability"].corr(joined["recency_days"], method="spearman")
    assert rho_churn > 0.2, rho_churn


def _train(args: list[str], capsys, *extra: str) -> pd.DataFrame:
    from core import catalog

    code, _, err = run_cli(["train", *args, "--as-of", str(AS_OF), "--trials", "2", *extra], capsys)
    assert code == 0, err
    return pd.read_csv(catalog.train_dir() / catalog.SCORES, dtype={"customer_id": str})


@pytest.mark.slow
def test_a_model_the_gate_refuses_never_scores(sample_dir, tmp_path, capsys):
    import mlflow

    from core import catalog, paths
    from core.registry import served

    args = ["-t", str(sample_dir / "transactions.csv"), "-c", str(sample_dir / "customers.csv")]
    first = _train(args, capsys)
    kinds = {}
    for target in TARGETS:
        labels = first[f"{target}_model"].unique()
        assert len(labels) == 1 and labels[0].endswith(" v1"), (target, labels)
        kinds[target] = labels[0].removesuffix(" v1")

    config = tmp_path / "custseg.toml"
    config.write_text("[prediction]\ngate_margin = 10.0\n")  # nothing wins by that much
    second = _train(args, capsys, "--config", str(config))

    assert second["customer_id"].tolist() == first["customer_id"].tolist()
    for target in TARGETS:
        assert (second[f"{target}_model"] == f"{kinds[target]} v1 (champion)").all(), target
        np.testing.assert_allclose(
            second[f"{target}_probability"], first[f"{target}_probability"], atol=1e-6
        )

    client = mlflow.MlflowClient(paths.tracking_uri())
    serving = served(client)
    for target in TARGETS:
        name = catalog.predictor_name(target)
        versions = {str(v.version) for v in client.search_model_versions(f"name = '{name}'")}
        assert versions == {"1", "2"}, (target, versions)
        assert serving[name] == "1"
        assert str(client.get_registered_model(name).aliases[catalog.CHAMPION]) == "1"


@pytest.mark.slow
def test_the_champion_scores_a_later_log_when_the_gate_refuses_the_new_model(
    sample_dir, tmp_path, capsys
):
    """The same with runs one horizon apart (both horizons 30 days), so that the champion never
    saw the new test window's labels and the gate really compares: refused by the margin, the
    new model is registered but never scores; the champion scores today's features."""
    import mlflow

    from core import catalog, paths
    from core.registry import served
    from features.snapshot import read_snapshot

    args = ["-t", str(sample_dir / "transactions.csv"), "-c", str(sample_dir / "customers.csv")]
    short = ["--churn-days", "30", "--trials", "2"]
    earlier = str(AS_OF - timedelta(days=30))
    code, _, err = run_cli(["train", *args, *short, "--as-of", earlier], capsys)
    assert code == 0, err
    first = pd.read_csv(catalog.train_dir() / catalog.SCORES, dtype={"customer_id": str})
    kinds = {t: first[f"{t}_model"].iloc[0].removesuffix(" v1") for t in TARGETS}
    for target in TARGETS:
        assert (first[f"{target}_model"] == f"{kinds[target]} v1").all(), target

    snap = tmp_path / "today.parquet"
    code, _, err = run_cli(["features", *args, "--as-of", str(AS_OF), "-o", str(snap)], capsys)
    assert code == 0, err
    config = tmp_path / "custseg.toml"
    config.write_text("[prediction]\ngate_margin = 10.0\n")
    code, _, err = run_cli(
        ["train", *args, *short, "-f", str(snap), "--config", str(config)], capsys
    )
    assert code == 0, err
    assert "learned from labels inside this test window" not in err
    second = pd.read_csv(catalog.train_dir() / catalog.SCORES, dtype={"customer_id": str})

    table, _ = read_snapshot(snap)
    assert second["customer_id"].tolist() == table["customer_id"].astype(str).tolist()
    mlflow.set_tracking_uri(paths.tracking_uri())
    client = mlflow.MlflowClient()
    serving = served(client)
    for target in TARGETS:
        name = catalog.predictor_name(target)
        assert (second[f"{target}_model"] == f"{kinds[target]} v1 (champion)").all(), target
        v1 = mlflow.pyfunc.load_model(f"models:/{name}/1").unwrap_python_model().predictor
        np.testing.assert_allclose(
            second[f"{target}_probability"], v1.predict_proba(table), atol=1e-6
        )
        versions = {str(v.version) for v in client.search_model_versions(f"name = '{name}'")}
        assert versions == {"1", "2"}, (target, versions)
        assert serving[name] == "1"
        assert str(client.get_registered_model(name).aliases[catalog.CHAMPION]) == "1"
