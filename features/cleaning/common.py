"""Rules both tables share: unreadable values and region normalisation."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.cleaning.audit import Audit
from features.cleaning.config import CleaningConfig
from features.contract import TypedTable
from features.regions import normalize_regions
from features.vector import coalesce


class LiveRows:
    """A table while rules run. Dropped rows are only marked (`alive`) and removed once at the
    end: filtering a 10M-row frame after every rule costs more than the rules themselves."""

    def __init__(self, df: pd.DataFrame, table: str, cfg: CleaningConfig, audit: Audit):
        self.df, self.table, self.cfg, self.audit = df, table, cfg, audit
        self.alive = np.ones(len(df), bool)

    def drop(
        self, mask, rule: str, column: str | None = None, old: pd.Series | None = None
    ) -> None:
        hit = np.asarray(mask, bool) & self.alive
        self.audit.record_drop(self.df, hit, self.table, rule, column, old)
        self.alive &= ~hit

    def apply(
        self, mask, rule: str, column: str | None = None, old: pd.Series | None = None
    ) -> None:
        """Drop or flag the rows as the rule's policy says (a flag becomes `flag_<rule>`)."""
        if self.cfg.policy(rule) == "drop":
            self.drop(mask, rule, column, old)
            return
        hit = np.asarray(mask, bool) & self.alive
        self.audit.flag(self.df, hit, self.table, rule, column, old)
        self.df[f"flag_{rule}"] = hit

    def kept(self) -> pd.DataFrame:
        return self.df[self.alive].reset_index(drop=True)


def drop_unreadable(rows: LiveRows, t: TypedTable, required: tuple[str, ...]) -> None:
    """Rows whose required field could not be read are dropped; other fields become missing.

    The contract already set those values to missing; here each one is logged with its source
    text. Call it before any row is reordered (masks are by source row).
    """
    for column, mask in t.invalid.items():
        raw = t.raw[column].reindex(rows.df.index)
        if column in required:
            rows.drop(mask, "unreadable_value", column, raw)
        else:
            rows.audit.change(
                rows.df, mask & rows.alive, rows.table, "unreadable_value", column, raw, None
            )
    rows.audit.touch(rows.table, "unreadable_value", "drop")


def normalize_region_column(
    df: pd.DataFrame, table: str, cfg: CleaningConfig, audit: Audit
) -> pd.DataFrame:
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
        df["region"] = coalesce(norm["region"], raw)
        df["flag_region_unrecognized"] = unknown
    df["province"] = norm["province"]
    df["city"] = norm["city"]
    return df
