"""Personal data (phone, e-mail) is normalised and replaced by a keyed hash on read.

The hash lets duplicate customers be matched and joined across runs without anyone seeing
the number. The key comes from CUSTSEG_PII_KEY, else a random key kept in the state folder;
hashing is vectorised (pandas' keyed SipHash), no per-row Python.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import secrets
from pathlib import Path

import pandas as pd

from core import catalog, paths
from core.errors import ConfigError
from features.vector import regex_replace


def _key() -> str:
    secret = os.environ.get("CUSTSEG_PII_KEY")
    if not secret:
        key_file = paths.home() / catalog.PII_KEY
        if not key_file.exists():
            _create_key(key_file)
        elif key_file.stat().st_mode & 0o077:  # made by an older custseg: 0666 & umask
            key_file.chmod(0o600)
        secret = key_file.read_text().strip()
        if not secret:
            raise ConfigError(
                f"{key_file} is empty: restore the key (hashes made with another key do not "
                "match) or set CUSTSEG_PII_KEY"
            )
    return base64.b64encode(hashlib.sha256(secret.encode()).digest()).decode()[:16]


def _create_key(key_file: Path) -> None:
    """A new random key, readable by its owner only from the moment it exists.

    It is written to a temporary file created 0600 (os.open, O_CREAT | O_EXCL: no window with
    the umask's permissions) and hard-linked into place, so nobody reads it half written, and of
    two processes creating it at once the second's link fails and both use the first's key.
    Where the file system has no hard links, the key file itself is created exclusively.
    """

    def write_new(path: Path) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
            fh.flush()
            os.fsync(fh.fileno())

    tmp = key_file.with_name(f".{key_file.name}.{os.getpid()}.{secrets.token_hex(4)}")
    try:
        write_new(tmp)
        try:
            os.link(tmp, key_file)
        except FileExistsError:
            pass  # another process was first: its key is the key
        except OSError:  # no hard links here
            with contextlib.suppress(FileExistsError):
                write_new(key_file)
    finally:
        tmp.unlink(missing_ok=True)


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
