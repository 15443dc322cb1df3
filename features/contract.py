"""The data contract: which columns custseg reads, their types, and one clear error when a file
breaks it (missing column, unparseable dates, non-numeric amounts, empty file, duplicate header).

`read_table` returns the file with canonical column names and typed values; values that are
present but unreadable are kept as masks (`TypedTable.invalid`) so cleaning can drop or repair
those rows with a reason instead of losing them silently. Unreadable includes what a parser reads
but no analysis can use: dates outside `date_range` (default 1900-01-01..2200-12-31; a year 9999
would otherwise wrap around to 1816) and inf / -inf (and NaN in a required number column).

Values of personal columns (phone, e-mail, ... by the canonical or the source column name, or
shaped like a phone number or an e-mail address) are masked in every message.
"""

from __future__ import annotations

import csv
import gzip
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from functools import partial
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from core.errors import InputError
from features.excel import OLD_EXCEL_SUFFIXES, XLSX_SUFFIXES, read_sheet
from features.parsing import (
    DATE_RANGE,
    DAY_FIRST,
    as_text,
    normalise_ids,
    parse_bools,
    parse_dates,
    parse_numbers,
)
from features.vector import to_pandas as arrow_to_pandas

Kind = Literal["id", "text", "date", "number", "bool"]


@dataclass(frozen=True)
class Column:
    name: str
    kind: Kind
    required: bool
    description: str


@dataclass(frozen=True)
class TableSchema:
    name: str
    columns: tuple[Column, ...]

    @property
    def required(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    def get(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)


TRANSACTIONS = TableSchema(
    "transactions",
    (
        Column("customer_id", "id", True, "customer identifier (string; never assumed numeric)"),
        Column("order_date", "date", True, "order date; any common format, written YYYY-MM-DD"),
        Column("amount", "number", True, "order amount; negative only for a refund of an order"),
        Column("order_id", "id", False, "order identifier; a refund repeats its order's id"),
        Column("quantity", "number", False, "items in the order"),
        Column("unit_price", "number", False, "price of one item: amount = quantity x unit_price"),
        Column("product", "text", False, "product name or SKU"),
        Column("category", "text", False, "product category"),
        Column("channel", "text", False, "sales channel, normalised to online/offline"),
        Column("store", "text", False, "store or shop"),
        Column("region", "text", False, "region of the order, normalised to 省-市"),
    ),
)

CUSTOMERS = TableSchema(
    "customers",
    (
        Column("customer_id", "id", True, "customer identifier (string)"),
        Column("signup_date", "date", False, "registration date, written YYYY-MM-DD"),
        Column("age", "number", False, "age in years (valid 1..120)"),
        Column("gender", "text", False, "gender, normalised to male/female"),
        Column("region", "text", False, "region, normalised to 省-市"),
        Column("industry", "text", False, "industry"),
        Column("phone", "id", False, "phone number: personal data, hashed on read"),
        Column("email", "id", False, "e-mail address: personal data, hashed on read"),
        Column("phone_hash", "id", False, "keyed hash of the normalised phone (from custseg)"),
        Column("email_hash", "id", False, "keyed hash of the normalised e-mail (from custseg)"),
        Column("is_test", "bool", False, "test account flag (1/0, true/false, 是/否)"),
        Column("tags", "text", False, "free-form tags"),
    ),
)

SCHEMAS = {s.name: s for s in (TRANSACTIONS, CUSTOMERS)}
# Required columns a file may leave out when it has the columns they are computed from (a log
# of order lines: amount = quantity x unit_price, computed by cleaning's first step).
COMPUTED_FROM = {"amount": ("quantity", "unit_price")}
# Columns with personal data that have no analytic use: dropped on read, never written anywhere.
PII_DROP_COLUMNS = ("name", "customer_name", "full_name", "姓名", "address", "地址", "id_card")
# Columns whose values must never be echoed in clear, even in an error message.
PII_COLUMNS = ("phone", "email") + PII_DROP_COLUMNS
# Source column names that say "personal data" (a phone column mapped to the wrong target keeps
# its name in the file): their values are masked wherever they are mapped.
_PERSONAL_NAME = re.compile(
    r"(?i)phone|mobile|e-?mail|(^|[_\W])tel($|[_\W])|id_?card|手机|电话|邮箱|身份证|"
    + "|".join(map(re.escape, PII_DROP_COLUMNS))
)
# Values shaped like an e-mail address or a phone number (10-15 digits: dates and amounts have
# fewer, or other separators) are masked whatever the column is called.
_EMAIL_SHAPE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_PHONE_SHAPE = re.compile(r"\+?[\d\s().-]+")

_PARSERS = {"date": parse_dates, "number": parse_numbers, "bool": parse_bools}
_KIND_WORDS = {"date": "dates", "number": "numbers", "bool": "true/false flags"}
# why a value is unreadable when its parser gives no more specific reason
_NOT_READ = {"date": "not a date", "number": "not a number", "bool": "not a true/false flag"}


@dataclass
class TypedTable:
    """A table in canonical names and types, with what could not be read kept aside."""

    name: str
    source: str
    frame: pd.DataFrame
    invalid: dict[str, np.ndarray] = field(default_factory=dict)  # column -> mask of bad values
    raw: dict[str, pd.Series] = field(default_factory=dict)  # column -> source text (bad rows)
    reasons: dict[str, pd.Series] = field(default_factory=dict)  # column -> why (bad rows)
    renamed: dict[str, str] = field(default_factory=dict)  # canonical -> source column name
    dropped_pii: list[str] = field(default_factory=list)
    date_formats: dict[str, dict[str, int]] = field(default_factory=dict)  # column -> format -> n
    row_numbers: np.ndarray | None = None  # source row of each frame row (None: 0, 1, 2, ...)

    def source_rows(self) -> np.ndarray:
        return np.arange(len(self.frame)) if self.row_numbers is None else self.row_numbers

    def take(self, keep: np.ndarray) -> TypedTable:
        """The rows where `keep` is True, still numbered by their row in the source file."""
        idx = np.flatnonzero(keep)
        new_pos = np.full(len(self.frame), -1)
        new_pos[idx] = np.arange(len(idx))

        def kept(by_column: dict[str, pd.Series]) -> dict[str, pd.Series]:
            out = {}
            for col, series in by_column.items():
                pos = new_pos[series.index.to_numpy()]
                out[col] = series[pos >= 0].set_axis(pos[pos >= 0])
            return out

        return replace(
            self,
            frame=self.frame.iloc[idx].reset_index(drop=True),
            invalid={col: mask[idx] for col, mask in self.invalid.items()},
            raw=kept(self.raw),
            reasons=kept(self.reasons),
            row_numbers=self.source_rows()[idx],
        )


def parse_column_map(items: list[str] | None) -> dict[str, dict[str, str]]:
    """`["amount=金额", "customers.region=地区"]` -> {"*": {"amount": "金额"}, "customers": ...}."""
    out: dict[str, dict[str, str]] = {}
    for item in items or []:
        if "=" not in item:
            raise InputError(f"--column {item!r}: expected TARGET=SOURCE, e.g. amount=金额")
        target, source = (p.strip() for p in item.split("=", 1))
        table, _, col = target.rpartition(".")
        table = table or "*"
        if table != "*" and table not in SCHEMAS:
            raise InputError(
                f"--column {item!r}: unknown table {table!r} (transactions, customers)"
            )
        known = {c.name for s in SCHEMAS.values() for c in s.columns}
        if col not in known or not source:
            raise InputError(
                f"--column {item!r}: {col!r} is not a custseg column; "
                f"known: {', '.join(sorted(known))}"
            )
        out.setdefault(table, {})[col] = source
    return out


def is_personal(column: object) -> bool:
    """Whether a column name (canonical or as in the source file) says personal data."""
    return bool(_PERSONAL_NAME.search(str(column)))


def _looks_personal(text: str) -> bool:
    if _EMAIL_SHAPE.fullmatch(text):
        return True
    return bool(_PHONE_SHAPE.fullmatch(text)) and 10 <= sum(ch.isdigit() for ch in text) <= 15


def mask_value(column: str, value: object, personal: bool = False) -> str:
    """A value safe to print: personal data keeps only its shape (138****5678, a***@x.com).

    Personal: `column` is a personal column, `personal` says so (e.g. the source column's name
    did), or the value is shaped like an e-mail address or a phone number."""
    text = "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)
    if not text:
        return text
    if not (personal or column in PII_COLUMNS or is_personal(column) or _looks_personal(text)):
        return text
    if "@" in text:
        user, _, domain = text.partition("@")
        return f"{user[:1]}***@{domain}"
    return text[:3] + "*" * max(len(text) - 7, 1) + text[-4:] if len(text) > 7 else "***"


def _read_header(path: Path) -> list[str]:
    """The header line (gzip or plain text): id columns are then read as text, so ids such as
    "0000001" keep their leading zeros."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rt", newline="", encoding="utf-8-sig") as fh:
            header = next(csv.reader(fh))
    except StopIteration:
        raise InputError(f"{path}: the file is empty (no header line)") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8 text; save the CSV as UTF-8") from None
    except (OSError, EOFError) as exc:  # a broken or truncated gzip stream
        raise InputError(f"{path}: cannot be read as gzip-compressed CSV ({exc})") from None
    return [h.strip() for h in header]


def _read_raw(
    path: Path,
    string_cols: set[str],
    nan_cols: set[str] = frozenset(),
    sheet: str | None = None,
) -> pd.DataFrame:
    """Read CSV, Parquet or one sheet of an .xlsx workbook (the first, or `sheet`); id/text
    columns as strings (floats that are whole numbers without ".0"), the rest typed where clean.

    A float column of `nan_cols` (required numbers) holding NaN as a value (Parquet has it apart
    from null; CSV readers take "NaN" for empty) comes as text, so the NaN is an unreadable
    value, not a missing one."""
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a directory; give the path of a .csv, .parquet or .xlsx file")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: the file is empty")
    suffixes = "".join(path.suffixes[-2:]).lower()
    if sheet is not None and not suffixes.endswith(XLSX_SUFFIXES):
        raise InputError(f"{path}: sheet {sheet!r} given, but only an .xlsx workbook has sheets")
    if suffixes.endswith(XLSX_SUFFIXES):
        table = read_sheet(path, sheet, string_cols)
        names = table.column_names
    elif suffixes.endswith(OLD_EXCEL_SUFFIXES):
        raise InputError(
            f"{path}: an old-format Excel workbook (.xls), which custseg does not read; open it "
            "in Excel or LibreOffice and save it as .xlsx (or as CSV UTF-8)"
        )
    elif suffixes.endswith((".parquet", ".pq")):
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
        except Exception as exc:  # pyarrow raises several types for a broken file
            raise InputError(f"{path}: not a readable Parquet file ({exc})") from None
        names = table.column_names
    elif suffixes.endswith((".csv", ".csv.gz", ".txt")):
        import pyarrow.csv as pacsv

        names = _read_header(path)
        types = {n: pa.string() for n in names if n in string_cols}
        try:
            table = pacsv.read_csv(
                path,
                read_options=pacsv.ReadOptions(use_threads=True, block_size=1 << 24),
                convert_options=pacsv.ConvertOptions(
                    column_types=types, strings_can_be_null=True, quoted_strings_can_be_null=True
                ),
            )
        except pa.ArrowInvalid as exc:
            msg = str(exc).splitlines()[0]
            if "utf8" in msg.lower():
                raise InputError(f"{path}: not UTF-8 text; save the CSV as UTF-8") from None
            raise InputError(f"{path}: cannot be read as CSV: {msg}") from None
        names = table.column_names
    else:
        raise InputError(f"{path}: unsupported file type; use .csv, .csv.gz, .parquet or .xlsx")
    return raw_frame(table, path, string_cols, nan_cols)


def raw_frame(
    table: pa.Table, path: Path | str, string_cols: set[str], nan_cols: set[str] = frozenset()
) -> pd.DataFrame:
    """A table as read from a file -> the frame `type_table` types (the end of `_read_raw`)."""
    names = table.column_names
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InputError(f"{path}: duplicate column name(s) in the header: {', '.join(dupes)}")
    if table.num_rows == 0:
        raise InputError(f"{path}: the file has a header but no data rows")
    for name in names:  # ids and text stay strings whatever Parquet stored (17850.0 -> "17850")
        kind = table.schema.field(name).type
        if name in string_cols and not pa.types.is_string(kind):
            table = table.set_column(names.index(name), name, as_text(table[name]))
        elif (
            name in nan_cols
            and pa.types.is_floating(kind)
            and pc.any(pc.is_nan(table[name])).as_py()
        ):
            table = table.set_column(names.index(name), name, table[name].cast(pa.string()))
    return arrow_to_pandas(table)


def _examples(
    raw: pd.Series, mask: np.ndarray, column: str, personal: bool = False, n: int = 3
) -> str:
    rows = np.flatnonzero(mask)[:n]
    return ", ".join(f"row {r + 1}: {mask_value(column, raw.iloc[r], personal)!r}" for r in rows)


def read_table(
    path: str | Path,
    schema: TableSchema,
    column_map: Mapping[str, Mapping[str, str]] | None = None,
    max_invalid_share: float = 0.2,
    date_range: tuple[date, date] = DATE_RANGE,
    sheet: str | None = None,
) -> TypedTable:
    """Read one input file under `schema`; raise InputError naming file, column and rows.

    Row numbers in messages count data rows from 1 (the header is not a row). A typed column
    whose share of unreadable values exceeds `max_invalid_share` is a contract error (the column
    is not what the contract says); below that, bad values are left to cleaning. Dates outside
    `date_range` are unreadable values. An .xlsx workbook is read from its first sheet, or from
    `sheet` (InputError naming the sheets there are when it has none of that name).
    """
    path = Path(path)
    string_cols, nan_cols = raw_columns(schema, column_map)
    return type_table(
        _read_raw(path, string_cols, nan_cols, sheet),
        schema,
        str(path),
        column_map,
        max_invalid_share,
        date_range,
    )


def raw_columns(
    schema: TableSchema, column_map: Mapping | None = None
) -> tuple[set[str], set[str]]:
    """The source columns read as text (ids and text) and the required numbers whose NaN is an
    unreadable value (see `_read_raw`)."""
    source_of = _source_names(schema, column_map)
    string_cols = {source_of[c.name] for c in schema.columns if c.kind in ("id", "text")}
    nan_cols = {source_of[c.name] for c in schema.columns if c.kind == "number" and c.required}
    return string_cols, nan_cols


def _source_names(schema: TableSchema, column_map: Mapping | None) -> dict[str, str]:
    column_map = column_map or {}
    mapping = {**column_map.get("*", {}), **column_map.get(schema.name, {})}
    return {c.name: mapping.get(c.name, c.name) for c in schema.columns}


def type_table(
    df: pd.DataFrame,
    schema: TableSchema,
    path: str = "<DataFrame>",
    column_map: Mapping[str, Mapping[str, str]] | None = None,
    max_invalid_share: float = 0.2,
    date_range: tuple[date, date] = DATE_RANGE,
) -> TypedTable:
    """Apply `schema` to an in-memory frame (what `read_table` does after reading the file).

    In memory, NaN is pandas' missing value: only inf and -inf are unreadable numbers here."""
    column_map = column_map or {}
    source_of = _source_names(schema, column_map)
    if len(df) == 0:
        raise InputError(f"{path}: the table has no rows")
    df = df.reset_index(drop=True)
    explicit = column_map.get(schema.name, {})
    for target, source in explicit.items():
        if source not in df.columns:
            raise InputError(
                f"{path}: --column {target}={source}: no column {source!r} in the file"
            )
    present = {t: s for t, s in source_of.items() if s in df.columns}
    for target, source in present.items():
        if target != source and target in df.columns and target not in present.values():
            raise InputError(
                f"{path}: both {target!r} and {source!r} (mapped to {target!r}) are present"
            )
    parts = {c: [p for p in COMPUTED_FROM.get(c, ()) if p in source_of] for c in schema.required}
    missing = [c for c in schema.required if c not in present]
    missing = [c for c in missing if not (parts[c] and all(p in present for p in parts[c]))]
    if missing:
        hint = ", ".join(
            f"{c} (looked for {source_of[c]!r}"
            + (f", or for {' and '.join(repr(source_of[p]) for p in parts[c])}" if parts[c] else "")
            + ")"
            for c in missing
        )
        raise InputError(
            f"{path}: missing required column(s) {hint}; found: {', '.join(map(str, df.columns))}."
            " Map other names with --column TARGET=SOURCE"
        )
    df = df.rename(columns={s: t for t, s in present.items()})
    pii = [c for c in df.columns if str(c).lower() in PII_DROP_COLUMNS]
    df = df.drop(columns=pii)
    out = TypedTable(schema.name, path, df, renamed={t: s for t, s in present.items() if t != s})
    out.dropped_pii = pii

    for col in schema.columns:
        if col.name not in df.columns:
            continue
        raw = df[col.name]
        if col.kind in ("id", "text"):  # 17850.0 exported from Excel / pandas -> "17850"
            df[col.name] = normalise_ids(raw)
            continue
        personal = is_personal(col.name) or is_personal(present[col.name])
        parsed = parse_dates(raw, date_range) if col.kind == "date" else _PARSERS[col.kind](raw)
        if parsed.month_first is not None and parsed.month_first.any():
            raise InputError(
                f"{path}: column {present[col.name]!r}: dates in both day/month/year and "
                f"month/day/year order ({parsed.by_format[DAY_FIRST]} read as DD/MM/YYYY, "
                f"{int(parsed.month_first.sum())} readable only as MM/DD/YYYY, e.g. "
                f"{_examples(raw, parsed.month_first, col.name, personal)}), so 03/05 could be "
                "either day: write the dates as YYYY-MM-DD"
            )
        n_present = int((~parsed.missing).sum())
        n_bad = int(parsed.invalid.sum())
        if n_bad and n_bad > max_invalid_share * n_present:
            why = "".join(
                f", {int(mask.sum())} of them {reason}" for reason, mask in parsed.reasons.items()
            )
            raise InputError(
                f"{path}: column {present[col.name]!r}"
                f"{f' (as {col.name})' if present[col.name] != col.name else ''}: {n_bad} of "
                f"{n_present} values are not {_KIND_WORDS[col.kind]}{why}, e.g. "
                f"{_examples(raw, parsed.invalid, col.name, personal)}"
            )
        df[col.name] = parsed.values
        if parsed.by_format:
            out.date_formats[col.name] = parsed.by_format
        if n_bad:
            out.invalid[col.name] = parsed.invalid
            bad = raw[parsed.invalid].astype("string")
            if personal:  # never in clear, not even in the audit's row log
                bad = bad.map(partial(mask_value, col.name, personal=True), na_action="ignore")
            out.raw[col.name] = bad.astype("string")
            why = np.full(n_bad, _NOT_READ[col.kind], dtype=object)
            for reason, mask in parsed.reasons.items():
                why[mask[parsed.invalid]] = reason
            out.reasons[col.name] = pd.Series(why, index=bad.index, dtype="string")
    return out
