"""Fast column operations on Arrow-backed strings.

pandas 2 falls back to per-element Python for some string operations (`isin` against a large
set, `map` through a string index, regex replacement with groups); these helpers call the Arrow
kernels directly. Inputs and outputs are pandas objects.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc


def to_arrow(values) -> pa.Array:
    """A zero-copy Arrow large_string view of a string column (or a cast copy)."""
    if isinstance(values, (pd.Series, pd.Index)):
        arrow_backed = isinstance(values.dtype, (pd.StringDtype, pd.ArrowDtype))
        values = values.array if arrow_backed else values.astype("string[pyarrow]").array
    if hasattr(values, "_pa_array"):
        arr = values._pa_array  # noqa: SLF001 - zero-copy view of an ArrowExtensionArray
        if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
            arr = arr.cast(pa.string())
    else:
        arr = pa.array(np.asarray(values, dtype=object), pa.large_string(), from_pandas=True)
    return arr if arr.type == pa.large_string() else arr.cast(pa.large_string())


# The frame's columns are allocated by the system allocator, not Arrow's default mimalloc: with
# transparent huge pages on "madvise" (Debian's default) mimalloc commits its arenas eagerly and
# the kernel spends ~0.8 CPU-s faulting them in for a 1M x 44 feature table (0.5 s against 0.14 s
# wall; benchmarks/bench_features.py).
FRAME_POOL = pa.system_memory_pool()


def to_pandas(table: pa.Table) -> pd.DataFrame:
    """Arrow table -> DataFrame; strings stay Arrow-backed (no Python string objects)."""
    mapper = {pa.string(): pd.StringDtype("pyarrow"), pa.large_string(): pd.StringDtype("pyarrow")}
    return table.to_pandas(types_mapper=mapper.get, memory_pool=FRAME_POOL)


def to_numpy(s: pd.Series, dtype) -> np.ndarray:
    """A column as numpy, without a detour through Python objects for Arrow-backed columns."""
    if isinstance(s.dtype, pd.ArrowDtype):
        return s.array._pa_array.to_numpy().astype(dtype, copy=False)  # noqa: SLF001
    return s.to_numpy(dtype)


def isin(s: pd.Series, values) -> np.ndarray:
    """Boolean mask: s is one of `values` (missing is never in)."""
    if len(values) == 0:
        return np.zeros(len(s), bool)
    hit = pc.is_in(to_arrow(s), value_set=pa.chunked_array([to_arrow(values)]).combine_chunks())
    return hit.fill_null(False).to_numpy(zero_copy_only=False)


def positions(s: pd.Series, keys) -> np.ndarray:
    """Index of each value of s in `keys` (-1 where absent or missing)."""
    if len(keys) == 0:
        return np.full(len(s), -1, np.int64)
    idx = pc.index_in(to_arrow(s), value_set=pa.chunked_array([to_arrow(keys)]).combine_chunks())
    return idx.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)


def lookup(s: pd.Series, mapping: pd.Series) -> pd.Series:
    """`s.map(mapping)` for a string-indexed mapping, done by Arrow; missing where absent."""
    pos = positions(s, mapping.index) if len(mapping) else np.full(len(s), -1, np.int64)
    taken = mapping.array.take(pos, allow_fill=True)  # -1 -> missing, no Python per row
    return pd.Series(taken, index=s.index, name=s.name)


def coalesce(first: pd.Series, second: pd.Series) -> pd.Series:
    """first where present, else second (strings)."""
    out = pc.coalesce(to_arrow(first), to_arrow(second))
    return pd.Series(pd.arrays.ArrowStringArray(out), index=first.index, name=first.name)


def regex_replace(s: pd.Series, pattern: str, replacement: str) -> pd.Series:
    """RE2 replacement (\\1 groups allowed) on strings, missing stays missing."""
    out = pc.replace_substring_regex(to_arrow(s), pattern=pattern, replacement=replacement)
    return pd.Series(
        pd.arrays.ArrowStringArray(pa.chunked_array([out]) if isinstance(out, pa.Array) else out),
        index=s.index,
    )


class Keys:
    """A string column hashed once into codes + its distinct values.

    Set tests and lookups then cost one pass over the distinct values and a numpy take: for
    10M orders of 1M customers, five lookups by customer id hash 1M strings, not 50M.
    """

    def __init__(self, s: pd.Series):
        enc = pc.dictionary_encode(to_arrow(s))
        if isinstance(enc, pa.ChunkedArray):
            enc = enc.combine_chunks()
        self.codes = enc.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
        self.values = pd.Series(pd.arrays.ArrowStringArray(enc.dictionary.cast(pa.large_string())))
        self.index = s.index

    def _spread(self, per_value: np.ndarray) -> np.ndarray:
        if len(per_value) == 0:  # every value missing
            return np.zeros(len(self.codes), bool)
        return np.where(self.codes >= 0, per_value[np.maximum(self.codes, 0)], False)

    def isin(self, values) -> np.ndarray:
        return self._spread(isin(self.values, values))

    def contains(self, pattern: str) -> np.ndarray:
        """Regex search, once per distinct value."""
        hit = self.values.str.contains(pattern, regex=True).fillna(False).to_numpy(bool)
        return self._spread(hit)

    def lookup(self, mapping: pd.Series) -> pd.Series:
        per_value = lookup(self.values, mapping)
        return pd.Series(per_value.array.take(self.codes, allow_fill=True), index=self.index)

    def remap(self, mapping: pd.Series) -> Keys:
        """Keys whose values are replaced through `mapping` where it has them."""
        out = object.__new__(Keys)
        out.codes, out.index = self.codes, self.index
        out.values = coalesce(lookup(self.values, mapping), self.values)
        return out

    def series(self) -> pd.Series:
        return pd.Series(self.values.array.take(self.codes, allow_fill=True), index=self.index)


# A text cell starting with one of these is a formula to Excel, LibreOffice and Google Sheets
# (OWASP "CSV injection": =HYPERLINK(...), +cmd|..., @SUM(...), and after a tab or carriage
# return); a leading single quote makes it plain text there.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_FORMULA_START = "^[=+\\-@\\t\\r]"


def spreadsheet_cell(text: str) -> str:
    """One text cell made inert: `'` before a formula's first character."""
    return "'" + text if text.startswith(FORMULA_START) else text


def _inert(s: pd.Series) -> pd.Series:
    """A column with its formula-like text cells quoted; numbers, flags and dates as they are."""
    if isinstance(s.dtype, pd.CategoricalDtype):
        cats = s.cat.categories
        if pd.api.types.infer_dtype(cats, skipna=True) != "string":
            return s
        return s.cat.rename_categories(_inert(pd.Series(cats, dtype=object)).tolist())
    if not (s.dtype == object or isinstance(s.dtype, pd.StringDtype)) or s.empty:
        return s
    if s.dtype == object and pd.api.types.infer_dtype(s, skipna=True) != "string":
        # mixed cells: only the text ones are text in the file (a number stays a number)
        return s.map(lambda v: spreadsheet_cell(v) if isinstance(v, str) else v)
    text = to_arrow(s)
    hit = pc.match_substring_regex(text, _FORMULA_START).fill_null(False)
    if not pc.any(hit).as_py():
        return s
    quote, empty = pa.scalar("'", pa.large_string()), pa.scalar("", pa.large_string())
    quoted = pc.if_else(hit, pc.binary_join_element_wise(quote, text, empty), text)
    return pd.Series(pd.arrays.ArrowStringArray(quoted.cast(pa.string())), index=s.index)


def spreadsheet_safe(df: pd.DataFrame) -> pd.DataFrame:
    """`df` for a CSV file people open in a spreadsheet (scores.csv, profiles.csv): every text
    cell (and header) that a spreadsheet would run as a formula starts with `'`. Numeric columns
    are never quoted: a negative number stays a number."""
    out = df.copy()
    for i in range(out.shape[1]):
        out.isetitem(i, _inert(out.iloc[:, i]))
    out.columns = [spreadsheet_cell(c) if isinstance(c, str) else c for c in out.columns]
    return out
