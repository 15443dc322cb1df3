"""Excel input reads like CSV (ids as text, dates, amounts), a named sheet, clear errors for a
missing sheet and a broken file; ids exported as floats (17850.0) read back as 17850 in every
format. Fixtures are small workbooks written by xlsxwriter (fastexcel only reads)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
import xlsxwriter

from core.errors import InputError
from features.contract import CUSTOMERS, TRANSACTIONS, read_table, type_table
from features.parsing import normalise_ids
from tests.conftest import run_cli

CSV = (
    "customer_id,order_date,amount,order_id,quantity,product\n"
    "007,2024-01-01,10.5,0001,1,85123A\n"
    "17850,2024-01-02,20,0002,2,71053\n"
    "C-3,2024-01-03,1200,0003,3,\n"
)


def write_xlsx(path, sheets: dict[str, list[list]]):
    """A workbook with one sheet per item: rows of cells (datetime cells with a date format,
    None an empty cell, a str starting with "=" a formula whose cached value follows "|")."""
    book = xlsxwriter.Workbook(path)
    day = book.add_format({"num_format": "yyyy-mm-dd"})
    for name, rows in sheets.items():
        ws = book.add_worksheet(name)
        for i, row in enumerate(rows):
            for j, value in enumerate(row):
                if value is None:
                    continue
                if isinstance(value, dt.datetime):
                    ws.write_datetime(i, j, value, day)
                elif isinstance(value, str) and value.startswith("="):
                    formula, _, cached = value.partition("|")
                    ws.write_formula(i, j, formula, None, cached)
                elif isinstance(value, str):
                    ws.write_string(i, j, value)  # "007" stays text, as typed in Excel with '
                else:
                    ws.write(i, j, value)
    book.close()
    return path


HEADER = ["customer_id", "order_date", "amount", "order_id", "quantity", "product"]
ROWS = [
    ["007", dt.datetime(2024, 1, 1), 10.5, "0001", 1, "85123A"],
    [17850, "2024-01-02", 20, "0002", 2, 71053],  # a number cell id, a date typed as text
    ["C-3", dt.datetime(2024, 1, 3), "¥1,200", "0003", 3, None],
]


def test_excel_reads_as_the_same_typed_table_as_csv(tmp_path):
    csv = tmp_path / "tx.csv"
    csv.write_text(CSV, encoding="utf-8")
    xlsx = write_xlsx(tmp_path / "tx.xlsx", {"Sheet1": [HEADER, *ROWS]})
    from_csv, from_xlsx = read_table(csv, TRANSACTIONS), read_table(xlsx, TRANSACTIONS)
    pd.testing.assert_frame_equal(from_xlsx.frame, from_csv.frame)
    df = from_xlsx.frame
    assert df["customer_id"].tolist() == ["007", "17850", "C-3"]
    assert df["order_id"].tolist() == ["0001", "0002", "0003"]
    assert df["product"].tolist()[:2] == ["85123A", "71053"] and pd.isna(df["product"][2])
    assert str(df["order_date"].dtype) == "datetime64[ns]"
    assert df["order_date"].dt.day.tolist() == [1, 2, 3]
    assert df["amount"].tolist() == [10.5, 20.0, 1200.0]
    assert not from_xlsx.invalid


def test_date_cells_are_a_typed_column(tmp_path):
    rows = [["customer_id", "order_date", "amount"]]
    rows += [[f"C{i}", dt.datetime(2024, 1, 1 + i), i] for i in range(3)]
    df = read_table(write_xlsx(tmp_path / "tx.xlsx", {"S": rows}), TRANSACTIONS).frame
    assert df["order_date"].dt.strftime("%Y-%m-%d").tolist() == [
        "2024-01-01",
        "2024-01-02",
        "2024-01-03",
    ]


def test_a_late_odd_cell_is_read_not_lost(tmp_path):
    """fastexcel types a column from its first 1000 rows unless told otherwise, and turns later
    cells of another type into missing values: "¥1,200" and a text date in row 1100 count."""
    rows = [["customer_id", "order_date", "amount"]]
    rows += [[f"C{i}", dt.datetime(2024, 1, 1), i + 1] for i in range(1100)]
    rows += [["LAST", "05/01/2024", "¥1,200"]]
    t = read_table(write_xlsx(tmp_path / "tx.xlsx", {"S": rows}), TRANSACTIONS)
    last = t.frame.iloc[-1]
    assert last["amount"] == 1200.0 and last["order_date"] == pd.Timestamp("2024-01-05")
    assert not t.invalid


def test_a_named_sheet_is_read(tmp_path):
    path = write_xlsx(
        tmp_path / "book.xlsx",
        {"Notes": [["read me"], ["and me"]], "Orders": [HEADER, *ROWS]},
    )
    df = read_table(path, TRANSACTIONS, sheet="Orders").frame
    assert df["customer_id"].tolist() == ["007", "17850", "C-3"]
    with pytest.raises(InputError, match="missing required column"):  # the first sheet
        read_table(path, TRANSACTIONS)


def test_a_missing_sheet_lists_the_sheets(tmp_path):
    path = write_xlsx(tmp_path / "book.xlsx", {"Notes": [["x"]], "Orders": [HEADER, *ROWS]})
    with pytest.raises(InputError) as exc:
        read_table(path, TRANSACTIONS, sheet="orders")
    msg = str(exc.value)
    assert "book.xlsx" in msg and "'orders'" in msg and "'Notes', 'Orders'" in msg
    assert "\n" not in msg


@pytest.mark.parametrize(
    "name, content, needle",
    [
        ("broken.xlsx", b"PK\x03\x04" + b"\x00" * 64, "not a readable .xlsx workbook"),
        ("text.xlsx", b"customer_id,order_date,amount\nA,2024-01-01,1\n", "not a readable"),
        ("old.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504, "save it as .xlsx"),
    ],
)
def test_a_broken_or_old_workbook_is_one_clear_line(tmp_path, capsys, name, content, needle):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InputError, match=needle) as exc:
        read_table(path, TRANSACTIONS)
    assert name in str(exc.value) and "\n" not in str(exc.value)
    code, _, err = run_cli(["clean", "-t", str(path), "-o", str(tmp_path / "out")], capsys)
    assert code == 2 and "Traceback" not in err
    assert needle in err.strip().splitlines()[-1]


def test_empty_sheet_header_only_and_duplicate_header(tmp_path):
    path = write_xlsx(
        tmp_path / "book.xlsx",
        {
            "Empty": [],
            "Header": [HEADER],
            "Twice": [["customer_id", "order_date", "amount", "amount"], ["A", "2024-01-01", 1, 2]],
        },
    )
    with pytest.raises(InputError, match="sheet 'Empty' is empty"):
        read_table(path, TRANSACTIONS)
    with pytest.raises(InputError, match="sheet 'Header' has a header but no data rows"):
        read_table(path, TRANSACTIONS, sheet="Header")
    with pytest.raises(InputError, match="duplicate column name.*amount"):
        read_table(path, TRANSACTIONS, sheet="Twice")


def test_a_sheet_for_a_csv_is_an_error(tmp_path):
    csv = tmp_path / "tx.csv"
    csv.write_text(CSV, encoding="utf-8")
    with pytest.raises(InputError, match="only an .xlsx workbook has sheets"):
        read_table(csv, TRANSACTIONS, sheet="Sheet1")


def test_error_cells_are_unreadable_values_and_an_empty_tail_is_no_rows(tmp_path):
    rows = [["customer_id", "order_date", "amount"]]
    rows += [[f"C{i}", dt.datetime(2024, 1, 1 + i, 8, 30, 0, 500000), i + 1] for i in range(9)]
    rows += [["C9", "=NA()|#N/A", "=1/0|#DIV/0!"], ["=NA()|#N/A", "2024-01-11", 11]]
    rows += [[], [" ", None, None]]
    t = read_table(write_xlsx(tmp_path / "tx.xlsx", {"S": rows}), TRANSACTIONS)
    assert len(t.frame) == 11  # the blank row and the row of a space are no orders
    assert pd.isna(t.frame["customer_id"].iloc[10])  # #N/A is nobody's id: missing
    assert t.raw["amount"].tolist() == ["#DIV/0!"] and t.raw["order_date"].tolist() == ["#N/A"]
    assert t.frame["amount"].iloc[:9].tolist() == [float(i + 1) for i in range(9)]
    assert t.frame["order_date"].iloc[8] == pd.Timestamp("2024-01-09")


def test_customers_from_excel_keep_phone_and_flags(tmp_path):
    rows = [
        ["customer_id", "signup_date", "age", "phone", "is_test"],
        [1001, dt.datetime(2023, 5, 1), 34, 13812345678, False],
        ["0042", "2023-05-02", "35岁", "139-0000-1111", "是"],
    ]
    df = read_table(write_xlsx(tmp_path / "c.xlsx", {"S": rows}), CUSTOMERS).frame
    assert df["customer_id"].tolist() == ["1001", "0042"]
    assert df["phone"].tolist() == ["13812345678", "139-0000-1111"]
    assert df["age"].tolist() == [34.0, 35.0] and df["is_test"].tolist() == [False, True]


# --- ids exported as floats -------------------------------------------------------------


def _float_ids() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "CustomerID": [17850.0, np.nan, 13047.0],
            "order_date": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03"]),
            "amount": [1.5, 2.5, 3.5],
            "order_id": [536365.0, 536366.0, np.nan],
        }
    )


def test_float_ids_in_parquet_are_text_without_point_zero(tmp_path):
    path = tmp_path / "tx.parquet"
    _float_ids().to_parquet(path)
    df = read_table(path, TRANSACTIONS, {"*": {"customer_id": "CustomerID"}}).frame
    assert df["customer_id"].tolist()[::2] == ["17850", "13047"] and pd.isna(df["customer_id"][1])
    assert df["order_id"].tolist()[:2] == ["536365", "536366"] and pd.isna(df["order_id"][2])


def test_float_ids_with_nan_values_in_parquet_are_missing(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "tx.parquet"
    table = pa.table(
        {
            "customer_id": pa.array([17850.0, float("nan")]),  # NaN as a value, not null
            "order_date": pa.array(["2024-01-01", "2024-01-02"]),
            "amount": pa.array([1.0, 2.0]),
        }
    )
    pq.write_table(table, path)
    df = read_table(path, TRANSACTIONS).frame
    assert df["customer_id"][0] == "17850" and pd.isna(df["customer_id"][1])


def test_float_ids_written_as_text_in_csv(tmp_path):
    path = tmp_path / "tx.csv"
    # what pandas writes for a float id column with missing values
    _float_ids().rename(columns={"CustomerID": "customer_id"}).to_csv(path, index=False)
    assert "17850.0" in path.read_text()
    df = read_table(path, TRANSACTIONS).frame
    assert df["customer_id"].tolist()[::2] == ["17850", "13047"] and pd.isna(df["customer_id"][1])
    assert df["order_id"].tolist()[:2] == ["536365", "536366"]


def test_float_ids_in_excel_as_numbers_and_as_text(tmp_path):
    rows = [
        ["customer_id", "order_date", "amount", "order_id"],
        [17850.0, "2024-01-01", 1, "536365.0"],
        [None, "2024-01-02", 2, "536366.0"],
        [13047, "2024-01-03", 3, None],
    ]
    df = read_table(write_xlsx(tmp_path / "tx.xlsx", {"S": rows}), TRANSACTIONS).frame
    assert df["customer_id"].tolist()[::2] == ["17850", "13047"] and pd.isna(df["customer_id"][1])
    assert df["order_id"].tolist()[:2] == ["536365", "536366"] and pd.isna(df["order_id"][2])


def test_float_ids_in_a_dataframe(tmp_path):
    df = type_table(_float_ids(), TRANSACTIONS, column_map={"*": {"customer_id": "CustomerID"}})
    assert df.frame["customer_id"].tolist()[::2] == ["17850", "13047"]


@pytest.mark.parametrize(
    "ids",
    [
        ["17850.0", "1.0a", "13047.0"],  # one real text id: the column is text ids
        ["17850.0", "ABC", None],
        ["1.5", "2.0"],  # not whole numbers
        ["17850.0", "13047"],  # not every value written as a float
        ["007", "0042"],
    ],
)
def test_real_text_ids_are_left_alone(tmp_path, ids):
    lines = "".join(f"{'' if i is None else i},2024-01-0{n + 1},1\n" for n, i in enumerate(ids))
    path = tmp_path / "tx.csv"
    path.write_text("customer_id,order_date,amount\n" + lines, encoding="utf-8")
    got = read_table(path, TRANSACTIONS).frame["customer_id"]
    assert [None if pd.isna(v) else v for v in got] == ids


def test_normalise_ids():
    got = normalise_ids(pd.Series([" 17850.0 ", None, "-3.00", ""], name="id"))
    assert got.name == "id" and [None if pd.isna(v) else v for v in got] == [
        "17850",
        None,
        "-3",
        None,
    ]
    floats = normalise_ids(pd.Series([17850.0, np.nan, 2.5, 1e15]))
    assert [None if pd.isna(v) else v for v in floats] == ["17850", None, "2.5", "1000000000000000"]


def test_padded_header_names_and_numbers_in_an_id_column(tmp_path):
    rows = [
        [" customer_id ", "order_date ", " amount", "x", "x_1"],  # x_1: a real name, not a copy
        [17850, dt.datetime(2024, 1, 1), 1, 1, 2],
        [13047.0, dt.datetime(2024, 1, 2), 2, 3, 4],
    ]
    df = read_table(write_xlsx(tmp_path / "tx.xlsx", {"S": rows}), TRANSACTIONS).frame
    assert df["customer_id"].tolist() == ["17850", "13047"]
    assert df["amount"].tolist() == [1.0, 2.0] and df["x_1"].tolist() == [2.0, 4.0]


def test_the_commands_read_a_named_sheet_beside_a_csv_customer_table(tmp_path, capsys):
    book = write_xlsx(tmp_path / "book.xlsx", {"Notes": [["x"]], "Orders": [HEADER, *ROWS]})
    customers = tmp_path / "customers.csv"  # --sheet concerns the Excel files only
    customers.write_text("customer_id,age\n007,30\n17850,41\nC-3,25\n")
    out = tmp_path / "f.parquet"
    args = ["features", "-t", str(book), "-c", str(customers), "--sheet", "Orders"]
    code, _, err = run_cli([*args, "--as-of", "2024-01-31", "-o", str(out)], capsys)
    assert code == 0, err
    features = pd.read_parquet(out).set_index("customer_id")
    assert features.loc["17850", "monetary"] == 20.0 and features.loc["007", "age"] == 30
