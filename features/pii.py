"""Personal data (phone, e-mail) is normalised and replaced by a keyed hash on read.

The hash lets duplicate customers be matched and joined across runs without anyone seeing
the number. The key comes from CUSTSEG_PII_KEY, else a random key kept in the state folder;
hashing is vectorised (pandas' keyed SipHash), no per-row Python.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets

import pandas as pd

from core import catalog, paths
from features.vector import regex_replace


def _key() -> str:
    secret = os.environ.get("CUSTSEG_PII_KEY")
    if not secret:
        key_file = paths.home() / catalog.PII_KEY
        if not key_file.exists():
            key_file.write_text(secrets.token_hex(32))
            key_file.chmod(0o600)
        secret = key_file.read_text().strip()
    return base64.b64encode(hashlib.sha256(secret.encode()).digest()).decode()[:16]


def normalize_phone(s: pd.Series) -> pd.Series:
    """Digits only, without the +86 / 0086 country prefix; fewer than 7 digits is no phone."""
    digits = regex_replace(s.astype("string[pyarrow]"), r"\D", "")
    digits = regex_replace(digits, r"^(?:0086|86)(1\d{10})$", r"\1")
    return digits.mask(digits.str.len() < 7)


def normalize_email(s: pd.Series) -> pd.Series:
    """Lower-cased, trimmed; a value without '@' is no e-mail."""
    text = s.astype("string[pyarrow]").str.strip().str.lower()
    return text.mask(~text.str.contains("@", regex=False).fillna(False))


def keyed_hash(s: pd.Series) -> pd.Series:
    """16-hex-digit keyed hash of each value; missing stays missing."""
    present = s.notna().to_numpy()
    out = pd.Series(pd.NA, index=s.index, dtype="string[pyarrow]")
    if present.any():
        h = pd.util.hash_pandas_object(
            s[present].astype(object), index=False, encoding="utf8", hash_key=_key()
        )
        out[present] = h.map("{:016x}".format).to_numpy()
    return out
