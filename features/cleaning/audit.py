"""The audit trail: every dropped, changed or flagged row, counted per rule and logged per row.

Stages call `drop`, `change` and `flag` with a boolean mask over the rows still alive; the audit
logs those rows (source row number, customer id, rule, column, old and new value, and the reason
where a rule has several, e.g. why a value was unreadable) and keeps the counts that prove
`input rows = kept + dropped`. Personal data never reaches the log: callers
pass only non-personal columns, and values are masked as a last guard.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from features.contract import mask_value

LOG_COLUMNS = (
    "table",
    "source_row",
    "customer_id",
    "rule",
    "action",
    "column",
    "old_value",
    "new_value",
    "reason",  # why, beyond the rule (unreadable_value: "not a date", "outside ...", ...)
)


def _as_text(values: object, n: int, column: str | None) -> pd.Series:
    if values is None:
        return pd.Series([pd.NA] * n, dtype="string[pyarrow]")
    s = pd.Series(values).reset_index(drop=True)
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        s = s.dt.strftime("%Y-%m-%d")
    s = s.astype("string[pyarrow]")
    if column in ("phone", "email"):
        s = s.map(lambda v: mask_value(column, v), na_action="ignore").astype("string[pyarrow]")
    return s


@dataclass
class Audit:
    counts: dict[tuple[str, str, str], dict[str, int]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(int))
    )  # (table, rule, action) -> column -> rows
    input_rows: dict[str, int] = field(default_factory=dict)
    # (table, rule, action) -> "column: reason" -> rows (rules that give a reason per row)
    reasons: dict[tuple[str, str, str], dict[str, int]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(int))
    )
    reformatted: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # for the report's warnings
    # (table, rule, action) counted without a row log (`count`): no "swept the table" warning
    summarized: set[tuple[str, str, str]] = field(default_factory=set)
    _log: list[pd.DataFrame] = field(default_factory=list)
    # figures a rule computed over the whole table (extreme_amount: the sum and count of the
    # amounts its mean is taken over), for `clean_parquet` to combine across parts
    stats: dict[str, dict] = field(default_factory=dict)

    def _record(
        self,
        action: str,
        df: pd.DataFrame,
        mask: np.ndarray | pd.Series,
        table: str,
        rule: str,
        column: str | None,
        old: object = None,
        new: object = None,
        reason: object = None,
    ) -> None:
        mask = np.asarray(mask, dtype=bool)
        rows = df[mask]
        n = len(rows)
        self.counts[(table, rule, action)][column or ""] += n
        if not n:
            return

        def values(v: object) -> object:
            return pd.Series(v)[mask] if isinstance(v, (pd.Series, np.ndarray)) else v

        why = _as_text(values(reason), n, None) if reason is not None else _as_text(None, n, None)
        if reason is not None:
            for text, count in why.value_counts().items():
                self.reasons[(table, rule, action)][f"{column}: {text}"] += int(count)

        self._log.append(
            pd.DataFrame(
                {
                    "table": pd.Series([table] * n, dtype="category"),
                    "source_row": rows["source_row"].to_numpy(np.int64),
                    "customer_id": rows["customer_id"].astype("string[pyarrow]").to_numpy()
                    if "customer_id" in rows
                    else pd.array([pd.NA] * n, dtype="string[pyarrow]"),
                    "rule": pd.Series([rule] * n, dtype="category"),
                    "action": pd.Series([action] * n, dtype="category"),
                    "column": pd.Series([column] * n, dtype="string[pyarrow]"),
                    "old_value": _as_text(values(old), n, column),
                    "new_value": _as_text(values(new), n, column),
                    "reason": why,
                }
            )
        )

    def count(self, table: str, rule: str, action: str, column: str, n: int, reason: str) -> None:
        """Count `n` rows under a rule without logging them one by one: a whole column read
        another way (a country column) is one fact, said by the caller's warning, not n rows
        of changes.parquet. The reason shows in the rule's row of the report."""
        self.counts[(table, rule, action)][column] += n
        self.reasons[(table, rule, action)][f"{column}: {reason}"] += n
        self.summarized.add((table, rule, action))

    def touch(self, table: str, rule: str, action: str) -> None:
        """Make a rule appear in the report even when it touched no row."""
        self.counts[(table, rule, action)]  # noqa: B018 - defaultdict access creates the entry

    def record_drop(
        self, df, mask, table: str, rule: str, column=None, old=None, new=None, reason=None
    ) -> None:
        """Log the masked rows as dropped with this reason (the caller removes them)."""
        self._record("drop", df, mask, table, rule, column, old, new, reason)

    def drop(
        self, df, mask, table: str, rule: str, column=None, old=None, new=None
    ) -> pd.DataFrame:
        """Remove the masked rows, logging each with its reason; returns the rows kept."""
        self._record("drop", df, mask, table, rule, column, old, new)
        return df[~np.asarray(mask, dtype=bool)]

    def change(self, df, mask, table: str, rule: str, column: str, old, new, reason=None) -> None:
        """Log a value change of the masked rows (the caller writes the new value)."""
        self._record("change", df, mask, table, rule, column, old, new, reason)

    def flag(self, df, mask, table: str, rule: str, column=None, old=None) -> None:
        """Log the masked rows as kept but flagged."""
        self._record("flag", df, mask, table, rule, column, old)

    def log(self) -> pd.DataFrame:
        if not self._log:
            return pd.DataFrame(
                {c: pd.Series(dtype="string[pyarrow]") for c in LOG_COLUMNS}
            ).astype({"source_row": "int64"})
        out = pd.concat(self._log, ignore_index=True)
        for c in ("table", "rule", "action"):
            out[c] = out[c].astype("string[pyarrow]")
        return out

    def dropped(self, table: str) -> dict[str, int]:
        out: dict[str, int] = {}
        for (t, rule, action), cols in self.counts.items():
            if t == table and action == "drop" and sum(cols.values()):
                out[rule] = out.get(rule, 0) + sum(cols.values())
        return out
