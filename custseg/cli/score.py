"""`custseg score`: every customer of a feature snapshot or a transaction log scored by the
served champions, written as Parquet parts (serving.batch.score_parquet)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from core import catalog
from custseg.cli.options import (
    AsOfOpt,
    ColumnOpt,
    CustomersOpt,
    TrackingOpt,
    column_map,
    out_option,
    parse_date,
)

ScoreOut = out_option(
    "Folder to write scores/ (Parquet parts), score.json and, for a log, features.parquet "
    "into. Default: score/ in the state folder."
)


def score(
    input: Annotated[
        Path,
        typer.Argument(
            help="A feature snapshot (`custseg features`: a Parquet file, or a folder of "
            "Parquet parts) or a transaction log (CSV, Excel or Parquet) to build the "
            "features of first.",
            show_default=False,
        ),
    ],
    out: ScoreOut = None,
    as_of: AsOfOpt = None,
    engine: Annotated[
        str,
        typer.Option(
            "--engine",
            help="Where the work runs: duckdb (the default) or polars read the input in "
            "chunks and score each here; spark runs the champions inside Spark over the "
            "Parquet parts (local mode, or the cluster in CUSTSEG_SPARK_MASTER). A log's "
            "features are built on the same engine.",
        ),
    ] = "duckdb",
    tracking_uri: TrackingOpt = None,
    customers: CustomersOpt = None,
    column: ColumnOpt = None,
    cleaned: Annotated[
        bool,
        typer.Option(
            "--cleaned",
            help="INPUT is a clean transaction table (`custseg clean` output, a Parquet file "
            "or folder), read by the engine itself.",
        ),
    ] = False,
    csv: Annotated[
        bool, typer.Option("--csv", help="Also write the scores as one scores.csv (Excel-ready).")
    ] = False,
    chunk_rows: Annotated[
        int,
        typer.Option(
            "--chunk-rows", min=1, help="Customers scored at a time: bounds the memory used."
        ),
    ] = 100_000,
) -> None:
    """Score every customer with the served champions: batch /predict.

    Per customer: the segment of every served scheme (id, name, strategy), the repurchase and
    churn probabilities, the value fields (CLV, expected orders, P(alive), next order, value
    tier) and the active dynamic tags: the service's answers, same names, one row each. The
    input is read and scored in chunks, so memory stays bounded however many customers. A
    snapshot is scored as of its own date; --as-of is the cutoff of a transaction log.
    """
    from core.progress import console
    from serving.batch import score_parquet

    summary = score_parquet(
        input,
        out or catalog.score_dir(),
        engine=engine,
        tracking_uri=tracking_uri,
        as_of=parse_date(as_of, "--as-of"),
        customers=customers,
        mapping=column_map(column),
        cleaned=cleaned,
        csv=csv,
        chunk_rows=chunk_rows,
    )
    seconds = summary["scoring_seconds"]
    rate = summary["customers"] / seconds if seconds else 0
    console.print(
        f"{summary['customers']:,} customers scored as of {summary['as_of']} "
        f"({summary['engine']}, {rate:,.0f} customers/s, {len(summary['versions'])} champion "
        f"models) -> {summary['scores']} ({summary['parts']} parts)"
    )
    for key in ("csv", "features"):
        if summary[key]:
            console.print(f"{key}: {summary[key]}")
