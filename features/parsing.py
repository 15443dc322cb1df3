"""Vectorised parsers for the messy value formats found in real exports.

Each parser returns the parsed values plus two masks: `missing` (empty in the source) and
`invalid` (present but unreadable), so callers can tell "not given" from "given wrong", and
`reasons` for the unreadable values that are readable text but no usable value: a date outside
the plausible range (pandas' nanosecond timestamps end in 1677 and 2262: a year 9999 would wrap
around to 1816, silently) or a number that is not finite (inf, -inf, NaN).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from features.vector import regex_replace, to_arrow

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
# Dates outside this range are unreadable values (cleaning.min_date / max_date narrow or widen
# it); it must lie within what a nanosecond timestamp holds.
DATE_RANGE = (date(1900, 1, 1), date(2200, 12, 31))
TIMESTAMP_RANGE = (date(1677, 9, 22), date(2262, 4, 11))
NOT_FINITE = "not a finite number (inf, -inf or NaN)"
_NAN_TEXT = re.compile(r"(?i)^[+-]?nan$")
# an id exported as a float and then written as text: 17850.0
_WHOLE_FLOAT_TEXT = r"^[+-]?\d+\.0+$"


def outside(valid: tuple[date, date]) -> str:
    """The reason of a date outside `valid`."""
    return f"outside {valid[0]}..{valid[1]}"


@dataclass
class Parsed:
    values: pd.Series
    missing: np.ndarray
    invalid: np.ndarray
    by_format: dict[str, int] | None = None  # dates: how many values each format read
    # dates: unreadable values that MM/DD/YYYY would read, in a column read as DD/MM/YYYY: the
    # order of every slash date in it is then in doubt (03/05 may be 3 May or 5 March)
    month_first: np.ndarray | None = None
    # reason -> mask of the invalid values it explains (the others are plainly not readable)
    reasons: dict[str, np.ndarray] = field(default_factory=dict)


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


def as_text(values: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Arrow values as strings; a float that is a whole number without its ".0" (17850.0 ->
    "17850": an id that went through Excel or pandas as a float), NaN missing."""
    if not pa.types.is_floating(values.type):
        return values.cast(pa.string())
    null = pa.scalar(None, values.type)
    values = pc.if_else(pc.is_nan(values), null, values)
    whole = pc.and_(pc.equal(pc.floor(values), values), pc.less(pc.abs(values), 2.0**63))
    digits = pc.cast(pc.cast(pc.if_else(whole, values, null), pa.int64()), pa.string())
    return pc.if_else(whole, digits, values.cast(pa.string()))


def normalise_ids(s: pd.Series) -> pd.Series:
    """An id or text column as clean text (`clean_text`), ids exported as floats read back: a
    float column's whole numbers without ".0" (NaN missing), and text "17850.0" without ".0"
    when EVERY value present is a whole number written so (a float column saved as text). One
    other value ("1.0a", "A7") and the column is left as it is: its ids are text."""
    if pd.api.types.is_float_dtype(s.dtype):
        arr = as_text(pa.array(s, from_pandas=True))
        s = pd.Series(pd.arrays.ArrowStringArray(arr), index=s.index, name=s.name)
    text = clean_text(s)
    present = text.notna().to_numpy(bool)
    if not present.any() or not re.fullmatch(_WHOLE_FLOAT_TEXT, text.iloc[present.argmax()]):
        return text  # the common case, decided by one value
    whole = pc.match_substring_regex(to_arrow(text), _WHOLE_FLOAT_TEXT)
    if pc.all(whole).as_py():  # nulls skipped
        text = regex_replace(text, r"\.0+$", "").rename(s.name)
    return text


def _day_of_month(values: np.ndarray) -> np.ndarray:
    return (values.astype("datetime64[D]") - values.astype("datetime64[M]")).astype(np.int64) + 1


def _outside(days: np.ndarray, valid: tuple[date, date]) -> np.ndarray:
    """True where a datetime64 value (any unit) is a day outside `valid` (never where NaT)."""
    days = days.astype("datetime64[D]")
    lo, hi = (np.datetime64(d, "D") for d in valid)
    return ~np.isnat(days) & ((days < lo) | (days > hi))


def parse_dates(s: pd.Series, valid: tuple[date, date] = DATE_RANGE) -> Parsed:
    """Parse dates written in any of DATE_FORMATS (or already typed) to midnight timestamps.

    Arrow's strptime does the work (4x pandas); it rolls impossible days over (2024-02-30 ->
    03-01), so parses landing on days 1-3 are re-checked strictly by pandas. Days outside
    `valid` are invalid, with their reason: they are checked in seconds (typed columns: in
    their own unit, s/ms/us), before anything becomes a nanosecond timestamp.
    """
    missing = _blank(s)
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        values = s.dt.tz_localize(None) if getattr(s.dt, "tz", None) else s
        raw = values.to_numpy()
        far = _outside(raw, valid)
        days = raw.astype("datetime64[D]")
        days[far] = np.datetime64("NaT")
        out = pd.Series(days.astype("datetime64[ns]"), index=s.index)
        return Parsed(out, missing, far, reasons={outside(valid): far} if far.any() else {})
    text = to_arrow(clean_text(s))
    values = np.full(len(s), np.datetime64("NaT"), dtype="datetime64[s]")
    todo = ~missing
    far = np.zeros(len(s), bool)  # read, but outside `valid`
    by_format: dict[str, int] = {}
    for fmt in DATE_FORMATS:
        if not todo.any():
            break
        idx = np.flatnonzero(todo)
        sub = text.take(pa.array(idx))
        parsed = pc.strptime(sub, format=fmt, unit="s", error_is_null=True)
        got = parsed.to_numpy(zero_copy_only=False).astype("datetime64[s]")
        ok = ~np.isnat(got)
        beyond = ok & _outside(got, valid)
        far[idx[beyond]] = True
        todo[idx[beyond]] = False
        ok &= ~beyond
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
    reasons = {outside(valid): far} if far.any() else {}
    return Parsed(out, missing, todo | far, by_format, month_first, reasons)


def parse_numbers(s: pd.Series) -> Parsed:
    """Parse numbers, tolerating currency signs, thousands separators and units (¥1,200元).

    inf, -inf and NaN written as a value are invalid (reason NOT_FINITE): one of them would make
    every sum, mean and threshold over the column infinite or undefined."""
    missing = _blank(s)
    if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
        values = s.astype("float64")
        infinite = ~missing & np.isinf(values.to_numpy())  # NaN is missing here
        return Parsed(
            values.where(~infinite),
            missing,
            infinite,
            reasons={NOT_FINITE: infinite} if infinite.any() else {},
        )
    text = clean_text(s).str.replace(_NUMBER_NOISE, "", regex=True)
    values = pd.to_numeric(text.astype(object), errors="coerce").astype("float64")
    number = values.to_numpy()
    nan_text = text.str.contains(_NAN_TEXT, regex=True).fillna(False).to_numpy(bool)
    not_finite = ~missing & (np.isinf(number) | nan_text)
    invalid = ~missing & (np.isnan(number) | not_finite)
    return Parsed(
        values.where(~invalid),
        missing,
        invalid,
        reasons={NOT_FINITE: not_finite} if not_finite.any() else {},
    )


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
