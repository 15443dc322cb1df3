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
        values = (
            values.array
            if isinstance(values.dtype, pd.StringDtype)
            else values.astype("string[pyarrow]").array
        )
    if hasattr(values, "_pa_array"):
        arr = values._pa_array  # noqa: SLF001 - zero-copy view of an ArrowExtensionArray
    else:
        arr = pa.array(np.asarray(values, dtype=object), pa.large_string(), from_pandas=True)
    return arr if arr.type == pa.large_string() else arr.cast(pa.large_string())


def isin(s: pd.Series, values) -> np.ndarray:
    """Boolean mask: s is one of `values` (missing is never in)."""
    if len(values) == 0:
        return np.zeros(len(s), bool)
    hit = pc.is_in(to_arrow(s), value_set=pa.chunked_array([to_arrow(values)]).combine_chunks())
    return hit.fill_null(False).to_numpy(zero_copy_only=False)


def codes(s: pd.Series) -> np.ndarray:
    """Integer code per distinct value (-1 for missing), by Arrow's dictionary encoding."""
    enc = pc.dictionary_encode(to_arrow(s))
    if isinstance(enc, pa.ChunkedArray):
        enc = enc.combine_chunks()
    return enc.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)


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
