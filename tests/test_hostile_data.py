"""Bad data never corrupts silently and never crashes: dates past pandas' timestamp range,
infinite amounts, category text that is no valid column name, personal data in messages,
formulas in CSV cells; and the personal-data key's permissions."""

from __future__ import annotations

import os
import re
import stat
from datetime import date, datetime
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import ConfigError, InputError
from features.cleaning import CleaningConfig, clean
from features.contract import CUSTOMERS, TRANSACTIONS, read_table, type_table
from features.parsing import NOT_FINITE, parse_dates, parse_numbers

REF = date(2025, 6, 30)
OUTSIDE = "outside 1900-01-01..2200-12-31"


def write(tmp_path: Path, text: str, name: str = "tx.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def rows_of(result, rule: str = "unreadable_value") -> pd.DataFrame:
    ch = result.changes
    return ch[ch["rule"] == rule].set_index("source_row")


# ---- dates past the nanosecond range: unreadable with a reason, never wrapped --------------


@pytest.mark.parametrize(
    "text", ["9999-12-31", "2262-04-12", "99991231", "1899-12-31", "0001-01-01"]
)
def test_dates_outside_the_range_are_invalid_not_wrapped(text):
    p = parse_dates(pd.Series(["2024-01-01", text]))
    assert p.values.iloc[0] == pd.Timestamp("2024-01-01")
    assert pd.isna(p.values.iloc[1])  # old: 9999-12-31 -> 1816-03-29 05:56, 2262-04-12 -> 1677
    assert p.invalid.tolist() == [False, True]
    assert p.reasons[OUTSIDE].tolist() == [False, True]


def test_the_range_bounds_are_inclusive():
    p = parse_dates(pd.Series(["1900-01-01", "2200-12-31", "2201-01-01"]))
    assert p.invalid.tolist() == [False, False, True]


@pytest.mark.parametrize("unit", ["s", "ms", "us"])
def test_parquet_timestamps_past_2262_are_invalid_not_a_crash(tmp_path, unit):
    path = tmp_path / "tx.parquet"
    stamps = pa.array(
        [datetime(2024, 1, 1, 13), datetime(9999, 12, 31), None],
        pa.timestamp(unit),
    )
    pq.write_table(
        pa.table({"customer_id": ["A", "B", "C"], "order_date": stamps, "amount": [1.0, 2, 3]}),
        path,
    )
    t = read_table(path, TRANSACTIONS, max_invalid_share=1.0)  # old: OutOfBoundsDatetime
    assert t.frame["order_date"].iloc[0] == pd.Timestamp("2024-01-01")
    assert t.frame["order_date"].isna().tolist() == [False, True, True]
    assert t.invalid["order_date"].tolist() == [False, True, False]
    assert t.reasons["order_date"].tolist() == [OUTSIDE]


def test_zoned_and_date_typed_parquet_columns_are_checked_too(tmp_path):
    path = tmp_path / "tx.parquet"
    zoned = pa.array([datetime(2024, 1, 1), datetime(9999, 12, 31)], pa.timestamp("us"))
    pq.write_table(
        pa.table(
            {
                "customer_id": ["A", "B"],
                "order_date": zoned.cast(pa.timestamp("us", "Asia/Shanghai")),
                "amount": [1.0, 2.0],
            }
        ),
        path,
    )
    assert read_table(path, TRANSACTIONS, max_invalid_share=1.0).invalid["order_date"][1]
    path = tmp_path / "c.parquet"
    days = pa.array([date(2024, 1, 1), date(9999, 12, 31)], pa.date32())
    pq.write_table(pa.table({"customer_id": ["A", "B"], "signup_date": days}), path)
    t = read_table(path, CUSTOMERS, max_invalid_share=1.0)
    assert t.frame["signup_date"].isna().tolist() == [False, True]


def test_a_far_date_is_dropped_with_its_reason_in_the_audit(tmp_path):
    rows = "".join(f"C{i},2024-01-{i + 1:02d},{i + 1}\n" for i in range(9)) + "C9,9999-12-31,5\n"
    cust = "customer_id,signup_date\n" + "".join(f"C{i},2023-01-01\n" for i in range(9))
    cust += "C9,9999-12-31\n"
    t = read_table(write(tmp_path, "customer_id,order_date,amount\n" + rows), TRANSACTIONS)
    c = read_table(write(tmp_path, cust, "c.csv"), CUSTOMERS)
    r = clean(t, c, CleaningConfig(reference_date=REF))
    assert "C9" not in set(r.transactions["customer_id"])
    logged = rows_of(r)
    tx_row = logged[logged["table"] == "transactions"].loc[9]
    assert (tx_row["action"], tx_row["old_value"], tx_row["reason"]) == (
        "drop",
        "9999-12-31",
        OUTSIDE,
    )
    signup = logged[logged["table"] == "customers"].loc[9]  # optional: made missing
    assert (signup["action"], signup["reason"]) == ("change", OUTSIDE)
    assert r.customers.set_index("customer_id")["signup_date"].isna()["C9"]
    rules = {(x["table"], x["rule"], x["action"]): x for x in r.audit["rules"]}
    dropped = rules[("transactions", "unreadable_value", "drop")]
    assert dropped["reasons"] == {f"order_date: {OUTSIDE}": 1}
    assert any(
        f"transactions.order_date: 1 unreadable value(s) [{OUTSIDE}]" in n for n in r.audit["notes"]
    )


def test_a_column_of_far_dates_is_a_contract_error(tmp_path):
    text = "customer_id,order_date,amount\nA,9999-12-31,1\nB,9999-12-31,2\nC,2024-01-01,3\n"
    with pytest.raises(InputError) as exc:
        read_table(write(tmp_path, text), TRANSACTIONS)
    msg = str(exc.value)
    assert "'order_date'" in msg and f"2 of them {OUTSIDE}" in msg and "'9999-12-31'" in msg


def test_the_date_range_is_configurable():
    cfg = CleaningConfig.from_dict({"min_date": "2000-01-01", "max_date": date(2100, 1, 1)})
    assert (cfg.min_date, cfg.max_date) == (date(2000, 1, 1), date(2100, 1, 1))
    t = type_table(
        pd.DataFrame(
            {
                "customer_id": ["A", "B"],
                "order_date": ["1950-06-01", "2024-01-01"],
                "amount": [1, 2],
            }
        ),
        TRANSACTIONS,
    )
    r = clean(t, None, cfg)
    assert r.transactions["customer_id"].tolist() == ["B"]
    assert rows_of(r).loc[0, "reason"] == "outside 2000-01-01..2100-01-01"
    assert r.audit["config"]["min_date"] == "2000-01-01"


@pytest.mark.parametrize(
    "setting, needle",
    [
        ({"min_date": "someday"}, "cleaning.min_date = 'someday': not YYYY-MM-DD"),
        ({"max_date": 2200}, "cleaning.max_date = 2200: a date"),
        ({"max_date": "9999-12-31"}, "must lie within 1677-09-22..2262-04-11"),
        ({"min_date": "2100-01-01", "max_date": "2000-01-01"}, "must be before max_date"),
    ],
)
def test_a_bad_date_range_is_a_config_error(setting, needle):
    with pytest.raises(ConfigError, match=re.escape(needle)):
        CleaningConfig.from_dict(setting)


# ---- non-finite numbers: unreadable with a reason -----------------------------------------


def test_infinite_amounts_in_a_csv_are_unreadable_and_dropped(tmp_path):
    rows = "".join(f"C{i},2024-01-{i + 1:02d},{i + 1}\n" for i in range(10))
    text = "customer_id,order_date,amount\n" + rows + "X,2024-01-02,inf\nY,2024-01-03,-inf\n"
    t = read_table(write(tmp_path, text), TRANSACTIONS)  # Arrow reads inf as a float
    assert t.invalid["amount"][-2:].tolist() == [True, True]
    assert t.reasons["amount"].tolist() == [NOT_FINITE, NOT_FINITE]
    r = clean(t, None, CleaningConfig(reference_date=REF))
    assert np.isfinite(r.transactions["amount"]).all() and len(r.transactions) == 10
    assert rows_of(r)["reason"].tolist() == [NOT_FINITE, NOT_FINITE]
    note = next(n for n in r.audit["notes"] if "extreme_amount threshold" in n)
    assert "inf" not in note  # old: "threshold = 10 x mean = inf"


def test_text_and_typed_non_finite_numbers_are_invalid():
    text = parse_numbers(pd.Series(["1", "inf", "-Infinity", "NaN", "abc", None]))
    assert text.invalid.tolist() == [False, True, True, True, True, False]
    assert text.reasons[NOT_FINITE].tolist() == [False, True, True, True, False, False]
    typed = parse_numbers(pd.Series([1.0, np.inf, -np.inf, np.nan]))
    assert typed.invalid.tolist() == [False, True, True, False]  # NaN in memory: missing
    assert typed.values.isna().tolist() == [False, True, True, True]


def test_nan_in_a_parquet_amount_is_unreadable_null_is_missing(tmp_path):
    path = tmp_path / "tx.parquet"
    amount = pa.array([1.0, float("nan"), None, 4.0, 5.0, 6.0], pa.float64())
    pq.write_table(
        pa.table(
            {"customer_id": list("ABCDEF"), "order_date": ["2024-01-01"] * 6, "amount": amount}
        ),
        path,
    )
    t = read_table(path, TRANSACTIONS)
    assert t.invalid["amount"].tolist() == [False, True, False, False, False, False]
    r = clean(t, None, CleaningConfig(reference_date=REF))
    assert rows_of(r).loc[1, "reason"] == NOT_FINITE
    assert rows_of(r, "missing_key_field").loc[2, "column"] == "amount"


# ---- category values as feature names -----------------------------------------------------

SAFE_NAME = re.compile(r"category_share__\w*")  # no JSON character, no dot, no space


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(max_size=12), max_size=12, unique=True), st.randoms())
def test_category_names_are_safe_unique_deterministic_and_say_their_value(values, rnd):
    from features.registry import category_columns, category_value

    names = category_columns(values)
    assert list(names) == values
    assert all(SAFE_NAME.fullmatch(n) for n in names.values())
    assert len({n.casefold() for n in names.values()}) == len(values)  # DuckDB: case-blind
    assert all(category_value(n) == v for v, n in names.items())
    shuffled = list(values)
    rnd.shuffle(shuffled)
    assert category_columns(shuffled) == names  # the set decides, not its order


def test_safe_values_keep_their_names():
    from features.registry import category_columns

    assert category_columns(["服装", "home_garden", "Books, Music"]) == {
        "服装": "category_share__服装",
        "home_garden": "category_share__home_garden",
        "Books, Music": "category_share__Books_2C_20Music",
    }


HOSTILE = ['Books, Music "x"', "{a}: [b]", "Books", "books", "x.y"]


def hostile_log() -> pd.DataFrame:
    n = 40
    return pd.DataFrame(
        {
            "customer_id": [f"C{i % 10}" for i in range(n)],
            "order_date": pd.Timestamp("2024-01-01") + pd.to_timedelta(np.arange(n) * 3, "D"),
            "amount": np.arange(n) + 1.0,
            "category": [HOSTILE[i % len(HOSTILE)] for i in range(n)],
            "is_refund": False,
        }
    )


@pytest.mark.parametrize("engine", ["duckdb", "polars"])
def test_features_from_hostile_categories_train_lightgbm(engine):
    import lightgbm as lgb

    from features.build import build_features
    from features.registry import describe

    f = build_features(hostile_log(), None, date(2024, 6, 30), engine=engine)  # old duckdb: clash
    shares = [c for c in f.columns if c.startswith("category_share__")]
    assert len(shares) == len(HOSTILE) and all(SAFE_NAME.fullmatch(c) for c in shares)
    assert sorted(f.attrs["categories"]) == sorted(HOSTILE)  # the values as the data spell them
    described = {x.name: x.description for x in describe(list(f.columns))}
    assert {described[c].removeprefix("share of spend in category ") for c in shares} == set(
        HOSTILE
    )
    x = f[shares + ["monetary", "frequency_orders"]]
    y = np.arange(len(f)) % 2
    lgb.LGBMClassifier(n_estimators=2, min_child_samples=1, verbose=-1).fit(x, y)  # old: error


def test_online_features_name_hostile_categories_as_the_batch_does():
    from features.build import build_features
    from features.online import OnlineFeatures

    log = hostile_log()
    batch = build_features(log, None, date(2024, 6, 30))
    online = OnlineFeatures(batch.attrs["categories"], with_customers=False)(log, date(2024, 6, 30))
    pd.testing.assert_frame_equal(
        online[batch.columns], batch, check_dtype=False, check_exact=False, check_like=True
    )


def test_the_serving_schema_takes_escaped_category_columns():
    from features.registry import category_columns
    from serving.schemas import row_model

    cols = tuple(category_columns(HOSTILE).values())
    adapter = row_model(cols, ())
    row = {"customer_id": "A", **dict.fromkeys(cols, 0.5)}
    assert adapter.validate_python([row])[0] == row


# ---- personal data: the key's permissions, values in messages -----------------------------


def test_the_pii_key_is_never_readable_by_others(tmp_path, monkeypatch):
    from features import pii

    monkeypatch.delenv("CUSTSEG_PII_KEY")
    seen = []
    chmod = Path.chmod

    def watch(self, mode, **kw):  # the permissions the file had before any chmod
        seen.append(stat.S_IMODE(os.stat(self).st_mode))
        return chmod(self, mode, **kw)

    monkeypatch.setattr(Path, "chmod", watch)
    old = os.umask(0)  # a lax umask: a file created with default permissions would be 0666
    try:
        key = pii._key()
    finally:
        os.umask(old)
    from core import catalog, paths

    key_file = paths.home() / catalog.PII_KEY
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert all(mode == 0o600 for mode in seen), [oct(m) for m in seen]
    assert pii._key() == key and len(key_file.read_text().strip()) == 64
    assert [p.name for p in key_file.parent.iterdir() if "pii" in p.name] == [key_file.name]


def test_an_existing_lax_pii_key_is_kept_and_made_private(monkeypatch):
    from core import catalog, paths
    from features import pii

    monkeypatch.delenv("CUSTSEG_PII_KEY")
    key_file = paths.home() / catalog.PII_KEY
    key_file.write_text("an old key\n")
    key_file.chmod(0o644)
    first = pii._key()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert key_file.read_text() == "an old key\n" and pii._key() == first


PHONES = ("+86-138-1234-5678", "139-0000-1111")


@pytest.mark.parametrize("target, other", [("amount", "order_date"), ("order_date", "amount")])
def test_a_phone_column_mapped_to_the_wrong_target_is_masked_in_the_error(tmp_path, target, other):
    value = "2024-01-01" if other == "order_date" else "1"
    text = f"customer_id,{other},phone\n" + "".join(
        f"{c},{value},{phone}\n" for c, phone in zip("AB", PHONES, strict=True)
    )
    with pytest.raises(InputError) as exc:
        read_table(write(tmp_path, text), TRANSACTIONS, {"*": {target: "phone"}})
    msg = str(exc.value)
    assert f"'phone' (as {target})" in msg and "row 1:" in msg
    for digits in ("1234-5678", "0000-1111", "138-1234", "139-0000"):
        assert digits not in msg, msg  # old: row 1: '+86-138-1234-5678'
    assert "5678'" in msg  # the shape stays: +86**********5678


def test_phone_shaped_values_are_masked_whatever_the_column(tmp_path):
    text = "customer_id,order_date,amount\nA,2024-01-01,138-1234-5678\nB,2024-01-01,x\n"
    with pytest.raises(InputError) as exc:
        read_table(write(tmp_path, text), TRANSACTIONS)
    assert "138-1234-5678" not in str(exc.value) and "'x'" in str(exc.value)


def test_a_mapped_phone_never_reaches_the_audit_log_in_clear(tmp_path):
    rows = "".join(f"C{i},2024-01-01,{i + 1}\n" for i in range(9))
    text = "customer_id,order_date,phone\n" + rows + "C9,2024-01-01,+86-138-1234-5678\n"
    t = read_table(write(tmp_path, text), TRANSACTIONS, {"*": {"amount": "phone"}})
    r = clean(t, None, CleaningConfig(reference_date=REF))
    assert "1234" not in "".join(r.changes["old_value"].dropna())


# ---- CSV outputs for spreadsheets: no formulas --------------------------------------------


def test_spreadsheet_safe_quotes_formula_text_not_numbers():
    from features.vector import spreadsheet_safe

    df = pd.DataFrame(
        {
            "customer_id": ["=1+2", "+cmd", "-x", "@SUM(A1)", "\tx", "\rx", "ok", None],
            "p": [-0.5, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, np.nan],
            "segment": pd.Categorical(["=bad", "b", "b", "b", "b", "b", "b", "b"]),
        }
    )
    out = spreadsheet_safe(df)
    assert out["customer_id"].tolist()[:7] == [
        "'=1+2",
        "'+cmd",
        "'-x",
        "'@SUM(A1)",
        "'\tx",
        "'\rx",
        "ok",
    ]
    assert pd.isna(out["customer_id"].iloc[7])
    assert out["p"].dtype == np.float64 and out["p"].iloc[0] == -0.5
    assert out["segment"].iloc[0] == "'=bad"
    assert df["customer_id"].iloc[0] == "=1+2"  # the caller's frame is left alone


def test_scores_csv_cells_are_not_formulas(tmp_path, monkeypatch):
    import training.report
    from training.scores import write_scores

    monkeypatch.setattr(training.report, "write_report", lambda path, **kw: path.write_text("r"))
    features = pd.DataFrame({"customer_id": ['=HYPERLINK("http://x")', "B"]})
    labels = np.array(["@champions", "-at risk"], object)
    profile = pd.DataFrame(
        {
            "segment": [*labels, "all"],
            "name": ["+top", "=risk", "all customers"],
            "name_zh": ["@冠军", "风险", "全部客户"],
            "strategy_direction": ["-keep", "win back", ""],
        }
    )
    scheme = SimpleNamespace(name="rfm", labels=labels, profile=profile)
    paths = write_scores(tmp_path, features, REF, {}, [scheme], {}, None, {}, [], None)
    text = paths["scores"].read_text("utf-8-sig")
    assert "'=HYPERLINK" in text and "'@champions" in text and "'-at risk" in text
    assert "'+top" in text and "'=risk" in text and "'@冠军" in text and "'-keep" in text
    scores = pd.read_csv(paths["scores"])
    assert scores["repurchase_probability"].isna().all()  # numbers stay numbers (empty here)


def test_profiles_csv_cells_are_not_formulas(tmp_path):
    from training.segmentation.stage import write

    profile = pd.DataFrame(
        {
            "segment": ["a"],
            "name": ["=cmd|' /C calc'!A0"],
            "customers": [1],
            "revenue_share": [-0.5],
        }
    )
    scheme = SimpleNamespace(name="rules", labels=np.array(["a"], object), profile=profile)
    paths = write(tmp_path, pd.DataFrame({"customer_id": ["A"]}), [scheme])
    got = pd.read_csv(paths["profiles"])
    assert got["name"].iloc[0] == "'=cmd|' /C calc'!A0"
    assert got["customers"].iloc[0] == 1 and got["revenue_share"].iloc[0] == -0.5  # unquoted


# ---- end to end ---------------------------------------------------------------------------


@pytest.mark.slow
def test_the_main_job_runs_through_hostile_values(sample_dir, tmp_path):
    from training.pipeline import Configs, Inputs, run
    from training.prediction.config import PredictionConfig

    tx = pd.read_csv(sample_dir / "transactions.csv", dtype=str, keep_default_na=False)
    cust = pd.read_csv(sample_dir / "customers.csv", dtype=str, keep_default_na=False)
    odd = '=HYPERLINK("http://x")'
    first = cust["customer_id"].iloc[0]
    tx.loc[tx["customer_id"] == first, "customer_id"] = odd
    cust.loc[0, "customer_id"] = odd
    cust.loc[1, "signup_date"] = "9999-12-31"
    tx.loc[tx.index[::7], "category"] = 'Books, Music "x"'
    tx.loc[tx.index[3], "amount"] = "inf"
    tx.loc[tx.index[5], "order_date"] = "9999-12-31"
    tx.to_csv(tmp_path / "tx.csv", index=False)
    cust.to_csv(tmp_path / "c.csv", index=False)

    configs = Configs(prediction=PredictionConfig(trials=2, tune_rows=1000))
    r = run(
        Inputs(tmp_path / "tx.csv", tmp_path / "c.csv"),
        tmp_path / "out",
        as_of=date(2026, 3, 31),
        track=None,
        configs=configs,
        trials=2,
    )
    columns = list(r.features.table.columns)
    assert "category_share__Books_2C_20Music_20_22x_22" in columns
    notes = " ".join(r.features.result.audit["notes"])
    assert f"[{NOT_FINITE}]" in notes and f"[{OUTSIDE}]" in notes
    scores = pd.read_csv(r.paths["scores"])
    assert ("'" + odd) in set(scores["customer_id"])
    assert scores["repurchase_probability"].between(0, 1).all()


def test_mlflow_param_names_from_scheme_text_are_accepted():
    """A segment key from a scheme file becomes part of a param name: MLflow refuses `"`, `<`."""
    import re

    from core.tracking import flatten

    params = flatten("segments", [{"key": '">x<svg onload=1>', "name": "a"}, {"key": "ok"}])
    assert all(re.fullmatch(r"[\w./ :-]+", k) for k in params), params
    assert "segments.ok" not in params and len(params) == 1


def test_a_dollar_in_a_segment_name_does_not_stop_the_plots():
    """matplotlib reads `$...$` as mathtext: `cost $\\foo$` raised while drawing the report."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from training.segmentation.plots import segment_label

    fig, ax = plt.subplots()
    ax.set_yticks([0], [segment_label(r"cost $\foo$ club", "会员")])
    fig.canvas.draw()  # raised ValueError before
    assert ax.get_yticklabels()[0].get_text().startswith(r"cost \$\foo\$")
    plt.close(fig)
