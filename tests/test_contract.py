"""Every way an input file can break the contract gives one clear line and exit code 2."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

from custseg.errors import InputError
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
    path = write(tmp_path, GOOD, "tx.xlsx")
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
