"""Excel input: one sheet of an .xlsx workbook, read straight to Arrow by fastexcel (calamine,
in Rust).

Chosen by measurement (a 540k-row x 8-column sheet of the Online Retail log, 25 MB, 2 busy
cores; ids as text): fastexcel 1.9 s, python-calamine's rows converted to Arrow 4.1 s,
pandas.read_excel with calamine 7.6 s, with openpyxl 43 s; peak RSS 480 MiB against 600, 905
and 590 MiB (118 MiB of it pandas + pyarrow). `read_table` on that sheet: 2.1-2.9 s, 480 MiB.

The sheet reads like a CSV file:
- the header is the sheet's first row, names stripped; a name that appears twice is kept twice
  (fastexcel would rename it `x_1`), so the contract's duplicate-header error names it;
- id and text columns are text: a text cell "007" keeps its zeros, a number cell 17850 is "17850"
  (no ".0"); a number typed as 007 under a "000" format is the number 7: Excel never stored zeros;
- every other column is typed from ALL its cells, not from a sample: fastexcel turns cells that
  do not fit a type guessed from the first 1000 rows into missing values, silently. A column of
  date cells and date text, or of numbers and "¥1,200", is read as text and parsed by the
  contract; a column of date cells is a datetime column;
- a cell holding an Excel error (#N/A, #DIV/0!, ...) is its error text in a date, number or flag
  column, an unreadable value for the contract (fastexcel gives a missing value), and missing in
  an id or text column (#N/A is nobody's id);
- rows after the last one with any value are not rows (a formatted but empty tail).
"""

from __future__ import annotations

import re
from collections.abc import Collection
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from core.errors import InputError

XLSX_SUFFIXES = (".xlsx", ".xlsm")
OLD_EXCEL_SUFFIXES = (".xls",)
# calamine's names of Excel's cell errors -> how Excel shows them
_CELL_ERRORS = {
    "Div0": "#DIV/0!",
    "NA": "#N/A",
    "Name": "#NAME?",
    "Null": "#NULL!",
    "Num": "#NUM!",
    "Ref": "#REF!",
    "Value": "#VALUE!",
    "GettingData": "#GETTING_DATA",
}
_CELL_ERROR = re.compile(r"Error\((\w+)\)")
_FRACTION = r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)\.\d+$"  # how fastexcel writes a date cell as text
_LIKE = "____-__-__ __:__:__.%"  # a superset of _FRACTION, tested faster
_ALIAS = re.compile(r"(.+)_\d+")  # fastexcel's name for the 2nd, 3rd... `x`: x_1, x_2


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def read_sheet(path: Path, sheet: str | None, string_cols: Collection[str]) -> pa.Table:
    """The first sheet of an .xlsx workbook (or the one named `sheet`) as an Arrow table, the
    columns named in `string_cols` as text. InputError for a file that is no readable workbook, a
    sheet that is not there (naming the sheets that are) or an empty sheet."""
    import fastexcel  # imported here: only Excel input pays for it

    try:
        book = fastexcel.read_excel(path)
    except fastexcel.FastExcelError as exc:
        raise InputError(
            f"{path}: not a readable .xlsx workbook (damaged, password-protected or not an "
            f"Excel file: {_first_line(exc)})"
        ) from None
    sheets = book.sheet_names
    if not sheets:
        raise InputError(f"{path}: the workbook has no sheets")
    if sheet is None:
        sheet = sheets[0]
    elif sheet not in sheets:
        raise InputError(
            f"{path}: no sheet {sheet!r}; the workbook's sheets: {', '.join(map(repr, sheets))}"
        )
    where = f"{path}: sheet {sheet!r}"

    def load(dtypes: dict) -> fastexcel.ExcelSheet:  # parses the whole sheet (~1.5 s per 540k rows)
        return book.load_sheet(
            sheet,
            schema_sample_rows=None,  # type each column from all its cells (see above)
            dtypes=dtypes or None,
            whitespace_as_null=True,
        )

    try:
        data = load({name: "string" for name in string_cols})  # names not in the sheet: ignored
        columns = data.available_columns()
        if not columns:
            raise InputError(f"{where} is empty")
        header = [c.name.strip() if c.column_name_from == "looked_up" else c.name for c in columns]
        if _renamed_duplicates(header):  # the header as written, read once more
            head = book.load_sheet(sheet, header_row=None, n_rows=1, dtypes="string", eager=True)
            header = [
                str(value).strip() if value is not None else columns[j].name
                for j, value in enumerate(col[0].as_py() for col in head.columns)
            ]
        text = [j for j, name in enumerate(header) if name in string_cols]
        if any(columns[j].dtype != "string" for j in text):  # e.g. " customer_id " in the sheet
            data = load(dict.fromkeys(text, "string"))
        batch, errors = data.to_arrow_with_errors()
    except fastexcel.FastExcelError as exc:
        raise InputError(f"{where} cannot be read: {_first_line(exc)}") from None
    if batch.num_columns != len(header):  # never seen: fastexcel reads the header it was given
        raise InputError(f"{where}: {len(header)} header cells but {batch.num_columns} columns")
    table = pa.Table.from_batches([batch]).rename_columns(header)
    typed = [j for j, name in enumerate(header) if name not in string_cols]
    table = _whole_seconds(table, typed)
    if errors is not None and errors.errors:
        table = _with_cell_errors(table, errors.errors, typed)
    table = _without_empty_tail(_dates_as_timestamps(table))
    if table.num_rows == 0:
        raise InputError(f"{where} has a header but no data rows")
    return table


def _renamed_duplicates(names: list[str]) -> bool:
    """Whether fastexcel may have renamed a name that appears twice (`x`, `x_1`): then the
    header is read as written, so the contract names the duplicate."""
    present = set(names)
    return any((m := _ALIAS.fullmatch(n)) and m.group(1) in present for n in names)


def _whole_seconds(table: pa.Table, columns: Collection[int]) -> pa.Table:
    """A date cell in a column read as text is written "2024-01-01 08:30:00.500" by fastexcel
    when it has a fraction of a second, a format the contract's dates do not read: cut to
    "2024-01-01 08:30:00" (dates are days)."""
    for j in columns:
        values = table.column(j)
        # the cheap test first: most text columns hold no such value
        if pa.types.is_string(values.type) and pc.any(pc.match_like(values, _LIKE)).as_py():
            values = pc.replace_substring_regex(values, _FRACTION, r"\1")
            table = table.set_column(j, table.field(j), values)
    return table


def _with_cell_errors(table: pa.Table, errors: list, columns: Collection[int]) -> pa.Table:
    """Error cells (missing in fastexcel's table) of `columns` (not ids: #N/A is nobody's id, so
    it stays missing there) as their Excel text; a typed column holding one becomes text (the
    contract's parsers read the rest of it again)."""
    by_column: dict[int, dict[int, str]] = {}
    for error in errors:
        row, col = error.offset_position
        if col not in columns:
            continue
        found = _CELL_ERROR.search(str(error.detail))
        text = _CELL_ERRORS.get(found.group(1), f"#{found.group(1)}") if found else "#ERROR"
        by_column.setdefault(col, {})[row] = text
    for col, cells in by_column.items():
        values = table.column(col)
        if pa.types.is_timestamp(values.type):  # "2024-01-02 00:00:00", a format dates parse
            values = pc.cast(values, pa.timestamp("s"), safe=False)  # drops any sub-second
        if not pa.types.is_string(values.type):
            values = values.cast(pa.string())
        mask = np.zeros(table.num_rows, bool)
        rows = sorted(cells)
        mask[rows] = True
        values = pc.replace_with_mask(
            values.combine_chunks(), pa.array(mask), pa.array([cells[r] for r in rows])
        )
        table = table.set_column(col, table.field(col).with_type(pa.string()), values)
    return table


def _dates_as_timestamps(table: pa.Table) -> pa.Table:
    """Date columns (Arrow date32) as timestamps: the contract reads those as typed dates."""
    for j, field in enumerate(table.schema):
        if pa.types.is_date(field.type):
            values = table.column(j).cast(pa.timestamp("s"))
            table = table.set_column(j, field.with_type(values.type), values)
    return table


def _without_empty_tail(table: pa.Table) -> pa.Table:
    """The rows up to the last one with any value (whitespace is no value: read as missing)."""
    if table.num_rows == 0 or table.num_columns == 0:
        return table
    filled = np.zeros(table.num_rows, bool)
    for values in table.columns:
        filled |= values.is_valid().to_numpy(zero_copy_only=False)
    last = np.flatnonzero(filled)
    return table.slice(0, int(last[-1]) + 1 if len(last) else 0)
