"""Vectorised parsers for the messy value formats found in real exports.

Each parser returns the parsed values plus two masks: `missing` (empty in the source) and
`invalid` (present but unreadable), so callers can tell "not given" from "given wrong".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

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
    "%d/%m/%Y",
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


def _blank(s: pd.Series) -> np.ndarray:
    """True where a value is null or only white space."""
    if s.dtype == object or isinstance(s.dtype, pd.StringDtype):
        return (s.isna() | (s.astype("string").str.strip() == "")).fillna(True).to_numpy(bool)
    return s.isna().to_numpy(bool)


def clean_text(s: pd.Series) -> pd.Series:
    """Strip white space; empty strings become missing."""
    out = s.astype("string[pyarrow]").str.strip()
    return out.mask(out == "")


def parse_dates(s: pd.Series) -> Parsed:
    """Parse dates written in any of DATE_FORMATS (or already typed) to midnight timestamps."""
    missing = _blank(s)
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        values = s.dt.tz_localize(None) if getattr(s.dt, "tz", None) else s
        return Parsed(
            values.dt.normalize().astype("datetime64[ns]"), missing, np.zeros(len(s), bool)
        )
    text = clean_text(s)
    values = pd.Series(pd.NaT, index=s.index, dtype="datetime64[ns]")
    todo = ~missing
    by_format: dict[str, int] = {}
    for fmt in DATE_FORMATS:
        if not todo.any():
            break
        part = pd.to_datetime(text[todo], format=fmt, errors="coerce")
        ok = part.notna().to_numpy()
        if ok.any():
            idx = np.flatnonzero(todo)[ok]
            values.iloc[idx] = part[ok].to_numpy()
            todo[idx] = False
            by_format[fmt] = len(idx)
    return Parsed(values.dt.normalize(), missing, todo, by_format)


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
    text = clean_text(s.astype("string")).str.lower()
    values = pd.Series(pd.NA, index=s.index, dtype="boolean")
    values[text.isin(_TRUE).fillna(False).to_numpy(bool)] = True
    values[text.isin(_FALSE).fillna(False).to_numpy(bool)] = False
    invalid = ~missing & values.isna().to_numpy(bool)
    return Parsed(values, missing, invalid)


def format_dates(s: pd.Series) -> pd.Series:
    """Dates as YYYY-MM-DD strings (missing stays missing)."""
    return s.dt.strftime("%Y-%m-%d").astype("string[pyarrow]")
