"""Data commands: `sample` (generated data with ground truth), `clean` (audit of every row),
`features` (the feature snapshot as of a cutoff)."""

from __future__ import annotations

from typing import Annotated

import typer

from core import catalog
from core.errors import CustsegError
from custseg.cli.options import (
    AsOfOpt,
    ColumnOpt,
    ConfigOpt,
    CustomersOpt,
    EngineOpt,
    ReferenceOpt,
    SheetOpt,
    TransactionsOpt,
    column_map,
    configs,
    out_option,
    parse_date,
)

SampleOut = out_option(
    "Folder to write customers, transactions and truth/ into. Default: sample/ in the state folder."
)
CleanOut = out_option("Folder for clean tables and the audit. Default: clean/ in the state folder.")
SnapshotOut = out_option(
    "Snapshot file to write (.parquet). Default: features/features.parquet in the state folder.",
    folder=False,
)


def sample(
    out: SampleOut = None,
    customers: Annotated[
        int,
        typer.Option(
            "--customers",
            "-n",
            min=10,
            help="Number of real customers (duplicates, test accounts come on top).",
        ),
    ] = 5000,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same data.")] = 42,
    end_date: Annotated[
        str, typer.Option(help="Last day of the history (YYYY-MM-DD).")
    ] = "2026-06-30",
    orders_scale: Annotated[
        float,
        typer.Option(
            min=0.05, help="Order intensity multiplier (1.0 = about 8-10 orders per customer)."
        ),
    ] = 1.0,
    fmt: Annotated[str, typer.Option("--format", help="csv or parquet.")] = "csv",
) -> None:
    """Generate a realistic transaction log and customer table with known ground truth.

    Customers come from latent behaviour groups with seasonality, repurchase cycles and known
    churn dates; dirt (duplicates, test accounts, bad dates, negative amounts, outliers, missing
    fields) is injected at known rates and recorded in OUT/truth/.
    """
    from core.progress import console, stage
    from custseg.sample import SampleConfig, generate, write

    if fmt not in catalog.SAMPLE_FORMATS:
        raise CustsegError(f"--format {fmt!r}: use csv or parquet")
    cfg = SampleConfig(
        customers=customers,
        seed=seed,
        end_date=parse_date(end_date, "--end-date"),
        orders_scale=orders_scale,
    )
    with stage(f"generating {customers:,} customers"):
        data = generate(cfg)
    from core.outputs import check_output

    out = check_output(out or catalog.sample_dir(), [])
    with stage("writing"):
        paths = write(data, out, fmt)
    console.print(
        f"{len(data['customers']):,} customer rows, {len(data['transactions']):,} "
        f"transactions -> {paths['transactions'].parent}"
    )


def clean(
    transactions: TransactionsOpt,
    out: CleanOut = None,
    customers: CustomersOpt = None,
    column: ColumnOpt = None,
    sheet: SheetOpt = None,
    config: ConfigOpt = None,
    reference_date: ReferenceOpt = None,
) -> None:
    """Clean a transaction log (and customer table) and write an audit of every change.

    Writes OUT/transactions.parquet, customers.parquet, id_map.parquet (merged duplicate ids),
    changes.parquet (one row per dropped, changed or flagged row), audit.json and audit.html.
    """
    from custseg.cli import display
    from features.stage import clean_log

    cfg = configs(config, parse_date(reference_date, "--reference-date")).cleaning
    result, paths = clean_log(
        transactions, customers, column_map(column), cfg, out or catalog.clean_dir(), sheet
    )
    display.cleaning_summary(result.audit, paths)


def features(
    transactions: TransactionsOpt,
    out: SnapshotOut = None,
    customers: CustomersOpt = None,
    as_of: AsOfOpt = None,
    engine: EngineOpt = None,
    column: ColumnOpt = None,
    sheet: SheetOpt = None,
    config: ConfigOpt = None,
    cleaned: Annotated[
        bool,
        typer.Option(
            "--cleaned",
            help="The inputs are clean tables (`custseg clean` outputs: a Parquet file or a "
            "folder of Parquet files): skip cleaning and let the engine read them itself, so "
            "nothing but the result passes through memory here. The path for logs that outgrow "
            "one machine, with --engine spark.",
        ),
    ] = False,
) -> None:
    """Build the customer feature table as of a cutoff and save it as a snapshot.

    RFM over 30/90/180/365-day windows, tenure, order value, inter-purchase gaps, trends,
    category and channel shares, refunds, lifecycle stage, and customer attributes. Cleaning
    and features use only data on or before --as-of, so the table does not change when later
    data is added. The Parquet file records the as-of date and the definition hash.
    """
    from core.outputs import check_output, staged_file
    from core.progress import console
    from features.snapshot import write_snapshot
    from features.stage import features_from_clean, features_from_log

    out = check_output(out or catalog.features_file(), [transactions, customers], folder=False)
    if out.suffix.lower() != ".parquet":
        raise CustsegError(f"--out {out}: the snapshot is a Parquet file; name it *.parquet")
    if cleaned and column:
        raise CustsegError(
            "--column maps raw input columns; clean tables (--cleaned) already use custseg's names"
        )
    cfg = configs(config)
    cutoff = parse_date(as_of, "--as-of")
    if cleaned:
        table = features_from_clean(transactions, customers, cfg.features, cutoff, engine)
    else:
        table = features_from_log(
            transactions,
            customers,
            column_map(column),
            cfg.cleaning,
            cfg.features,
            cutoff,
            engine,
            sheet,
        ).table
    with staged_file(out) as tmp:
        meta = write_snapshot(table, tmp)
    console.print(
        f"{len(table):,} customers x {len(table.columns) - 1} features as of {meta['as_of']} "
        f"(definition {meta['definition_hash']}, engine {meta['engine']}) -> {out}"
    )
