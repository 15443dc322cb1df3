"""The data stages as the commands, the main job and monitoring run them: read the input files
under the contract, choose the cutoff, clean with an audit, build the feature table as of the
cutoff (from the raw log, or from clean Parquet tables read by the engine itself).

One cutoff policy (`resolve_cutoff`) serves `custseg features`, `run`, `train` and `monitor`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pandas as pd

from core import catalog
from core.errors import CustsegError
from core.progress import stage, warn
from features.cleaning import CleaningConfig, CleanResult
from features.contract import TypedTable
from features.definitions import FeatureConfig


def read_inputs(
    transactions: Path,
    customers: Path | None,
    mapping: dict,
    cfg: CleaningConfig,
    sheet: str | None = None,
) -> tuple[TypedTable, TypedTable | None]:
    """Both input files under the data contract (a clear InputError when they break it), with
    the cleaning config's share of unreadable values and its range of plausible dates; `sheet`
    names the sheet of the Excel files among them (default: the first)."""
    from features.contract import CUSTOMERS, TRANSACTIONS, read_table
    from features.excel import XLSX_SUFFIXES

    def read(path: Path, schema):
        excel = sheet if Path(path).suffix.lower() in XLSX_SUFFIXES else None
        return read_table(
            path, schema, mapping, cfg.max_invalid_share, (cfg.min_date, cfg.max_date), excel
        )

    with stage("reading input"):
        tx = read(transactions, TRANSACTIONS)
        cust = read(customers, CUSTOMERS) if customers else None
    return tx, cust


def resolve_cutoff(as_of: date | None, last: date, source: object) -> date:
    """`as_of`, or the last order date; a warning when it lies after the last order. A date
    after today is refused: cleaning takes the cutoff as its reference date, so orders dated
    between today and it would pass as real, and recency would count days to come."""
    cutoff = as_of or last
    if cutoff > date.today():
        raise CustsegError(
            f"--as-of {cutoff} is after today ({date.today()}): features are as of a day that "
            "has happened"
        )
    if cutoff > last:
        warn(
            f"--as-of {cutoff} is {(cutoff - last).days} day(s) after the last order in "
            f"{source} ({last}): recency and lifecycle stages count those days as inactivity"
        )
    return cutoff


def clean_log(
    transactions: Path,
    customers: Path | None,
    mapping: dict,
    cfg: CleaningConfig,
    out: Path,
    sheet: str | None = None,
) -> tuple[CleanResult, dict[str, Path]]:
    """`custseg clean`: read, clean, write the clean tables and the audit to `out`."""
    from core.outputs import check_output, moved, staged
    from features.cleaning import clean

    out = check_output(out, [transactions, customers])
    tx, cust = read_inputs(transactions, customers, mapping, cfg, sheet)
    with stage("cleaning"):
        result = clean(tx, cust, cfg)
    with stage("writing outputs"), staged(out) as tmp:
        paths = result.write(tmp)
    return result, moved(paths, tmp, out)


@dataclass
class FeatureRun:
    """What the feature stage hands on: the typed inputs, the configs, the cutoff, the
    cleaning result and the feature table as of the cutoff."""

    transactions: TypedTable
    customers: TypedTable | None
    cleaning: CleaningConfig
    features_cfg: FeatureConfig
    as_of: date
    table: pd.DataFrame
    result: CleanResult


def features_from_log(
    transactions: Path,
    customers: Path | None,
    mapping: dict,
    cleaning: CleaningConfig,
    features_cfg: FeatureConfig,
    as_of: date | None = None,
    engine: str | None = None,
    sheet: str | None = None,
    categories: list[str] | None = None,
) -> FeatureRun:
    """Read, clean and build features as of a cutoff (default: the last order date) on
    `engine` (default: the embedded default engine); `categories` fixes the category-share
    columns (batch scoring passes the champions')."""
    from features.engines import DEFAULT_ENGINE
    from features.pipeline import features_as_of, last_order_date

    engine = engine or DEFAULT_ENGINE
    tx, cust = read_inputs(transactions, customers, mapping, cleaning, sheet)
    last = last_order_date(tx)
    cutoff = resolve_cutoff(as_of, last, transactions)
    with stage(f"cleaning + features as of {cutoff} ({engine})"):
        table, result = features_as_of(tx, cust, cutoff, cleaning, features_cfg, engine, categories)
    if table.empty:
        dates = tx.frame["order_date"].dropna()
        if (dates <= pd.Timestamp(cutoff)).any():  # orders up to the cutoff, all dropped
            dropped = result.audit["tables"]["transactions"]["dropped_by_rule"]
            why = ", ".join(f"{r} {n:,}" for r, n in sorted(dropped.items(), key=lambda x: -x[1]))
            raise CustsegError(
                f"no order of {transactions} on or before {cutoff} survives cleaning "
                f"(dropped: {why or 'none'}); `custseg clean` writes the audit of every row"
            )
        raise CustsegError(
            f"no customer has a valid order on or before {cutoff} (orders in {transactions} run "
            f"from {dates.min():%Y-%m-%d} to {last}); choose a later --as-of"
        )
    return FeatureRun(tx, cust, cleaning, features_cfg, cutoff, table, result)


def features_from_clean(
    transactions: Path,
    customers: Path | None,
    features_cfg: FeatureConfig,
    as_of: date | None = None,
    engine: str | None = None,
    categories: list[str] | None = None,
) -> pd.DataFrame:
    """Features straight from clean Parquet tables, read by the engine itself (no pandas on
    the way in): `custseg features --cleaned`, the path for logs that outgrow one machine.
    `categories` fixes the category-share columns (batch scoring passes the champions')."""
    from features.build import build_features_from_scans, check_clean, scan_clean
    from features.engines import DEFAULT_ENGINE

    engine = engine or DEFAULT_ENGINE
    for path, option in ((transactions, "--transactions"), (customers, "--customers")):
        if path is None:
            continue
        if not path.exists():
            raise CustsegError(f"{option} {path}: no such file or folder")
        if path.is_file() and path.suffix.lower() != ".parquet":
            raise CustsegError(
                f"{option} {path}: --cleaned reads clean Parquet tables (`custseg clean` writes "
                f"{catalog.CLEAN_TRANSACTIONS} and {catalog.CLEAN_CUSTOMERS}) or a folder of "
                "Parquet files"
            )
    with stage(f"checking {transactions} ({engine})"):
        tx = scan_clean(transactions, "transactions", engine)
        cust = scan_clean(customers, "customers", engine) if customers else None
        last = check_clean(tx, cust, str(transactions))
    if last is None:
        raise CustsegError(f"--transactions {transactions}: no order dated today or earlier")
    cutoff = resolve_cutoff(as_of, last, transactions)
    _warn_cleaned_later(transactions, cutoff)
    with stage(f"features as of {cutoff} ({engine})"):
        table = build_features_from_scans(
            tx, cutoff, features_cfg, engine, customers=cust, categories=categories
        )
    if table.empty:
        raise CustsegError(
            f"no customer in {transactions} has an order (refunds aside) on or before {cutoff} "
            f"(the last order is on {last}); choose a later --as-of"
        )
    return table


def _warn_cleaned_later(transactions: Path, cutoff: date) -> None:
    """Point in time: clean tables whose extreme amounts were capped or dropped against the mean
    of a later reference date (the audit beside them says) saw data after the cutoff."""
    folder = transactions if transactions.is_dir() else transactions.parent
    try:
        config = json.loads((folder / catalog.AUDIT_JSON).read_text(encoding="utf-8"))["config"]
        reference = date.fromisoformat(config["reference_date"])
        policy = config["policies"]["extreme_amount"]
    except (OSError, ValueError, KeyError, TypeError):
        return
    if reference > cutoff and policy != "flag":
        warn(
            f"these tables were cleaned as of {reference} with extreme amounts "
            f"{'capped' if policy == 'cap' else 'dropped'} against the mean up to that date, "
            f"which includes orders after --as-of {cutoff}; for an exact point-in-time table "
            f"clean with --reference-date {cutoff} (or build from the raw log)"
        )


def write_clean_and_features(run: FeatureRun, out: Path) -> tuple[dict[str, Path], dict]:
    """The clean tables, the audit and the feature snapshot in `out`: (paths, snapshot meta)."""
    from features.snapshot import write_snapshot

    with stage("writing clean tables and features"):
        paths = run.result.write(out)
        paths["features"] = out / catalog.FEATURES
        meta = write_snapshot(run.table, paths["features"])
    return paths, meta
