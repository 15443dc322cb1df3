"""Rules both tables share: unreadable values and region normalisation."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from features.cleaning.audit import Audit
from features.cleaning.config import CleaningConfig
from features.contract import SCHEMAS, TypedTable
from features.parsing import outside
from features.regions import foreign_names, normalize_regions

# more than this share of a region column's values naming places outside China: a country column
COUNTRY_COLUMN_SHARE = 0.5


class LiveRows:
    """A table while rules run. Dropped rows are only marked (`alive`) and removed once at the
    end: filtering a 10M-row frame after every rule costs more than the rules themselves."""

    def __init__(self, df: pd.DataFrame, table: str, cfg: CleaningConfig, audit: Audit):
        self.df, self.table, self.cfg, self.audit = df, table, cfg, audit
        self.alive = np.ones(len(df), bool)

    def drop(
        self,
        mask,
        rule: str,
        column: str | None = None,
        old: pd.Series | None = None,
        reason: pd.Series | None = None,
    ) -> None:
        hit = np.asarray(mask, bool) & self.alive
        self.audit.record_drop(self.df, hit, self.table, rule, column, old, reason=reason)
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


def _dates_outside(rows: LiveRows, t: TypedTable) -> TypedTable:
    """`t` with the dates outside cleaning.min_date..max_date also unreadable (the contract
    checked its own range, by default the same), their values made missing in `rows.df`."""
    valid = (rows.cfg.min_date, rows.cfg.max_date)
    lo, hi = (pd.Timestamp(d) for d in valid)
    invalid, raw, reasons = dict(t.invalid), dict(t.raw), dict(t.reasons)
    for col in (c.name for c in SCHEMAS[t.name].columns if c.kind == "date"):
        if col not in rows.df:
            continue
        values = rows.df[col]
        far = (values.notna() & ((values < lo) | (values > hi))).to_numpy(bool)
        if not far.any():
            continue
        text = values[far].dt.strftime("%Y-%m-%d").astype("string")
        invalid[col] = invalid.get(col, np.zeros(len(values), bool)) | far
        raw[col] = pd.concat([raw[col], text]) if col in raw else text
        why = pd.Series(outside(valid), index=text.index, dtype="string")
        reasons[col] = pd.concat([reasons[col], why]) if col in reasons else why
        rows.df.loc[far, col] = pd.NaT
    return replace(t, invalid=invalid, raw=raw, reasons=reasons)


def drop_unreadable(rows: LiveRows, t: TypedTable, required: tuple[str, ...]) -> None:
    """Rows whose required field could not be read are dropped; other fields become missing.

    The contract already set those values to missing; here each one is logged with its source
    text and its reason (not a date, outside the date range, not a finite number, ...), and the
    audit notes count them per column and reason. Dates outside cleaning.min_date..max_date
    count as unreadable too. Call it before any row is reordered (masks are by source row).
    """
    t = _dates_outside(rows, t)
    for column, mask in t.invalid.items():
        raw = t.raw[column].reindex(rows.df.index)
        why = t.reasons[column].reindex(rows.df.index) if column in t.reasons else None
        hit = mask & rows.alive
        if column in required:
            rows.drop(hit, "unreadable_value", column, raw, why)
        else:
            rows.audit.change(rows.df, hit, rows.table, "unreadable_value", column, raw, None, why)
        if why is not None:
            outcome = "rows dropped" if column in required else "values made missing"
            for reason, n in why[hit].value_counts().items():
                rows.audit.notes.append(
                    f"{rows.table}.{column}: {n:,} unreadable value(s) [{reason}]: {outcome}"
                )
    rows.audit.touch(rows.table, "unreadable_value", "drop")


def normalize_region_column(
    df: pd.DataFrame, table: str, cfg: CleaningConfig, audit: Audit
) -> pd.DataFrame:
    """region -> "省-市" plus province/city columns.

    A new spelling of the same place is counted (audit "reformatted"), not logged per row. A
    place outside China (letters, no Chinese characters: "United Kingdom", "EIRE") is kept as
    written, with province = the name and city empty (`region_foreign`, flagged per row); when
    more than COUNTRY_COLUMN_SHARE of the values are such names the column is a country column:
    one warning and a count, no row log. Anything else follows `region_unrecognized`.
    """
    raw = df["region"]
    norm = normalize_regions(raw)
    text = raw.astype("string[pyarrow]").str.strip()
    unrecognised = (raw.notna() & norm["region"].isna()).to_numpy(bool)
    foreign = unrecognised & foreign_names(text)
    unknown = unrecognised & ~foreign
    respelled = (raw.notna() & norm["region"].notna() & (raw != norm["region"])).fillna(False)
    audit.reformatted[f"{table}.region"] += int(respelled.sum())
    region, province = norm["region"], norm["province"]
    if cfg.policy("region_unrecognized") == "null":
        audit.change(df, unknown, table, "region_unrecognized", "region", raw, None)
    else:
        audit.flag(df, unknown, table, "region_unrecognized", "region", raw)
        region = region.mask(unknown, raw)
        df["flag_region_unrecognized"] = unknown
    if cfg.policy("region_foreign") == "null":
        audit.change(df, foreign, table, "region_foreign", "region", raw, None)
    else:
        region, province = region.mask(foreign, text), province.mask(foreign, text)
        _flag_foreign(df, foreign, text, table, audit)
    df["region"] = region
    df["province"] = province
    df["city"] = norm["city"]
    return df


def _flag_foreign(
    df: pd.DataFrame, foreign: np.ndarray, text: pd.Series, table: str, audit: Audit
) -> None:
    """Flag place names outside China per row, or, in a country column, count them once."""
    n, n_present = int(foreign.sum()), int(text.notna().sum())
    if not n or n <= COUNTRY_COLUMN_SHARE * n_present:
        audit.flag(df, foreign, table, "region_foreign", "region", text)
        df["flag_region_foreign"] = foreign
        return
    audit.count(table, "region_foreign", "flag", "region", n, "country column, not logged per row")
    top = ", ".join(repr(v) for v in text[foreign].value_counts().index[:3])
    audit.warnings.append(
        f"{table}.region: {n:,} of {n_present:,} values ({n / n_present:.0%}) name places "
        f"outside China (e.g. {top}): read as a country column, values kept as written "
        "(province = the country, city empty), counted under region_foreign, not logged per row"
    )
