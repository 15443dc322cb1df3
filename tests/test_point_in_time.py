"""No leakage: features as of D do not depend on anything dated after D — through cleaning too."""

from __future__ import annotations

import shutil
from datetime import date

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.errors import InputError
from features.cleaning import CleaningConfig
from features.contract import CUSTOMERS, TRANSACTIONS, type_table
from features.pipeline import features_as_of, last_order_date
from features.snapshot import read_snapshot, write_snapshot
from tests.conftest import needs_spark, run_cli

D = date(2025, 6, 30)
# drop extreme amounts: the outlier threshold then changes which rows survive, so a threshold
# computed over data after D would change the features as of D
CLEANING = CleaningConfig(max_invalid_share=1.0, policies={"extreme_amount": "drop"})

day = st.integers(min_value=-400, max_value=200)  # days relative to D
amount = st.one_of(st.floats(1, 500), st.sampled_from([-20.0, 0.0, 50_000.0]))
row = st.tuples(
    st.sampled_from(["A", "B", "C"]), day, amount, st.sampled_from(["o1", "o2", "o3", None])
)


def _log(rows) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=["customer_id", "rel", "amount", "order_id"])
    df["order_date"] = (pd.Timestamp(D) + pd.to_timedelta(df.pop("rel"), unit="D")).dt.strftime(
        "%Y-%m-%d"
    )
    df["channel"] = "online"
    return df


def _features(df: pd.DataFrame, customers: pd.DataFrame | None = None) -> pd.DataFrame:
    tx = type_table(df, TRANSACTIONS, max_invalid_share=1.0)
    cu = type_table(customers, CUSTOMERS) if customers is not None else None
    table, _ = features_as_of(tx, cu, D, CLEANING)
    return table


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(row, min_size=1, max_size=25), st.lists(row, max_size=15), st.data())
def test_rows_after_the_cutoff_change_nothing(before, extra, data):
    before = [r for r in before if r[1] <= 0]
    if not before:
        return
    later = [r for r in extra if r[1] > 0]
    base = _log(before)
    # added, and the same rows altered (other amounts, other customers)
    altered = [
        (data.draw(st.sampled_from(["A", "B", "Z"])), r[1], r[2] * 3 + 1, r[3]) for r in later
    ]
    for variant in (_log(before + later), _log(before + altered)):
        pd.testing.assert_frame_equal(_features(base), _features(variant))


def test_outlier_threshold_uses_only_data_up_to_the_cutoff():
    """A huge order after D lifts the full-log mean; the cut-off run must not see it."""
    rows = [("A", -10, 100.0, "o1"), ("A", -5, 100.0, "o2")] + [
        ("B", -d, 10.0, f"b{d}") for d in range(1, 30)
    ]
    rows.append(("A", -1, 700.0, "o3"))  # extreme as of D (10 x mean ~ 380)
    full = rows + [("C", 5, 1_000_000.0, "o9")]  # after D: would lift the mean above 700
    a, b = _features(_log(rows)), _features(_log(full))
    pd.testing.assert_frame_equal(a, b)
    assert a.set_index("customer_id").loc["A", "max_order_value"] == 100.0


def test_cli_full_log_and_cut_log_give_identical_snapshots(sample_dir, tmp_path, capsys):
    tx = pd.read_csv(sample_dir / "transactions.csv", dtype=str)
    cut_at = "2025-12-31"
    parsed = pd.to_datetime(tx["order_date"], errors="coerce", format="mixed")
    cut = tx[~(parsed > pd.Timestamp(cut_at)).fillna(False)]
    cut.to_csv(tmp_path / "cut.csv", index=False)
    assert len(cut) < len(tx)
    shutil.copy(sample_dir / "customers.csv", tmp_path / "customers.csv")
    outs = []
    for name, path in (("full", sample_dir / "transactions.csv"), ("cut", tmp_path / "cut.csv")):
        out = tmp_path / f"{name}.parquet"
        code, _, err = run_cli(
            [
                "features",
                "-t",
                str(path),
                "-c",
                str(tmp_path / "customers.csv"),
                "--as-of",
                cut_at,
                "-o",
                str(out),
            ],
            capsys,
        )
        assert code == 0, err
        outs.append(read_snapshot(out))
    (a, meta_a), (b, meta_b) = outs
    pd.testing.assert_frame_equal(a, b)
    assert meta_a["definition_hash"] == meta_b["definition_hash"] and meta_a["as_of"] == cut_at
    assert len(a) > 1000


def test_snapshot_round_trip_and_errors(tmp_path):
    table = _features(_log([("A", -3, 10.0, "o1"), ("B", -1, 20.0, "o2")]))
    meta = write_snapshot(table, tmp_path / "f.parquet")
    back, meta2 = read_snapshot(tmp_path / "f.parquet")
    pd.testing.assert_frame_equal(table, back)
    assert meta2["as_of"] == str(D) and meta2["definition_hash"] == meta["definition_hash"]
    assert {f["name"] for f in meta2["features"]} == set(table.columns) - {"customer_id"}
    pd.DataFrame({"x": [1]}).to_parquet(tmp_path / "plain.parquet")
    with pytest.raises(InputError, match="not a custseg feature snapshot"):
        read_snapshot(tmp_path / "plain.parquet")


def test_default_as_of_ignores_future_typos():
    df = _log([("A", -3, 10.0, "o1"), ("A", 9000, 10.0, "o2")])
    t = type_table(df, TRANSACTIONS)
    assert last_order_date(t, today=date(2026, 1, 1)) == date(2025, 6, 27)


def _features_cli(sample_dir, tmp_path, capsys, *options: str):
    """`custseg features` on the sample log; returns (exit code, stderr, snapshot path)."""
    out = tmp_path / "f.parquet"
    args = ["features", "-t", str(sample_dir / "transactions.csv"), *options, "-o", str(out)]
    code, _, err = run_cli(args, capsys)
    return code, err, out


def test_cli_rejects_unknown_engine(sample_dir, tmp_path, capsys):
    code, err, _ = _features_cli(sample_dir, tmp_path, capsys, "--engine", "dask")
    assert code == 2 and "duckdb, polars, spark" in err


def test_duckdb_and_polars_give_identical_features_and_labels(cleaned):
    from features.build import build_features, build_labels

    result, _ = cleaned
    as_of = date(2026, 3, 31)
    a = build_features(result.transactions, result.customers, as_of, engine="duckdb")
    b = build_features(result.transactions, result.customers, as_of, engine="polars")
    pd.testing.assert_frame_equal(a, b, rtol=1e-9)
    assert (a.attrs["engine"], b.attrs["engine"]) == ("duckdb", "polars")
    assert a.attrs["definition_hash"] == b.attrs["definition_hash"]
    cutoffs = [date(2025, 12, 31), as_of]
    pd.testing.assert_frame_equal(
        build_labels(result.transactions, cutoffs, engine="duckdb"),
        build_labels(result.transactions, cutoffs, engine="polars"),
    )


@pytest.mark.slow
@needs_spark
def test_spark_and_the_default_engine_give_identical_features_and_labels(cleaned):
    from features.build import build_features, build_labels

    result, _ = cleaned
    as_of = date(2026, 3, 31)
    a = build_features(result.transactions, result.customers, as_of)
    b = build_features(result.transactions, result.customers, as_of, engine="spark")
    pd.testing.assert_frame_equal(a, b, rtol=1e-9)
    assert a.attrs["definition_hash"] == b.attrs["definition_hash"]
    cutoffs = [date(2025, 12, 31), as_of]
    pd.testing.assert_frame_equal(
        build_labels(result.transactions, cutoffs),
        build_labels(result.transactions, cutoffs, engine="spark"),
    )


def test_cli_as_of_before_any_order_is_a_clear_error(sample_dir, tmp_path, capsys):
    code, err, out = _features_cli(sample_dir, tmp_path, capsys, "--as-of", "1990-01-01")
    assert code == 2 and "no customer has a valid order on or before 1990-01-01" in err
    assert not out.exists()


def _features_with_config(sample_dir, tmp_path, capsys, toml: str):
    cfg = tmp_path / "c.toml"
    cfg.write_text(toml)
    return _features_cli(sample_dir, tmp_path, capsys, "--config", str(cfg))


@pytest.mark.parametrize(
    "toml,needle",
    [
        ("[features]\nwindowz = [30]\n", "unknown key(s) windowz"),
        ("[features]\nwindows = [0, 30]\n", "positive whole days"),
        ("[features]\nactive_days = -1\n", "whole number >= 0"),
    ],
)
def test_bad_features_config_is_a_clear_error(sample_dir, tmp_path, capsys, toml, needle):
    code, err, _ = _features_with_config(sample_dir, tmp_path, capsys, toml)
    assert code == 2 and needle in err and "Traceback" not in err


def test_features_config_changes_the_table(sample_dir, tmp_path, capsys):
    toml = "[features]\nwindows = [7, 60]\ntop_categories = 2\n"
    code, err, out = _features_with_config(sample_dir, tmp_path, capsys, toml)
    assert code == 0, err
    table, meta = read_snapshot(out)
    assert "orders_7d" in table and "orders_30d" not in table and len(meta["categories"]) == 2


ENGINES = [
    "duckdb",
    "polars",
    pytest.param(
        "spark",
        marks=[pytest.mark.slow, needs_spark],
    ),
]


@pytest.mark.parametrize("engine", ENGINES)
def test_features_from_clean_parquet_equal_the_in_memory_build(cleaned, engine):
    """The scale path: the engine reads `custseg clean`'s Parquet files itself."""
    from features.build import build_features, build_features_from_parquet

    result, out = cleaned
    as_of = date(2026, 3, 31)
    want = build_features(result.transactions, result.customers, as_of)
    got = build_features_from_parquet(
        out / "transactions.parquet", as_of, engine=engine, customers=out / "customers.parquet"
    )
    pd.testing.assert_frame_equal(got, want, rtol=1e-9)
    assert got.attrs["definition_hash"] == want.attrs["definition_hash"]


@pytest.mark.parametrize("lines", [True, False], ids=["order-lines", "row-per-order"])
def test_a_customer_key_clash_is_caught_and_the_gaps_rebuilt_by_customer_id(cleaned, lines):
    """DuckDB's gap window partitions by a 64-bit hash of the customer id; were two customers to
    share one, their order days would interleave (with order lines: their day tables would
    merge). Here every customer gets key 0."""
    import narwhals as nw

    from features import build, definitions
    from features.definitions import KEY, ORDER_TOTAL, FeatureConfig
    from features.engines import collect, prepare_transactions, to_lazy

    result, _ = cleaned
    tx = result.transactions if lines else result.transactions.drop(columns="order_id")
    prepared = prepare_transactions(tx, build.as_day(date(2026, 3, 31)))
    assert (ORDER_TOTAL in prepared.table.column_names) == lines
    cfg = FeatureConfig()
    clashing = to_lazy(prepared.table, "duckdb").with_columns(nw.lit(0, nw.UInt64).alias(KEY))
    unchecked = collect(definitions.customer_features(clashing, cfg, {})).to_pandas()
    got = build._feature_table(clashing, cfg, {}, None, [])
    want = build._feature_table(to_lazy(prepared.table, "polars"), cfg, {}, None, [])
    gaps = "interpurchase_mean_days"
    assert not unchecked.sort_values("customer_id")[gaps].reset_index(drop=True).equals(want[gaps])
    pd.testing.assert_frame_equal(got, want, rtol=1e-9)


def test_given_categories_code_the_same_from_parquet_and_from_memory(cleaned):
    """A category the data lacks gets a zero share on both paths (the scanned path codes the
    text itself, the in-memory path through the data's dictionary)."""
    from features.build import build_features, build_features_from_parquet

    result, out = cleaned
    as_of = date(2026, 3, 31)
    cats = [str(result.transactions["category"].dropna().iloc[0]), "无此品类"]
    want = build_features(result.transactions, None, as_of, categories=cats)
    got = build_features_from_parquet(out / "transactions.parquet", as_of, categories=cats)
    pd.testing.assert_frame_equal(got, want, rtol=1e-9)
    assert (got["category_share__无此品类"] == 0).all()
    assert (got[f"category_share__{cats[0]}"] > 0).any()


def _cleaned_cli(capsys, tmp_path, transactions, *options: str):
    """`custseg features --cleaned`; returns (exit code, stderr, snapshot path)."""
    out = tmp_path / "f.parquet"
    args = ["features", "--cleaned", "-t", str(transactions), *options, "-o", str(out)]
    code, _, err = run_cli(args, capsys)
    return code, err, out


def test_cli_cleaned_tables_give_the_in_memory_table(cleaned, tmp_path, capsys):
    """`custseg features --cleaned` lets the engine read `custseg clean`'s outputs (a file, or a
    folder of Parquet parts as a Spark job writes them); the cutoff defaults to the last order."""
    from features.build import build_features

    result, out = cleaned
    last = result.transactions["order_date"].max().date()
    want = build_features(result.transactions, result.customers, last)
    parts = tmp_path / "parts"
    parts.mkdir()
    tx = pd.read_parquet(out / "transactions.parquet")
    half = len(tx) // 2
    tx.iloc[:half].to_parquet(parts / "part-0.parquet", index=False)
    tx.iloc[half:].to_parquet(parts / "part-1.parquet", index=False)
    for source in (out / "transactions.parquet", parts):
        code, err, snap = _cleaned_cli(
            capsys, tmp_path, source, "-c", str(out / "customers.parquet")
        )
        assert code == 0, err
        got, meta = read_snapshot(snap)
        pd.testing.assert_frame_equal(got, want, rtol=1e-9)
        assert meta["as_of"] == str(last)
        assert meta["definition_hash"] == want.attrs["definition_hash"]


@pytest.mark.parametrize(
    ("name", "options", "needle"),
    [
        ("x.csv", (), "--cleaned reads clean Parquet tables"),
        ("missing.parquet", (), "no such file or folder"),
        ("empty", (), "no .parquet files in this folder"),
        ("garbage.parquet", (), "not readable as Parquet"),
        ("no_amount.parquet", (), "no column 'amount'"),
        ("text_dates.parquet", (), "column 'order_date' is String, expected a date"),
        ("tx.parquet", ("--column", "amount=金额"), "--column maps raw input"),
        ("tx.parquet", ("--as-of", "2001-01-01"), "no customer in"),
        ("no_rows.parquet", (), "no rows"),
        ("zoned.parquet", (), "timestamp in time zone"),
        ("no_ids.parquet", (), "1 without customer_id (of 2 rows)"),
        ("parts_columns", (), "disagree (columns channel in one only)"),
        ("parts_types", (), "disagree (amount double vs string)"),
        ("clean_out", (), "a `custseg clean` output folder; pass"),
        ("tx.parquet", ("-c", "repeats.parquet"), "customers: 1 repeated ids"),
    ],
)
def test_cli_cleaned_bad_input_is_a_clear_error(tmp_path, capsys, name, options, needle):
    (tmp_path / "x.csv").write_text("customer_id,order_date,amount\nA,2024-01-01,1\n")
    (tmp_path / "empty").mkdir()
    (tmp_path / "garbage.parquet").write_text("not parquet")
    good = pd.DataFrame(
        {"customer_id": ["A"], "order_date": pd.to_datetime(["2024-01-01"]), "amount": [1.0]}
    )
    good.to_parquet(tmp_path / "tx.parquet", index=False)
    good.drop(columns="amount").to_parquet(tmp_path / "no_amount.parquet", index=False)
    good.assign(order_date="2024-01-01").to_parquet(tmp_path / "text_dates.parquet", index=False)
    good.iloc[:0].to_parquet(tmp_path / "no_rows.parquet", index=False)
    zoned = good.assign(order_date=good["order_date"].dt.tz_localize("Asia/Shanghai"))
    zoned.to_parquet(tmp_path / "zoned.parquet", index=False)
    pd.concat([good, good.assign(customer_id=None)]).to_parquet(tmp_path / "no_ids.parquet")
    for folder, other in (
        ("parts_columns", good.assign(channel="online")),
        ("parts_types", good.assign(amount="1")),
        ("clean_out", good),
    ):
        (tmp_path / folder).mkdir()
        good.to_parquet(tmp_path / folder / "a.parquet", index=False)
        other.to_parquet(tmp_path / folder / "b.parquet", index=False)
    good.to_parquet(tmp_path / "clean_out" / "transactions.parquet", index=False)
    pd.DataFrame({"customer_id": ["A", "A"], "age": [30.0, 31.0]}).to_parquet(
        tmp_path / "repeats.parquet", index=False
    )
    options = tuple(str(tmp_path / o) if o.endswith(".parquet") else o for o in options)
    code, err, _ = _cleaned_cli(capsys, tmp_path, tmp_path / name, *options)
    assert code == 2 and needle in " ".join(err.split()) and "Traceback" not in err


@pytest.mark.parametrize("engine", ENGINES)
def test_cli_cleaned_reads_integer_ids_as_text(tmp_path, capsys, engine):
    """Ids stored as integers (a Spark job's output, say) join as text on both tables, and the
    checks of the clean tables run on every engine (a missing id is refused)."""
    tx = pd.DataFrame(
        {"customer_id": [7, 7, 8], "order_date": pd.to_datetime(["2024-01-01"] * 3)}
    ).assign(amount=[1.0, 2.0, 3.0])
    us = {"index": False, "coerce_timestamps": "us"}  # Spark refuses nanoseconds
    tx.to_parquet(tmp_path / "tx.parquet", **us)
    pd.DataFrame({"customer_id": [7, 8], "age": [30.0, 40.0]}).to_parquet(tmp_path / "cu.parquet")
    code, err, out = _cleaned_cli(
        capsys,
        tmp_path,
        tmp_path / "tx.parquet",
        "-c",
        str(tmp_path / "cu.parquet"),
        "--engine",
        engine,
    )
    assert code == 0, err
    got, _ = read_snapshot(out)
    assert got["customer_id"].tolist() == ["7", "8"] and got["age"].tolist() == [30.0, 40.0]
    tx.assign(customer_id=[7, None, 8]).to_parquet(tmp_path / "tx.parquet", **us)
    code, err, _ = _cleaned_cli(capsys, tmp_path, tmp_path / "tx.parquet", "--engine", engine)
    assert code == 2 and "1 without customer_id (of 3 rows)" in err


def test_cli_cleaned_warns_when_capped_amounts_saw_later_data(sample_dir, tmp_path, capsys):
    """Capping extreme amounts uses the mean up to the cleaning's reference date: tables cleaned
    later than --as-of are not point-in-time, and the command says so (with the fix)."""
    config = tmp_path / "c.toml"
    config.write_text('[cleaning.policies]\nextreme_amount = "cap"\n')
    clean_dir = tmp_path / "clean"
    args = ["clean", "-t", str(sample_dir / "transactions.csv"), "-o", str(clean_dir)]
    code, _, err = run_cli(
        [*args, "--config", str(config), "--reference-date", "2026-06-30"], capsys
    )
    assert code == 0, err
    tx = clean_dir / "transactions.parquet"
    code, err, _ = _cleaned_cli(capsys, tmp_path, tx, "--as-of", "2026-03-31")
    assert code == 0 and "--reference-date 2026-03-31" in " ".join(err.split())
    code, err, _ = _cleaned_cli(capsys, tmp_path, tx, "--as-of", "2026-06-30")
    assert code == 0 and "warning" not in err
