"""Customer-table rules: personal data hashed, test and id-less accounts dropped, genders,
regions and ages made valid, duplicate customers merged (transitively), incomplete profiles
marked "to complete"."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from core.errors import ConfigError
from features import pii
from features.cleaning.audit import Audit
from features.cleaning.common import LiveRows, drop_unreadable, normalize_region_column
from features.cleaning.config import CleaningConfig
from features.contract import CUSTOMERS, TypedTable

T = "customers"
_GENDERS = {
    "male": "male",
    "m": "male",
    "man": "male",
    "男": "male",
    "男性": "male",
    "先生": "male",
    "female": "female",
    "f": "female",
    "woman": "female",
    "女": "female",
    "女性": "female",
    "女士": "female",
}
LINK_KEYS = ("customer_id", "phone_hash", "email_hash")


@dataclass
class CustomerContext:
    """What transaction cleaning needs from the customer table."""

    id_map: pd.Series  # source customer_id -> canonical customer_id (merged ids only)
    test_ids: pd.Index  # ids of dropped test accounts
    signup: pd.Series  # canonical customer_id -> signup_date
    known_ids: pd.Index  # every id the customer table names (canonical and merged)


def _hash_personal_data(df: pd.DataFrame) -> pd.DataFrame:
    """phone/email -> phone_hash/email_hash (normalised first, so spellings of one number match)."""
    for col, normalize in (("phone", pii.normalize_phone), ("email", pii.normalize_email)):
        if col in df:
            df[f"{col}_hash"] = pii.keyed_hash(normalize(df[col]))
            df = df.drop(columns=col)
    return df


def _merge_duplicates(df: pd.DataFrame, audit: Audit) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One row per connected component of shared id / phone / e-mail.

    The canonical record is the earliest signup (then the smallest id); its empty fields are
    filled from the merged records. Returns (customers, id_map of merged ids).
    """
    keys = [k for k in LINK_KEYS if k in df]
    n = len(df)
    rows, nodes, offset = [], [], n
    for key in keys:
        codes, uniques = pd.factorize(df[key], use_na_sentinel=True)
        ok = codes >= 0
        rows.append(np.flatnonzero(ok))
        nodes.append(codes[ok] + offset)
        offset += len(uniques)
    r, c = np.concatenate(rows), np.concatenate(nodes)
    graph = coo_matrix((np.ones(len(r), np.int8), (r, c)), shape=(offset, offset))
    _, label = connected_components(graph, directed=False)
    df = df.assign(_group=label[:n])
    sort_cols = ["_group"] + (["signup_date"] if "signup_date" in df else []) + ["customer_id"]
    df = df.sort_values(sort_cols, na_position="last", kind="stable")
    canonical = df.groupby("_group", sort=False)["customer_id"].transform("first")
    is_dup = (df["customer_id"] != canonical).to_numpy()
    group_size = df.groupby("_group", sort=False)["customer_id"].transform("size")
    id_map = pd.DataFrame(
        {
            "source_customer_id": df["customer_id"][is_dup].to_numpy(),
            "customer_id": canonical[is_dup].to_numpy(),
            "group_size": group_size[is_dup].to_numpy(np.int64),
        }
    ).astype({"source_customer_id": "string[pyarrow]", "customer_id": "string[pyarrow]"})
    id_map = id_map.drop_duplicates("source_customer_id", ignore_index=True)
    # same id twice in the table is also a duplicate: the later rows are merged away
    is_repeat = df.duplicated(["_group"]).to_numpy() & ~is_dup
    merged_away = is_dup | is_repeat
    audit.drop(
        df, merged_away, T, "duplicate_customer", "customer_id", df["customer_id"], canonical
    )
    if merged_away.any():
        groups = df["_group"][merged_away].unique()
        in_group = df["_group"].isin(groups).to_numpy()
        # the canonical row sorts first in its group, so `first` keeps its values and fills
        # its gaps from the merged rows (first non-missing value per column)
        filled = df[in_group].groupby("_group", sort=False).first().reset_index()
        df = pd.concat([df[~in_group], filled], ignore_index=True)
    return df.drop(columns="_group").sort_values("source_row").reset_index(drop=True), id_map


def clean_customers(
    t: TypedTable, cfg: CleaningConfig, audit: Audit
) -> tuple[pd.DataFrame, CustomerContext, pd.DataFrame]:
    """Returns (clean customers, context for transactions, id map)."""
    df = t.frame.copy()
    df["source_row"] = t.source_rows().astype(np.int64)
    audit.input_rows[T] = len(df)
    df = _hash_personal_data(df)

    rows = LiveRows(df, T, cfg, audit)
    rows.drop(df["customer_id"].isna(), "missing_key_field", "customer_id")
    drop_unreadable(rows, t, ("customer_id",))
    is_test = (
        df["customer_id"].str.contains(cfg.test_id_pattern, regex=True).fillna(False).to_numpy(bool)
    )
    if "is_test" in df:
        is_test |= df["is_test"].fillna(False).to_numpy(bool)
    test_ids = pd.Index(df.loc[is_test & rows.alive, "customer_id"].unique())
    rows.drop(is_test, "test_account", "customer_id")
    df = rows.kept().drop(columns="is_test", errors="ignore")

    if "gender" in df:
        raw = df["gender"]
        norm = raw.str.lower().map(_GENDERS).astype("string[pyarrow]")
        unknown = (raw.notna() & norm.isna()).to_numpy(bool)
        audit.change(df, unknown, T, "gender_unrecognized", "gender", raw, None)
        audit.reformatted[f"{T}.gender"] += int((raw.notna() & norm.notna() & (raw != norm)).sum())
        df["gender"] = norm
    if "region" in df:
        df = normalize_region_column(df, T, cfg, audit)
    if "age" in df:
        bad = ((df["age"] < cfg.min_age) | (df["age"] > cfg.max_age)).fillna(False).to_numpy(bool)
        policy = cfg.policy("invalid_age")
        if policy == "drop":
            df = audit.drop(df, bad, T, "invalid_age", "age", df["age"])
        elif policy == "null":
            audit.change(df, bad, T, "invalid_age", "age", df["age"], None)
            df.loc[bad, "age"] = np.nan
        else:
            audit.flag(df, bad, T, "invalid_age", "age", df["age"])
            df["flag_invalid_age"] = bad

    dtypes = df.dtypes
    df, id_map = _merge_duplicates(df, audit)
    df = df.astype(dtypes[df.columns])  # filling gaps across rows must not widen types

    present = [f for f in cfg.profile_key_fields if f in df]
    contract = {c.name for c in CUSTOMERS.columns}
    if typos := [f for f in cfg.profile_key_fields if f not in df and f not in contract]:
        raise ConfigError(
            f"cleaning.profile_key_fields: {', '.join(map(repr, typos))} is not a column of the "
            f"customer table; the contract's customer fields: {', '.join(sorted(contract))}"
        )
    if absent := [f for f in cfg.profile_key_fields if f not in df]:
        audit.notes.append(f"customers: profile key field(s) not in the table: {', '.join(absent)}")
    n_missing = df[present].isna().sum(axis=1) if present else pd.Series(0, index=df.index)
    df["missing_key_fields"] = n_missing.astype(np.int64)
    df["to_complete"] = (n_missing > cfg.to_complete_share * len(cfg.profile_key_fields)).to_numpy()
    audit.flag(df, df["to_complete"], T, "to_complete")

    known = pd.Index(df["customer_id"]).append(pd.Index(id_map["source_customer_id"]))
    signup = df.set_index("customer_id")["signup_date"] if "signup_date" in df else None
    ctx = CustomerContext(
        id_map=id_map.set_index("source_customer_id")["customer_id"],
        test_ids=test_ids,
        signup=signup,
        known_ids=known,
    )
    return df, ctx, id_map
