"""Every way an input file can break the contract gives one clear line and exit code 2."""

from __future__ import annotations

import re
import subprocess
import sys

import pandas as pd
import pytest

from core.errors import InputError
from features.contract import CUSTOMERS, TRANSACTIONS, parse_column_map, read_table
from tests.conftest import run_cli

GOOD = "customer_id,order_date,amount\nA,2024-01-01,10\nB,2024-01-02,20\n"


def write(tmp_path, text: str, name: str = "tx.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def expect_error(tmp_path, capsys, text: str, *needles: str, extra: list[str] | None = None):
    path = write(tmp_path, text)
    code, _, err = run_cli(
        ["clean", "-t", str(path), "-o", str(tmp_path / "out"), *(extra or [])], capsys
    )
    assert code == 2, err
    assert "Traceback" not in err
    line = err.strip().splitlines()[-1]
    assert line.startswith("custseg: error:")
    for needle in needles:
        assert needle in line, line
    return line


def test_missing_required_column_is_named(tmp_path, capsys):
    expect_error(
        tmp_path, capsys, "customer_id,order_date\nA,2024-01-01\n", "tx.csv", "amount", "--column"
    )


def test_unparseable_dates_name_column_and_rows(tmp_path, capsys):
    expect_error(
        tmp_path,
        capsys,
        "customer_id,order_date,amount\nA,yesterday,1\nB,soon,2\nC,2024-01-01,3\n",
        "tx.csv",
        "'order_date'",
        "not dates",
        "row 1: 'yesterday'",
        "row 2: 'soon'",
    )


def test_non_numeric_amounts(tmp_path, capsys):
    expect_error(
        tmp_path,
        capsys,
        "customer_id,order_date,amount\nA,2024-01-01,ten\nB,2024-01-02,lots\n",
        "'amount'",
        "not numbers",
        "row 1: 'ten'",
    )


def test_empty_file(tmp_path, capsys):
    expect_error(tmp_path, capsys, "", "tx.csv", "empty")


def test_header_only(tmp_path, capsys):
    expect_error(tmp_path, capsys, "customer_id,order_date,amount\n", "no data rows")


def test_duplicate_header(tmp_path, capsys):
    expect_error(
        tmp_path,
        capsys,
        "customer_id,order_date,amount,amount\nA,2024-01-01,1,2\n",
        "duplicate column",
        "amount",
    )


def test_missing_file(tmp_path, capsys):
    code, _, err = run_cli(["clean", "-t", str(tmp_path / "nope.csv"), "-o", str(tmp_path)], capsys)
    assert code == 2 and "no such file" in err


def test_unsupported_file_type(tmp_path, capsys):
    path = write(tmp_path, GOOD, "tx.ods")
    code, _, err = run_cli(["clean", "-t", str(path), "-o", str(tmp_path / "o")], capsys)
    assert code == 2 and "unsupported file type" in err


def test_column_mapping(tmp_path):
    path = write(tmp_path, "客户,日期,金额\nA,2024-01-01,10\n")
    t = read_table(
        path, TRANSACTIONS, parse_column_map(["customer_id=客户", "order_date=日期", "amount=金额"])
    )
    assert list(t.frame.columns) == ["customer_id", "order_date", "amount"]
    assert t.renamed == {"customer_id": "客户", "order_date": "日期", "amount": "金额"}


def test_column_mapping_to_absent_source(tmp_path, capsys):
    expect_error(
        tmp_path, capsys, GOOD, "no column 'qty'", extra=["--column", "transactions.quantity=qty"]
    )


@pytest.mark.parametrize(
    "item,needle",
    [
        ("amount", "TARGET=SOURCE"),
        ("bogus=x", "not a custseg column"),
        ("orders.amount=x", "unknown table"),
    ],
)
def test_bad_column_option(item, needle):
    with pytest.raises(InputError, match=needle):
        parse_column_map([item])


def test_string_ids_keep_leading_zeros(tmp_path):
    path = write(tmp_path, "customer_id,order_date,amount,order_id\n007,2024-01-01,10,0001\n")
    df = read_table(path, TRANSACTIONS).frame
    assert df["customer_id"].tolist() == ["007"] and df["order_id"].tolist() == ["0001"]


def test_parquet_int_ids_become_strings(tmp_path):
    path = tmp_path / "tx.parquet"
    pd.DataFrame(
        {
            "customer_id": [1, 2],
            "order_date": pd.to_datetime(["2024-01-01", "2024-01-02"]),
            "amount": [1.5, 2.5],
        }
    ).to_parquet(path)
    df = read_table(path, TRANSACTIONS).frame
    assert df["customer_id"].tolist() == ["1", "2"]
    assert str(df["order_date"].dtype) == "datetime64[ns]"


def test_a_few_bad_values_are_left_to_cleaning(tmp_path):
    rows = "".join(f"C{i},2024-01-{i + 1:02d},{i + 1}\n" for i in range(9)) + "C9,notadate,5\n"
    t = read_table(write(tmp_path, "customer_id,order_date,amount\n" + rows), TRANSACTIONS)
    assert t.invalid["order_date"].sum() == 1 and t.raw["order_date"].tolist() == ["notadate"]


def test_personal_values_are_masked_in_errors(tmp_path):
    path = write(
        tmp_path, "customer_id,phone,age\nA,13812345678,old\nB,13900001111,older\n", "c.csv"
    )
    with pytest.raises(InputError) as exc:
        read_table(path, CUSTOMERS)
    assert "'age'" in str(exc.value) and "13812345678" not in str(exc.value)


def test_name_columns_are_dropped_on_read(tmp_path):
    path = write(tmp_path, "customer_id,name,address\nA,张三,北京市某路1号\n", "c.csv")
    t = read_table(path, CUSTOMERS)
    assert (
        "name" not in t.frame and "address" not in t.frame and t.dropped_pii == ["name", "address"]
    )


def test_bad_config_is_a_clear_error(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[cleaning.policies]\nextreme_amount = "explode"\n')
    line = expect_error(
        tmp_path, capsys, GOOD, "extreme_amount", "allowed", extra=["--config", str(cfg)]
    )
    assert "cap" in line
    cfg.write_text("[cleaning]\nextreme_factr = 3\n")
    expect_error(
        tmp_path, capsys, GOOD, "unknown key", "extreme_factr", extra=["--config", str(cfg)]
    )
    cfg.write_text("[cleaning\n")
    expect_error(tmp_path, capsys, GOOD, "not valid TOML", extra=["--config", str(cfg)])


def test_bad_reference_date(tmp_path, capsys):
    expect_error(
        tmp_path,
        capsys,
        GOOD,
        "--reference-date",
        "YYYY-MM-DD",
        extra=["--reference-date", "May 1"],
    )


def test_console_script_exits_2_without_traceback(tmp_path):
    """The installed `custseg` command itself, as a user runs it."""
    bad = write(tmp_path, "customer_id,amount\nA,1\n")
    proc = subprocess.run(
        [sys.executable, "-m", "custseg", "clean", "-t", str(bad), "-o", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "order_date" in proc.stderr


def test_gzipped_csv_keeps_leading_zeros_like_plain_csv(tmp_path):
    import gzip

    text = "customer_id,order_date,amount\n0000001,2024-01-01,10\n"
    (tmp_path / "tx.csv.gz").write_bytes(gzip.compress(text.encode()))
    df = read_table(tmp_path / "tx.csv.gz", TRANSACTIONS).frame
    assert df["customer_id"].tolist() == ["0000001"]


def test_gzipped_csv_in_another_encoding_is_named(tmp_path, capsys):
    import gzip

    text = "customer_id,order_date,amount,category\nA,2024-01-01,10,服装\n"
    path = tmp_path / "tx.csv.gz"
    path.write_bytes(gzip.compress(text.encode("gbk")))
    code, _, err = run_cli(["clean", "-t", str(path), "-o", str(tmp_path / "o")], capsys)
    assert code == 2 and "not UTF-8" in err and "Traceback" not in err


def test_a_directory_as_input_is_named_as_one(tmp_path, capsys):
    code, _, err = run_cli(["clean", "-t", str(tmp_path), "-o", str(tmp_path / "o")], capsys)
    assert code == 2 and "is a directory" in err


def test_day_month_order_in_doubt_is_an_error_not_a_swap(tmp_path, capsys):
    """03/05/2024 next to 06/30/2024: the column mixes DD/MM and MM/DD, so 03/05 is in doubt."""
    rows = "A,03/05/2024,1\nB,06/30/2024,2\nC,2024-01-02,3\n"
    expect_error(
        tmp_path,
        capsys,
        "customer_id,order_date,amount\n" + rows,
        "'order_date'",
        "month/day/year",
        "row 2: '06/30/2024'",
        "YYYY-MM-DD",
    )


def test_day_first_dates_alone_are_read(tmp_path):
    path = write(tmp_path, "customer_id,order_date,amount\nA,03/05/2024,1\nB,30/06/2024,2\n")
    df = read_table(path, TRANSACTIONS).frame
    assert df["order_date"].dt.strftime("%Y-%m-%d").tolist() == ["2024-05-03", "2024-06-30"]


@pytest.mark.parametrize(
    ("setting", "needle"),
    [
        ('policies = "drop"', "a table of rule = policy"),
        ('min_age = "one"', "min_age = 'one': not a number"),
        ("extreme_factor = true", "not a number"),
        ('test_id_pattern = "["', "not a valid regular expression"),
        ("test_id_pattern = 5", "a regular expression text"),
        ('profile_key_fields = "age"', "a list of customer field names"),
        ("min_age = 50\nmax_age = 20", "must be below max_age"),
    ],
)
def test_bad_cleaning_values_are_clear_errors(tmp_path, capsys, setting, needle):
    cfg = tmp_path / "c.toml"
    cfg.write_text(f"[cleaning]\n{setting}\n", encoding="utf-8")
    expect_error(tmp_path, capsys, GOOD, needle, extra=["--config", str(cfg)])


def test_a_misspelt_profile_key_field_is_an_error(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[cleaning]\nprofile_key_fields = ["agee"]\n', encoding="utf-8")
    cust = write(tmp_path, "customer_id,age\nA,30\nB,40\n", "c.csv")
    expect_error(
        tmp_path,
        capsys,
        GOOD,
        "'agee'",
        "not a column",
        extra=["--config", str(cfg), "-c", str(cust)],
    )


def _flat(text: str) -> str:
    """Console text without line wraps and box drawing."""
    return re.sub(r"[\s│╭╮╰╯─]+", " ", text)


def test_output_paths_of_the_wrong_kind_are_refused_before_work(tmp_path, capsys):
    path = write(tmp_path, GOOD)
    a_file = write(tmp_path, "x", "a_file")
    code, _, err = run_cli(["clean", "-t", str(path), "-o", str(a_file)], capsys)
    assert code == 2 and "is a file" in _flat(err)
    code, _, err = run_cli(["features", "-t", str(path), "-o", str(tmp_path)], capsys)
    assert code == 2 and "is a directory" in _flat(err)
    code, _, err = run_cli(["features", "-t", str(path), "-o", str(tmp_path / "f.csv")], capsys)
    assert code == 2 and "name it *.parquet" in err


def test_a_rule_that_hits_most_rows_is_a_warning(tmp_path, capsys):
    """Every customer unknown to the customer table: the wrong file, not dirt."""
    path = write(tmp_path, GOOD)
    cust = write(tmp_path, "customer_id\nX\nY\n", "c.csv")
    code, out, err = run_cli(
        ["clean", "-t", str(path), "-c", str(cust), "-o", str(tmp_path / "o")], capsys
    )
    assert code == 0, err
    assert "unknown_customer flag on 2 of 2 rows" in _flat(out + err)
    assert "flagged (kept): unknown_customer 2" in _flat(out + err)


def test_features_say_when_cleaning_dropped_every_order(tmp_path, capsys):
    path = write(tmp_path, "customer_id,order_date,amount\nA,2024-01-01,\nB,2024-01-02,\n")
    code, _, err = run_cli(["features", "-t", str(path), "-o", str(tmp_path / "f.parquet")], capsys)
    assert code == 2 and "survives cleaning" in err and "missing_key_field 2" in err


def test_an_as_of_after_the_last_order_is_warned_about(tmp_path, capsys):
    path = write(tmp_path, GOOD)
    args = ["features", "-t", str(path), "-o", str(tmp_path / "f.parquet"), "--as-of", "2024-03-01"]
    code, out, err = run_cli(args, capsys)
    assert code == 0, err
    assert "is 59 day(s) after the last order" in _flat(out + err)


def test_an_as_of_after_today_is_refused(tmp_path, capsys):
    """Cleaning takes --as-of as its reference date: a future one would let future-dated
    orders through as real ones."""
    from datetime import date, timedelta

    path = write(tmp_path, GOOD)
    tomorrow = str(date.today() + timedelta(days=1))
    for extra in ([], ["--cleaned"]):
        args = ["features", "-t", str(path), "-o", str(tmp_path / "f.parquet"), "--as-of", tomorrow]
        if extra:
            code, _, _ = run_cli(["clean", "-t", str(path), "-o", str(tmp_path / "c")], capsys)
            assert code == 0
            args[2] = str(tmp_path / "c" / "transactions.parquet")
        code, _, err = run_cli([*args, *extra], capsys)
        assert code == 2 and f"--as-of {tomorrow} is after today" in err
