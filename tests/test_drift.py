"""Drift monitoring on generated customer tables: stable data stays quiet, injected drift is found.

Each scenario runs Evidently once in a module-scoped fixture; the tests only read the results.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from core.errors import CustsegError
from monitoring.drift import DriftResult, detect_drift

# Noise from Evidently's own imports, not from this code.
pytestmark = [
    pytest.mark.filterwarnings("ignore:numpy.core is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:Call to deprecated function 'Dependency'"),
    pytest.mark.filterwarnings("ignore:Use of deprecated class 'DependencyKwarg'"),
]

N = 5_000
PROVINCES = ["ON", "QC", "BC", "AB", "MB"]
NUMERIC = ["recency_days", "frequency_orders", "monetary", "avg_order_value", "online_share"]
CATEGORICAL = ["province", "lifecycle_stage"]
PREDICTIONS = ["churn_probability", "segment_rfm_rules"]
TARGET = ["churned"]


def customers(seed: int, n: int = N, churn_shift: float = 0.0) -> pd.DataFrame:
    """A customer feature table with a churn score, a rule segment and a churn label."""
    rng = np.random.default_rng(seed)
    frequency = rng.poisson(5, n) + 1
    aov = rng.lognormal(np.log(60), 0.5, n)
    recency = rng.gamma(2.0, 30.0, n).round()
    logit = -2.0 + recency / 60 - frequency / 5 + churn_shift
    churn_probability = 1 / (1 + np.exp(-logit))
    monetary = frequency * aov
    return pd.DataFrame(
        {
            "recency_days": recency,
            "frequency_orders": frequency,
            "monetary": monetary,
            "avg_order_value": aov,
            "online_share": rng.beta(2, 3, n),
            "province": rng.choice(PROVINCES, n, p=[0.38, 0.23, 0.14, 0.12, 0.13]),
            "lifecycle_stage": np.select(
                [frequency <= 2, recency > 120], ["new", "lapsing"], "active"
            ),
            "churn_probability": churn_probability,
            "segment_rfm_rules": np.select(
                [monetary > 600, recency > 90], ["champions", "at_risk"], "regular"
            ),
            "churned": (rng.random(n) < churn_probability).astype(int),
        }
    )


def drift(reference: pd.DataFrame, current: pd.DataFrame, **kwargs) -> DriftResult:
    return detect_drift(
        reference,
        current,
        numeric=NUMERIC,
        categorical=CATEGORICAL,
        predictions=PREDICTIONS,
        target=TARGET,
        **kwargs,
    )


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return customers(seed=1)


@pytest.fixture(scope="module")
def stable(reference) -> DriftResult:
    return drift(reference, customers(seed=2))


@pytest.fixture(scope="module")
def spend_up(reference) -> pd.DataFrame:
    """Ontario's customers (~38%) double their spend."""
    current = customers(seed=3)
    ontario = current["province"] == "ON"
    current.loc[ontario, ["monetary", "avg_order_value"]] *= 2
    return current


@pytest.fixture(scope="module")
def spend_drift(reference, spend_up) -> DriftResult:
    return drift(reference, spend_up)


@pytest.fixture(scope="module")
def no_online(reference) -> DriftResult:
    """The online channel disappears; the loyalty feed also breaks (frequency all missing)."""
    current = customers(seed=4).assign(online_share=0.0, frequency_orders=np.nan)
    return drift(reference, current)


@pytest.fixture(scope="module")
def churn_up(reference) -> DriftResult:
    return drift(reference, customers(seed=5, churn_shift=1.5))


def by_column(columns) -> dict:
    return {c.column: c for c in columns}


def test_stable_data_is_quiet(stable):
    assert stable.share_drifted < 0.3
    assert len(stable.drifted_features()) <= 1
    assert not any(c.drifted for c in stable.predictions + stable.target)
    assert (stable.n_reference, stable.n_current) == (N, N)
    features = by_column(stable.features)
    assert list(features) == NUMERIC + CATEGORICAL
    # Evidently's defaults above 1,000 rows: normed Wasserstein / Jensen-Shannon distance, 0.1
    assert features["monetary"].method == "Wasserstein distance (normed)"
    assert features["province"].method == "Jensen-Shannon distance"
    assert {c.threshold for c in stable.features} == {0.1}
    assert all(c.severity < 0 for c in stable.features if not c.drifted)


def test_spend_drift_in_one_province(spend_drift):
    drifted = spend_drift.drifted_features()
    assert {"monetary", "avg_order_value"} <= set(drifted)
    assert "recency_days" not in drifted
    assert "province" not in drifted
    severities = [by_column(spend_drift.features)[c].severity for c in drifted]
    assert severities == sorted(severities, reverse=True) and severities[0] > 0


def test_sampling_caps_rows_and_switches_to_p_values(reference, spend_up):
    small = drift(reference, spend_up, max_rows=800, seed=1)
    assert (small.n_reference, small.n_current) == (800, 800)
    monetary = by_column(small.features)["monetary"]
    assert monetary.method == "K-S p_value" and monetary.threshold == 0.05
    assert monetary.drifted and monetary.score < 0.05 and monetary.severity > 0
    assert "monetary" in small.drifted_features()


def test_vanished_channel_and_missing_column(no_online):
    features = by_column(no_online.features)
    assert features["online_share"].drifted
    frequency = features["frequency_orders"]
    assert frequency.drifted and frequency.method == "all missing (current)"
    assert no_online.drifted_features()[0] == "frequency_orders"  # infinite severity
    assert "online_share" in no_online.drifted_features()


def test_prediction_and_target_drift(churn_up, stable):
    predictions = by_column(churn_up.predictions)
    assert predictions["churn_probability"].drifted
    assert predictions["churn_probability"].kind == "numeric"
    assert predictions["segment_rfm_rules"].kind == "categorical"
    assert predictions["segment_rfm_rules"].method == "Jensen-Shannon distance"
    (churned,) = churn_up.target
    assert churned.column == "churned" and churned.kind == "categorical" and churned.drifted
    assert [c.column for c in stable.target] == ["churned"]


def test_unlabelled_target_is_left_out(reference):
    current = customers(seed=6).assign(churned=np.nan)
    result = detect_drift(reference, current, numeric=["recency_days"], target=TARGET)
    assert result.target == []
    assert [c.column for c in result.features] == ["recency_days"]


def test_nullable_and_arrow_dtypes(reference):
    """Tables read through Arrow carry Int64 / Arrow-backed columns, which Evidently chokes on."""
    current = customers(seed=8).astype(
        {
            "frequency_orders": "Int64",
            "monetary": pd.ArrowDtype(pa.float64()),
            "province": "category",
            "segment_rfm_rules": pd.ArrowDtype(pa.string()),
        }
    )
    current.loc[:10, "frequency_orders"] = pd.NA
    result = drift(reference, current)
    assert result.drifted_features() == []
    assert by_column(result.predictions)["segment_rfm_rules"].kind == "categorical"


def test_save_html_writes_self_contained_reports(churn_up, tmp_path):
    paths = churn_up.save_html(tmp_path / "reports")
    assert set(paths) == {"features", "predictions", "target"}
    for group, path in paths.items():
        assert path.name == f"drift_{group}.html" and path.stat().st_size > 100_000
        html = path.read_text(encoding="utf-8")
        assert "<html" in html and '<script src="http' not in html
    same = customers(seed=7)
    only_features = detect_drift(same, same, numeric=["monetary"]).save_html(tmp_path / "f")
    assert list(only_features) == ["features"]


def test_to_dict_is_json(no_online, spend_drift):
    for result in (no_online, spend_drift):
        data = json.loads(json.dumps(result.to_dict(), allow_nan=False))
        assert data["drifted_features"] == result.drifted_features()
        assert data["n_reference"] == N and len(data["features"]) == len(NUMERIC + CATEGORICAL)
    (frequency,) = [c for c in no_online.to_dict()["features"] if c["column"] == "frequency_orders"]
    assert frequency["severity"] is None and frequency["drifted"] is True


def test_missing_columns_and_empty_frames(reference):
    with pytest.raises(CustsegError, match=r"online_share.*current"):
        detect_drift(reference, reference.drop(columns="online_share"), numeric=NUMERIC)
    with pytest.raises(CustsegError, match=r"churn_probability.*reference"):
        detect_drift(
            reference.drop(columns="churn_probability"),
            reference,
            numeric=NUMERIC,
            predictions=["churn_probability"],
        )
    with pytest.raises(CustsegError, match="current table is empty"):
        detect_drift(reference, reference.iloc[:0], numeric=NUMERIC)
    with pytest.raises(CustsegError, match="reference table is empty"):
        detect_drift(reference.iloc[:0], reference, numeric=NUMERIC)
    with pytest.raises(CustsegError, match="province"):
        detect_drift(reference, reference, numeric=["province"])


def test_module_import_does_not_load_evidently():
    code = "import sys, monitoring.drift; assert 'evidently' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[1])


def test_evidently_pages_show_custsegs_drift_threshold(churn_up, reference, tmp_path):
    """One threshold everywhere: Evidently's own pages state custseg's share, not its 0.5."""
    from monitoring.drift import DRIFT_SHARE
    from monitoring.health import HealthConfig

    assert HealthConfig().drift_share == DRIFT_SHARE
    page = churn_up.save_html(tmp_path / "a")["features"].read_text("utf-8")
    assert f"drift detection threshold is {DRIFT_SHARE}" in page
    assert "threshold is 0.5" not in page
    own = detect_drift(reference, reference, numeric=["monetary"], drift_share=0.25)
    page = own.save_html(tmp_path / "b")["features"].read_text("utf-8")
    assert "drift detection threshold is 0.25" in page
