"""Batch scoring (`custseg score`, serving.batch.score_parquet): the rows it writes are the
service's answers (one computation, `ModelSet.score`), whatever the engine and the chunking;
bad inputs get one clear line and exit 2."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from tests.conftest import needs_spark, run_cli

AS_OF = date(2026, 6, 30)


def flat(answers: list[dict]) -> pd.DataFrame:
    """Service answers as the batch table spells them: segment_<scheme> (the id) and
    segment_<scheme>_<field>, every other field under its own name, null as NaN/None."""
    rows = []
    for a in answers:
        row = {"customer_id": a["customer_id"]}
        for scheme, seg in a["segments"].items():
            row[f"segment_{scheme}"] = seg["id"]
            row |= {f"segment_{scheme}_{k}": v for k, v in seg.items() if k != "id"}
        row |= {k: v for k, v in a.items() if k not in ("customer_id", "segments")}
        rows.append(row)
    return normal(pd.DataFrame(rows))


def normal(frame: pd.DataFrame) -> pd.DataFrame:
    """Sorted by customer, columns by name, lists as lists, dates as text, floats as float."""
    frame = frame.sort_values("customer_id").reset_index(drop=True)
    frame = frame[sorted(frame.columns)].copy()
    for c in ("next_best", "active_tags"):
        frame[c] = frame[c].map(list)
    frame["next_order_date"] = frame["next_order_date"].map(
        lambda d: None if d is None or d != d else str(d)
    )
    for c in frame.columns:
        if c.endswith("_probability") or c in ("clv", "p_alive", "expected_orders"):
            frame[c] = frame[c].astype("float64")
    return frame


def written(summary: dict) -> pd.DataFrame:
    return normal(pd.read_parquet(summary["scores"]))


# --- a small model set of stand-ins: fast, every kind of field -----------------------------


class Value:
    """A stand-in value champion: per customer from its own row (as the real one), NaN where
    the recency is over a year, infinity for one-order customers (what an extreme row could
    give), no next order for them either."""

    columns = ["recency_days", "frequency_days", "tenure_days", "net_monetary"]
    categories: dict = {}

    def table(self, features, as_of):
        recency = features["recency_days"].to_numpy(float)
        once = features["frequency_days"].to_numpy(float) == 1
        wait = np.where(once, np.nan, 12.4)
        days = pd.to_timedelta(np.where(once, np.nan, 12), unit="D")
        return pd.DataFrame(
            {
                "clv": np.where(recency > 365, np.nan, features["net_monetary"] * 0.24),
                "expected_orders": np.where(once, np.inf, 2.0),
                "expected_order_value": features["net_monetary"].to_numpy(float) / 8,
                "p_alive": np.exp(-recency / 100).round(6),
                "days_to_next_order": wait,
                "next_order_date": (pd.Timestamp(as_of) + days).strftime("%Y-%m-%d"),
                "avg_days_between_orders": features["tenure_days"].to_numpy(float) / 10,
            },
            index=features.index,
        )


@pytest.fixture
def small(tmp_path):
    """A model set (value tiers on clv, a value champion with NaN and inf, two dynamic tags)
    and a snapshot of three customers as of AS_OF."""
    from features.snapshot import write_snapshot
    from tests.test_serving_schemas import value_model_set

    models = replace(value_model_set(value=False), value=Value(), tags={"x": 2.0, "y": 7.0})
    features = pd.DataFrame(
        {
            "customer_id": ["A", "B", "C"],
            "recency_days": [3, 400, 20],  # whole numbers, as the snapshot has them
            "frequency_days": [5, 1, 2],
            "tenure_days": [300, 400, 90],
            "net_monetary": [500.0, 0.0, 80.0],
            "region": ["north", None, "south"],  # read by no model: not read
            "tag_x": [2.0, 1.9, np.nan],
            "tag_y": [9.0, 0.0, 7.0],
        }
    )
    features.attrs["as_of"] = str(AS_OF)
    path = tmp_path / "features.parquet"
    write_snapshot(features, path)
    return models, features, path


@pytest.mark.parametrize("engine", ["duckdb", "polars"])
def test_batch_rows_are_the_service_answers(small, tmp_path, engine):
    from serving.batch import feature_frame, score_parquet

    models, _, path = small
    summary = score_parquet(path, tmp_path / "out", engine=engine, models=models, chunk_rows=2)
    assert summary["customers"] == 3 and summary["parts"] == 2 and summary["as_of"] == str(AS_OF)
    expected = flat(models.predict(feature_frame(pq.read_table(path), models), AS_OF))
    got = written(summary)
    pd.testing.assert_frame_equal(got, expected[got.columns], check_exact=True)
    assert list(got.columns) == sorted(expected.columns)
    assert got["active_tags"].tolist() == [["x", "y"], [], ["y"]]
    assert got["clv"].isna().tolist() == [False, True, False]  # NaN from the model: null
    assert np.isnan(got["expected_orders"][1])  # infinity: null, as the service answers


def test_a_recent_products_column_gives_next_best(small, tmp_path):
    """A snapshot may carry each customer's products (as a /predict row may, and as `custseg
    score` writes them for a log): the next-best champion's products, as the service's."""
    from scipy import sparse

    from features.snapshot import write_snapshot
    from serving.batch import feature_frame, score_parquet
    from training.baskets.model import NextBestModel

    models, features, _ = small
    conf = sparse.csr_matrix(np.array([[0, 0.5, 0.1], [0.5, 0, 0.2], [0.1, 0.2, 0]], np.float32))
    items = np.array(["p1", "p2", "p3"], dtype=object)
    models = replace(models, next_best=NextBestModel(items, conf, np.full(3, 1e-6, np.float32)))
    products = [["p1"], None, ["p3", "unknown"]]
    path = tmp_path / "with-products.parquet"
    write_snapshot(features.assign(recent_products=products), path)
    got = written(score_parquet(path, tmp_path / "out", models=models, chunk_rows=2))
    frame = feature_frame(pq.read_table(path), models)
    expected = flat(models.predict(frame, AS_OF, [p or [] for p in products]))
    pd.testing.assert_frame_equal(got, expected[got.columns], check_exact=True)
    assert got["next_best"].tolist() == [["p2", "p3"], [], ["p2", "p1"]]


def test_the_csv_has_the_same_rows(small, tmp_path):
    from serving.batch import score_parquet

    models, _, path = small
    summary = score_parquet(path, tmp_path / "out", models=models, csv=True, chunk_rows=1)
    raw = (tmp_path / "out" / "scores.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and raw.count(b"\xef\xbb\xbf") == 1  # one BOM
    csv = pd.read_csv(summary["csv"], encoding="utf-8-sig", keep_default_na=False)
    assert len(csv) == 3 and list(csv.columns) == summary["columns"]
    assert sorted(csv["active_tags"]) == ["", "x;y", "y"]


def test_a_rerun_leaves_no_stale_parts(small, tmp_path):
    from serving.batch import score_parquet

    models, _, path = small
    score_parquet(path, tmp_path / "out", models=models, chunk_rows=1)
    summary = score_parquet(path, tmp_path / "out", models=models, chunk_rows=3)
    assert len(list((tmp_path / "out" / "scores").glob("*.parquet"))) == summary["parts"] == 1
    assert len(pd.read_parquet(summary["scores"])) == 3


def test_bad_snapshots_are_refused_with_the_reason(small, tmp_path):
    from core.errors import CustsegError
    from features.snapshot import write_snapshot
    from serving.batch import score_parquet

    models, features, path = small
    with pytest.raises(CustsegError, match=r"no column\(s\) net_monetary, which the champions"):
        lacking = tmp_path / "lacking.parquet"
        write_snapshot(features.drop(columns="net_monetary"), lacking)
        score_parquet(lacking, tmp_path / "out", models=models)
    with pytest.raises(CustsegError, match="column 'tenure_days' is string, expected a number"):
        text = tmp_path / "text.parquet"
        write_snapshot(features.astype({"tenure_days": str}), text)
        score_parquet(text, tmp_path / "out", models=models)
    with pytest.raises(CustsegError, match="the snapshot .* is as of 2026-06-30"):
        score_parquet(path, tmp_path / "out", models=models, as_of=date(2026, 5, 31))
    with pytest.raises(CustsegError, match="carry no as-of date .* pass --as-of"):
        plain = tmp_path / "plain.parquet"
        features.to_parquet(plain)
        score_parquet(plain, tmp_path / "out", models=models)
    with pytest.raises(CustsegError, match="no .parquet files in this folder"):
        (tmp_path / "empty").mkdir()
        score_parquet(tmp_path / "empty", tmp_path / "out", models=models)
    with pytest.raises(CustsegError, match="would overwrite the input"):
        score_parquet(path, tmp_path, models=models)
    assert not (tmp_path / "out").exists()  # nothing half written


def test_cli_refuses_an_unknown_engine_and_an_empty_registry(small, tmp_path, capsys):
    _, _, path = small
    code, _, err = run_cli(["score", str(path), "--engine", "pandas"], capsys)
    assert code == 2
    assert err.strip() == "custseg: error: --engine 'pandas': choose one of duckdb, polars, spark"
    uri = f"sqlite:///{tmp_path / 'nothing' / 'mlflow.db'}"
    code, _, err = run_cli(["score", str(path), "--tracking-uri", uri], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert f"no champion models in the registry at {uri}: run `custseg run` first" in err
    code, _, err = run_cli(["score", str(tmp_path / "missing.parquet")], capsys)
    assert code == 2 and err.strip().endswith("missing.parquet: no such file or folder")


# --- the champions of a real run ---------------------------------------------------------


@pytest.fixture(scope="module")
def served(champions):
    """(home, run output, the served model set) of the session's `custseg run`."""
    from serving.models import load_champions

    home, out = champions
    return home, out, load_champions(f"sqlite:///{home / 'mlflow.db'}")


@pytest.fixture(scope="module")
def duckdb_scores(served, tmp_path_factory):
    from serving.batch import score_parquet

    _, out, models = served
    where = tmp_path_factory.mktemp("duckdb-scores")
    return score_parquet(out / "features.parquet", where, models=models, chunk_rows=500)


@pytest.mark.slow
def test_champions_batch_equals_the_service_and_the_run(served, duckdb_scores):
    """Every customer of the run's snapshot, in chunks of 500: the in-process service
    answers (ModelSet.predict on the whole table) exactly, and scores.csv's numbers."""
    from serving.batch import feature_frame

    _, out, models = served
    table = pq.read_table(out / "features.parquet")
    got = written(duckdb_scores)
    assert duckdb_scores["parts"] == 3 and len(got) == table.num_rows
    expected = flat(models.predict(feature_frame(table, models), AS_OF))
    pd.testing.assert_frame_equal(got, expected[got.columns], check_exact=True)
    run = pd.read_csv(out / "scores.csv", encoding="utf-8-sig").sort_values("customer_id")
    run = run.reset_index(drop=True)
    assert (got["customer_id"] == run["customer_id"]).all()
    for c in ("repurchase_probability", "churn_probability", "clv", "p_alive"):
        assert np.allclose(got[c], run[c], rtol=0, atol=0, equal_nan=True), c
    for scheme in models.segmenters:
        assert (got[f"segment_{scheme}"] == run[f"segment_{scheme}"]).all(), scheme


@pytest.mark.slow
@needs_spark
def test_spark_scores_equal_duckdb(served, duckdb_scores, tmp_path):
    """The champions inside Spark (mapInArrow over the snapshot, the model set broadcast):
    exactly the DuckDB engine's rows."""
    from serving.batch import score_parquet

    _, out, models = served
    spark = score_parquet(out / "features.parquet", tmp_path, engine="spark", models=models)
    assert spark["customers"] == duckdb_scores["customers"]
    pd.testing.assert_frame_equal(written(spark), written(duckdb_scores), check_exact=True)


@pytest.mark.slow
def test_cli_scores_a_log_and_refuses_missing_columns(served, duckdb_scores, tmp_path, capsys):
    """`custseg score` on the raw sample log as of the run's cutoff, cleaned as the run
    cleaned it (the sample's cancellation invoices): its features built with the champions'
    categories, the same rows as scoring the run's snapshot, and from the log's products
    the next-best products of the run's scores.csv. A snapshot lacking a feature the
    champions read: one line, exit 2."""
    from custseg.sample import CANCEL_ID_PATTERN

    home, out, _ = served
    uri = f"sqlite:///{home / 'mlflow.db'}"
    config = tmp_path / "sample.toml"
    config.write_text(f'[cleaning]\ncancel_id_pattern = "{CANCEL_ID_PATTERN}"\n')
    args = ["score", str(home / "sample" / "transactions.csv"), "--tracking-uri", uri]
    args += ["-c", str(home / "sample" / "customers.csv"), "--as-of", str(AS_OF)]
    args += ["--config", str(config)]
    code, _, err = run_cli([*args, "--out", str(tmp_path / "log")], capsys)
    assert code == 0, err
    assert (tmp_path / "log" / "features.parquet").exists()
    got = written({"scores": tmp_path / "log" / "scores"})
    snapshot_scores = written(duckdb_scores)
    assert snapshot_scores["next_best"].map(len).eq(0).all()  # a snapshot has no products
    pd.testing.assert_frame_equal(
        got.drop(columns="next_best"), snapshot_scores.drop(columns="next_best"), check_exact=True
    )
    # the log's products: each customer's next-best products, as the run's scores.csv has them
    run = pd.read_csv(out / "scores.csv", encoding="utf-8-sig", dtype=str)
    offers = run.set_index("customer_id")[["next_best_1", "next_best_2", "next_best_3"]]
    expected = [[p for p in row if isinstance(p, str)] for row in offers.to_numpy().tolist()]
    assert dict(zip(got["customer_id"], got["next_best"], strict=True)) == dict(
        zip(offers.index, expected, strict=True)
    )
    assert got["next_best"].map(len).gt(0).mean() > 0.9

    lacking = tmp_path / "lacking.parquet"
    snapshot = pq.read_table(out / "features.parquet")
    pq.write_table(snapshot.drop_columns(["recency_days"]), lacking)
    code, _, err = run_cli(["score", str(lacking), "--tracking-uri", uri], capsys)
    assert code == 2 and "Traceback" not in err, err
    (line,) = [x for x in err.splitlines() if not x.startswith("✓")]  # after the progress line
    assert line.startswith(f"custseg: error: {lacking}: no column(s) recency_days, which the ")
