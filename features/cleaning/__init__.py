"""Cleaning stage: raw transactions (+ optional customers) -> clean tables + audit trail.

    result = clean(read_table(tx_path, TRANSACTIONS), read_table(cust_path, CUSTOMERS), config)
    result.write(out_dir)

Nothing is lost silently: every input row is either kept or dropped with a rule, and
`result.audit["tables"][name]["balanced"]` checks input = kept + dropped.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd

import core
from core import catalog
from features.cleaning.amounts import amounts_from_prices
from features.cleaning.audit import Audit
from features.cleaning.config import RULES, CleaningConfig
from features.cleaning.customers import clean_customers
from features.cleaning.transactions import clean_transactions
from features.contract import CUSTOMERS, TRANSACTIONS, TableSchema, TypedTable
from features.parsing import DATE_FORMATS

__all__ = ["CleanResult", "CleaningConfig", "RULES", "clean", "clean_parquet"]


@dataclass
class CleanResult:
    transactions: pd.DataFrame
    customers: pd.DataFrame | None
    id_map: pd.DataFrame
    changes: pd.DataFrame  # the row-level log: one row per dropped, changed or flagged row
    audit: dict
    stats: dict = field(default_factory=dict)  # `Audit.stats`: for combining parts

    def write(self, out_dir: str | Path) -> dict[str, Path]:
        """Parquet tables, the row log, audit.json and audit.html; returns the paths."""
        from features.cleaning.report import write_report

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {
            "transactions": out / catalog.CLEAN_TRANSACTIONS,
            "id_map": out / catalog.ID_MAP,
            "changes": out / catalog.CHANGES,
        }
        # microsecond timestamps: Spark reads them (nanosecond INT64 it may refuse)
        us = {"coerce_timestamps": "us", "allow_truncated_timestamps": True}
        self.transactions.to_parquet(paths["transactions"], index=False, **us)
        self.id_map.to_parquet(paths["id_map"], index=False)
        self.changes.to_parquet(paths["changes"], index=False)
        if self.customers is not None:
            paths["customers"] = out / catalog.CLEAN_CUSTOMERS
            self.customers.to_parquet(paths["customers"], index=False, **us)
        self.audit["outputs"] = {k: p.name for k, p in paths.items()}
        paths.update(write_report(self, out))
        return paths


def _missing_rates(
    t: TypedTable,
    clean: pd.DataFrame,
    schema: TableSchema,
    key_fields: set[str],
    cfg: CleaningConfig,
) -> tuple[dict, list[str]]:
    rates, warnings = {}, []
    for col in schema.columns:
        if col.name not in t.frame:
            continue
        before = float(t.frame[col.name].isna().mean())
        after = float(clean[col.name].isna().mean()) if col.name in clean and len(clean) else None
        key = col.name in key_fields
        rates[col.name] = {
            "input": round(before, 6),
            "output": None if after is None else round(after, 6),
            "key": key,
        }
        if before > cfg.missing_rate_warn:
            kind = "key field" if key else "field"
            warnings.append(
                f"{schema.name}.{col.name}: {before:.1%} missing in the input "
                f"({kind}; limit {cfg.missing_rate_warn:.0%})"
            )
    return rates, warnings


def _rule_rows(audit: Audit, cfg: CleaningConfig) -> list[dict]:
    rows = []
    for (table, rule, action), by_col in sorted(audit.counts.items()):
        rows.append(
            {
                "table": table,
                "rule": rule,
                "action": action,
                "rows": int(sum(by_col.values())),
                "by_column": {k: int(v) for k, v in by_col.items() if k},
                "policy": cfg.policy(rule),
                "why": RULES[rule].why,
                # "column: reason" -> rows, for rules that say why per row (unreadable_value)
                "reasons": dict(audit.reasons.get((table, rule, action), {})),
            }
        )
    return rows


def _sweeping_rules(rules: list[dict], audit: Audit, share: float = 0.5) -> list[str]:
    """A warning for every rule that hit more than `share` of a table: that is rarely dirt and
    usually the wrong file, id column or date format, and must not pass as a normal clean.
    Rules counted without a row log (`Audit.count`) have their own warning."""
    out = []
    for r in rules:
        n_in = audit.input_rows.get(r["table"], 0)
        if (r["table"], r["rule"], r["action"]) in audit.summarized:
            continue
        if n_in and r["rows"] > share * n_in:
            out.append(
                f"{r['table']}: {r['rule']} {r['action']} on {r['rows']:,} of {n_in:,} rows "
                f"({r['rows'] / n_in:.0%}; {r['why']}): check the input files and --column"
            )
    return out


def clean(
    transactions: TypedTable,
    customers: TypedTable | None = None,
    config: CleaningConfig | None = None,
) -> CleanResult:
    """Clean one transaction log and (optionally) its customer table."""
    cfg = config or CleaningConfig()
    audit = Audit()
    cust_df, ctx, id_map = (None, None, None)
    if customers is not None:
        cust_df, ctx, id_map = clean_customers(customers, cfg, audit)
    transactions = amounts_from_prices(transactions, cfg, audit)  # quantity x unit_price
    tx = clean_transactions(transactions, cfg, audit, ctx)
    if id_map is None:
        id_map = pd.DataFrame(
            {
                "source_customer_id": pd.Series(dtype="string[pyarrow]"),
                "customer_id": pd.Series(dtype="string[pyarrow]"),
                "group_size": pd.Series(dtype="int64"),
            }
        )
    for name, t in (("transactions", transactions), ("customers", customers)):
        if t is None:
            continue
        for col, by_fmt in t.date_formats.items():
            audit.reformatted[f"{name}.{col}"] += sum(
                n for f, n in by_fmt.items() if f != DATE_FORMATS[0]
            )

    tables, missing, warnings = {}, {}, []
    key_tx = set(TRANSACTIONS.required)
    key_cust = set(CUSTOMERS.required) | set(cfg.profile_key_fields)
    for name, t, out, schema, keys in (
        ("transactions", transactions, tx, TRANSACTIONS, key_tx),
        ("customers", customers, cust_df, CUSTOMERS, key_cust),
    ):
        if t is None:
            continue
        dropped = audit.dropped(name)
        n_in, n_out = audit.input_rows[name], len(out)
        tables[name] = {
            "source": t.source,
            "input_rows": n_in,
            "kept_rows": n_out,
            "dropped_rows": sum(dropped.values()),
            "dropped_by_rule": dropped,
            "balanced": n_in == n_out + sum(dropped.values()),
            "renamed_columns": t.renamed,
            "dropped_personal_columns": t.dropped_pii,
        }
        missing[name], w = _missing_rates(t, out, schema, keys, cfg)
        warnings += w
    merged = {
        "customers_merged_away": int(len(id_map)),
        "groups": int(id_map["customer_id"].nunique()),
        "largest_group": int(id_map["group_size"].max()) if len(id_map) else 0,
    }
    if cust_df is not None:
        n_complete = int(cust_df["to_complete"].sum())
        merged["to_complete"] = n_complete
    rules = _rule_rows(audit, cfg)
    warnings += audit.warnings + _sweeping_rules(rules, audit)
    cfg_dict = {k: (str(v) if isinstance(v, date) else v) for k, v in asdict(cfg).items()}
    cfg_dict["reference_date"] = str(cfg.today)
    cfg_dict["policies"] = {r: cfg.policy(r) for r in RULES}
    report = {
        "custseg_version": core.__version__,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": cfg_dict,
        "tables": tables,
        "rules": rules,
        "merges": merged,
        "reformatted": dict(audit.reformatted),
        "missing_rates": missing,
        "warnings": warnings,
        "notes": audit.notes,
    }
    return CleanResult(tx, cust_df, id_map, audit.log(), report, audit.stats)


def __getattr__(name: str):
    if name == "clean_parquet":  # the out-of-core path (DuckDB), imported when asked for
        from features.cleaning.parts import clean_parquet

        return clean_parquet
    raise AttributeError(name)
