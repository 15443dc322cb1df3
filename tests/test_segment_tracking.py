"""Segmentation tracked in a real MLflow store: runs, plots, registered segmenters, aliases, the
compare command and the MLflow UI."""

from __future__ import annotations

import os
import urllib.request

import pandas as pd
import pytest

from custseg.process import running
from tests.conftest import free_port, run_cli


@pytest.mark.slow
def test_segment_fit_logs_every_scheme_and_registers_segmenters(
    snapshot, tmp_path, capsys, _state_home
):
    import mlflow
    from mlflow import MlflowClient

    out = tmp_path / "seg"
    code, _, err = run_cli(
        ["segment", "fit", "-f", str(snapshot), "--trials", "4", "--out", str(out), "--promote"],
        capsys,
    )
    assert code == 0, err
    assert "Traceback" not in err
    segments = pd.read_parquet(out / "segments.parquet")
    schemes = [
        "rfm_rules",
        "rfm_scores",
        "value_activity",
        "abc",
        "demographic",
        "behaviour_clusters",
    ]
    assert list(segments.columns) == ["customer_id"] + [f"segment_{s}" for s in schemes]
    assert segments.notna().all().all()
    profiles = pd.read_csv(out / "profiles.csv")
    assert set(profiles["scheme"]) == set(schemes)
    for scheme, p in profiles[profiles["segment"] != "all"].groupby("scheme"):
        rounding = 5e-5 * len(p)  # shares are written to 4 decimals
        assert p["customer_share"].sum() == pytest.approx(1.0, abs=rounding), scheme
        assert p["revenue_share"].sum() == pytest.approx(1.0, abs=rounding), scheme
        assert p["strategy_direction"].notna().all() and p["strategy_actions_zh"].notna().all()

    uri = f"sqlite:///{_state_home / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri)
    runs = mlflow.search_runs(experiment_names=["custseg"], output_format="list")
    by_stage = {}
    for r in runs:
        by_stage.setdefault(r.data.tags.get("custseg.stage"), []).append(r)
    assert len(by_stage["segment-fit"]) == 1
    scheme_runs = {r.data.tags["custseg.scheme"]: r for r in by_stage["segmentation"]}
    assert set(scheme_runs) == set(schemes)
    assert len(by_stage["tuning"]) == 4  # one run per Optuna trial, nested under the scheme
    parent = by_stage["segment-fit"][0].info.run_id
    assert all(r.data.tags["mlflow.parentRunId"] == parent for r in scheme_runs.values())

    clusters = scheme_runs["behaviour_clusters"]
    for metric in (
        "silhouette",
        "calinski_harabasz",
        "davies_bouldin",
        "stability_ari",
        "rfm_silhouette",
        "revenue_hhi",
        "segments",
    ):
        assert metric in clusters.data.metrics, metric
    assert clusters.data.params["chosen.family"] in {"kmeans", "gmm", "birch"}

    def files(run, path=""):
        out = set()
        for a in client.list_artifacts(run.info.run_id, path):
            out |= files(run, a.path) if a.is_dir else {a.path}
        return out

    assert {
        "plots/projection_2d.png",
        "plots/elbow_silhouette.png",
        "plots/sizes_revenue.png",
        "plots/snake_plot.png",
        "profile.json",
        "profile.csv",
        "tuning/trials.csv",
    } <= files(clusters)
    assert {"plots/sizes_revenue.png", "plots/snake_plot.png"} <= files(scheme_runs["abc"])

    # registered; served schemes are champion; the model assigns like the fit did
    for s in schemes:
        versions = client.search_model_versions(f"name = 'custseg-segmenter-{s}'")
        assert [str(v.version) for v in versions] == ["1"], s
    assert (
        str(client.get_model_version_by_alias("custseg-segmenter-rfm_rules", "champion").version)
        == "1"
    )
    with pytest.raises(mlflow.exceptions.MlflowException):
        client.get_model_version_by_alias(
            "custseg-segmenter-demographic", "champion"
        )  # serve=false
    from features.snapshot import read_snapshot

    features, meta = read_snapshot(snapshot)
    model = mlflow.pyfunc.load_model("models:/custseg-segmenter-behaviour_clusters@champion")
    predicted = model.predict(features)
    assert list(predicted["segment"]) == list(segments["segment_behaviour_clusters"])
    assert predicted["segment_name_zh"].str.len().gt(0).all()
    assert model.metadata.metadata["definition_hash"] == meta["definition_hash"]
    ints = [c for c in features.columns if pd.api.types.is_integer_dtype(features[c])]
    as_floats = features.astype(dict.fromkeys(ints, "float64"))  # what JSON clients send
    rules = mlflow.pyfunc.load_model("models:/custseg-segmenter-rfm_rules@champion")
    assert list(rules.predict(as_floats)["segment"]) == list(segments["segment_rfm_rules"])

    # compare prints every scheme of the latest fit side by side
    code, stdout, _ = run_cli(["segment", "compare"], capsys)
    assert code == 0
    for s in schemes:
        assert s in stdout
    assert "stability" in stdout and "1*" in stdout  # version 1, served

    # a second fit without promotion: the clustering (other trials) is a new version, the
    # champion stays; the unchanged schemes are reused
    code, _, err = run_cli(
        ["segment", "fit", "-f", str(snapshot), "--trials", "2", "--out", str(out), "--no-promote"],
        capsys,
    )
    assert code == 0, err
    assert "abc: unchanged, reused v1" in err
    name = "custseg-segmenter-behaviour_clusters"
    assert str(client.get_model_version_by_alias(name, "champion").version) == "1"
    versions = client.search_model_versions(f"name = '{name}'")
    assert sorted(str(v.version) for v in versions) == ["1", "2"]
    assert [
        str(v.version) for v in client.search_model_versions("name = 'custseg-segmenter-abc'")
    ] == ["1"]


def test_compare_without_runs_says_what_to_do(capsys):
    code, _, err = run_cli(["segment", "compare"], capsys)
    assert code == 2 and "custseg segment fit" in err


@pytest.mark.slow
def test_ui_serves_the_local_store(_state_home):
    port = free_port()
    env = {**os.environ, "CUSTSEG_HOME": str(_state_home)}
    url = f"http://127.0.0.1:{port}/health"
    with running(["ui", "--port", str(port)], env, url, _state_home / "ui.log"):
        assert urllib.request.urlopen(url, timeout=5).status == 200
        assert (_state_home / "mlflow.db").exists()  # the project's store, not the cwd's
