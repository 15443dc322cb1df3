"""Arrow-backed helpers agree with the plain pandas operations they replace."""

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from features.vector import Keys, coalesce, isin, lookup, regex_replace

values = st.lists(st.sampled_from(["a", "b", "c", "d", None]), max_size=30)


@settings(max_examples=60, deadline=None)
@given(values, values)
def test_keys_match_pandas(col, other):
    s = pd.Series(col, dtype="string[pyarrow]")
    keys = Keys(s)
    allowed = [v for v in other if v is not None]
    expected = s.isin(allowed).fillna(False).to_numpy(bool)
    assert np.array_equal(keys.isin(allowed), expected)
    assert np.array_equal(isin(s, allowed), expected)
    mapping = pd.Series(
        ["X", "Y"], index=pd.Index(["a", "b"], dtype="string[pyarrow]"), dtype="string[pyarrow]"
    )
    want = s.map(dict(zip(mapping.index, mapping, strict=True)))
    assert keys.lookup(mapping).fillna("-").tolist() == want.fillna("-").tolist()
    assert lookup(s, mapping).fillna("-").tolist() == want.fillna("-").tolist()
    assert (
        keys.remap(mapping).series().fillna("-").tolist()
        == coalesce(want.astype("string[pyarrow]"), s).fillna("-").tolist()
    )
    assert np.array_equal(
        keys.contains("^[ab]$"), s.str.contains("^[ab]$").fillna(False).to_numpy(bool)
    )


def test_lookup_of_dates_keeps_type():
    signup = pd.Series(
        pd.to_datetime(["2024-01-01"]), index=pd.Index(["a"], dtype="string[pyarrow]")
    )
    out = Keys(pd.Series(["a", "z", None], dtype="string[pyarrow]")).lookup(signup)
    assert str(out.dtype) == "datetime64[ns]" and out.isna().tolist() == [False, True, True]


def test_regex_replace_with_groups():
    s = pd.Series(["+8613800001111", "13800001111", None], dtype="string[pyarrow]")
    assert regex_replace(s, r"^\+?86(1\d{10})$", r"\1").tolist()[:2] == [
        "13800001111",
        "13800001111",
    ]
