"""Rules both tables share: unreadable values and region normalisation."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.cleaning.audit import Audit
from features.cleaning.config import CleaningConfig
from features.contract import TypedTable
from features.regions import normalize_regions


def drop_unreadable(df: pd.DataFrame, t: TypedTable, table: str, cfg: CleaningConfig,
                    audit: Audit, required: tuple[str, ...]) -> pd.DataFrame:
    """Rows whose required field could not be read are dropped; other fields become missing.

    The contract already set those values to missing; here each one is logged with its source
    text (looked up by source row, so earlier drops do not matter).
    """
    for column, mask in t.invalid.items():
        bad_rows = np.flatnonzero(mask)
        hit = df["source_row"].isin(bad_rows).to_numpy()
        raw = t.raw[column].reindex(df["source_row"].to_numpy()).reset_index(drop=True)
        raw.index = df.index
        if column in required:
            df = audit.drop(df, hit, table, "unreadable_value", column, raw)
        else:
            audit.change(df, hit, table, "unreadable_value", column, raw, None)
    audit.touch(table, "unreadable_value", "drop")
    return df


def normalize_region_column(df: pd.DataFrame, table: str, cfg: CleaningConfig,
                            audit: Audit) -> pd.DataFrame:
    """region -> "省-市" plus province/city columns; unrecognised spellings per policy.

    A new spelling of the same place is counted (audit "reformatted"), not logged per row.
    """
    raw = df["region"]
    norm = normalize_regions(raw)
    unknown = (raw.notna() & norm["region"].isna()).to_numpy(bool)
    respelled = (raw.notna() & norm["region"].notna() & (raw != norm["region"])).fillna(False)
    audit.reformatted[f"{table}.region"] += int(respelled.sum())
    if cfg.policy("region_unrecognized") == "null":
        audit.change(df, unknown, table, "region_unrecognized", "region", raw, None)
        df["region"] = norm["region"]
    else:
        audit.flag(df, unknown, table, "region_unrecognized", "region", raw)
        df["region"] = norm["region"].fillna(raw)
        df["flag_region_unrecognized"] = unknown
    df["province"] = norm["province"]
    df["city"] = norm["city"]
    return df
