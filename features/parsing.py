"""Vectorised parsers for the messy value formats found in real exports.

Each parser returns the parsed values plus two masks: `missing` (empty in the source) and
`invalid` (present but unreadable), so callers can tell "not given" from "given wrong".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from features.vector import to_arrow

DAY_FIRST = "%d/%m/%Y"  # the one day-first format: month-first dates are checked against it
# Tried in order on what is still unparsed; the first is the fast path for clean data.
DATE_FORMATS: tuple[str, ...] = (
    "%Y-%m-%d",
    "%Y/%m/%d",
    "%Y%m%d",
    "%Y.%m.%d",
    "%Y年%m月%d日",
    "%Y-%m-%d %H:%M:%S",
    "%Y/%m/%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
    DAY_FIRST,
)
_TRUE = {"1", "true", "t", "yes", "y", "是", "1.0"}
_FALSE = {"0", "false", "f", "no", "n", "否", "0.0"}
_NUMBER_NOISE = r"[¥￥$,，元岁\s]"


@dataclass
class Parsed:
    values: pd.Series
    missing: np.ndarray
    invalid: np.ndarray
    by_format: dict[str, int] | None = None  # dates: how many values each format read
    # dates: unreadable values that MM/DD/YYYY would read, in a column read as DD/MM/YYYY: the
    # order of every slash date in it is then in doubt (03/05 may be 3 May or 5 March)
    month_first: np.ndarray | None = None


def _blank(s: pd.Series) -> np.ndarray:
    """True where a value is null or only white space."""
    if s.dtype == object or isinstance(s.dtype, pd.StringDtype):
        text = s.astype("string[pyarrow]").str.strip()
        return (s.isna() | (text == "")).fillna(True).to_numpy(bool)
    return s.isna().to_numpy(bool)


def clean_text(s: pd.Series) -> pd.Series:
    """Strip white space; empty strings become missing."""
    out = s.astype("string[pyarrow]").str.strip()
    return out.mask(out == "")


def _day_of_month(values: np.ndarray) -> np.ndarray:
    return (values.astype("datetime64[D]") - values.astype("datetime64[M]")).astype(np.int64) + 1


def parse_dates(s: pd.Series) -> Parsed:
    """Parse dates written in any of DATE_FORMATS (or already typed) to midnight timestamps.

    Arrow's strptime does the work (4x pandas); it rolls impossible days over (2024-02-30 ->
    03-01), so parses landing on days 1-3 are re-checked strictly by pandas.
    """
    missing = _blank(s)
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        values = s.dt.tz_localize(None) if getattr(s.dt, "tz", None) else s
        return Parsed(
            values.dt.normalize().astype("datetime64[ns]"), missing, np.zeros(len(s), bool)
        )
    text = to_arrow(clean_text(s))
    values = np.full(len(s), np.datetime64("NaT"), dtype="datetime64[s]")
    todo = ~missing
    by_format: dict[str, int] = {}
    for fmt in DATE_FORMATS:
        if not todo.any():
            break
        idx = np.flatnonzero(todo)
        sub = text.take(pa.array(idx))
        parsed = pc.strptime(sub, format=fmt, unit="s", error_is_null=True)
        got = parsed.to_numpy(zero_copy_only=False).astype("datetime64[s]")
        ok = ~np.isnat(got)
        suspect = np.flatnonzero(ok & (_day_of_month(got) <= 3))
        if len(suspect):
            strict = pd.to_datetime(
                sub.take(pa.array(suspect)).to_pandas(), format=fmt, errors="coerce"
            )
            ok[suspect] = strict.notna().to_numpy()
        if ok.any():
            values[idx[ok]] = got[ok]
            todo[idx[ok]] = False
            by_format[fmt] = int(ok.sum())
    out = pd.Series(values.astype("datetime64[D]").astype("datetime64[ns]"), index=s.index)
    month_first = np.zeros(len(s), bool)
    if by_format.get(DAY_FIRST) and todo.any():
        idx = np.flatnonzero(todo)
        us = pc.strptime(text.take(pa.array(idx)), format="%m/%d/%Y", unit="s", error_is_null=True)
        month_first[idx] = us.is_valid().to_numpy(zero_copy_only=False)
    return Parsed(out, missing, todo, by_format, month_first)


def parse_numbers(s: pd.Series) -> Parsed:
    """Parse numbers, tolerating currency signs, thousands separators and units (¥1,200元)."""
    missing = _blank(s)
    if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
        values = s.astype("float64")
        return Parsed(values, missing, np.zeros(len(s), bool))
    text = clean_text(s).str.replace(_NUMBER_NOISE, "", regex=True)
    values = pd.to_numeric(text.astype(object), errors="coerce").astype("float64")
    invalid = ~missing & (values.isna().to_numpy() | ~np.isfinite(values.fillna(0).to_numpy()))
    return Parsed(values.where(~invalid), missing, invalid)


def parse_bools(s: pd.Series) -> Parsed:
    """Parse flags written as 1/0, true/false, yes/no, 是/否."""
    missing = _blank(s)
    if pd.api.types.is_bool_dtype(s.dtype):
        return Parsed(s.astype("boolean"), missing, np.zeros(len(s), bool))
    text = clean_text(s).str.lower()
    values = pd.Series(pd.NA, index=s.index, dtype="boolean")
    values[text.isin(_TRUE).fillna(False).to_numpy(bool)] = True
    values[text.isin(_FALSE).fillna(False).to_numpy(bool)] = False
    invalid = ~missing & values.isna().to_numpy(bool)
    return Parsed(values, missing, invalid)
