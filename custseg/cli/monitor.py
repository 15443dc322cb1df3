"""`custseg monitor`: drift and segment health of new data against the champions' reference."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from custseg.cli.options import (
    DEFAULT_EXPERIMENT,
    AsOfOpt,
    ColumnOpt,
    CustomersOpt,
    ExperimentOpt,
    ProjectOpt,
    SchemesOpt,
    SheetOpt,
    TrackingOpt,
    TransactionsOpt,
    TrialsOpt,
    column_map,
    configs,
    out_option,
    parse_date,
)

MonitorOut = out_option(
    "Folder for summary.json, monitor_report.html and the Evidently pages. "
    "Default: monitoring/YYYY-MM-DD (the as-of date) in the state folder."
)


def monitor(
    transactions: TransactionsOpt,
    customers: CustomersOpt = None,
    as_of: AsOfOpt = None,
    out: MonitorOut = None,
    reevaluate: Annotated[
        bool,
        typer.Option(
            "--reevaluate",
            help="When re-evaluation is needed, refit the schemes on the current data and "
            "promote a challenger that beats its champion.",
        ),
    ] = False,
    promote: Annotated[
        bool,
        typer.Option(
            "--promote/--no-promote", help="With --reevaluate: move the champion alias to winners."
        ),
    ] = True,
    schemes: SchemesOpt = None,
    trials: TrialsOpt = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="TOML file: [monitoring] weights and thresholds, [cleaning], [features].",
            show_default=False,
        ),
    ] = None,
    column: ColumnOpt = None,
    sheet: SheetOpt = None,
    tracking_uri: TrackingOpt = None,
    project: ProjectOpt = None,
    experiment: ExperimentOpt = DEFAULT_EXPERIMENT,
) -> None:
    """Compare new data with the reference the serving champions were fitted on: Evidently
    drift per feature, prediction and target drift, and the segment health index (0-100) per
    scheme. Writes summary.json (for machines), monitor_report.html (for analysts) and
    Evidently's pages, and logs them to MLflow.

    Health under 60 or a drifted-feature share over 0.3 (see [monitoring] in --config) means
    the schemes need re-evaluation; `--reevaluate` refits them and promotes only a better one.
    Exit code: 0 healthy, 1 unhealthy (re-evaluation needed, or done with --reevaluate: the
    summary says whether it promoted), 2 error.
    """
    from core.config import section
    from core.progress import console
    from custseg.cli import display
    from monitoring.health import HealthConfig
    from monitoring.pipeline import monitor as run_monitor
    from training.pipeline import Inputs, Tracking
    from training.segmentation.stage import load_schemes

    health = section(config, "monitoring", HealthConfig.from_dict)
    scheme_file = load_schemes(schemes) if reevaluate else None  # a typo fails before the work
    cfg = configs(config)
    r = run_monitor(
        Inputs(transactions, customers, column_map(column), sheet),
        as_of=parse_date(as_of, "--as-of"),
        out=out,
        health=health,
        configs=cfg,
        reevaluate_with=scheme_file,
        trials=trials,
        promote=promote,
        track=Tracking(experiment, tracking_uri),
    )
    display.monitoring(r.measured, r.summary, health, reevaluate)
    console.print(
        f"summary: {r.paths['summary']}\nreport: {r.paths['report']}  (open it in a browser)\n"
        f"MLflow run {r.run_id}"
    )
    if r.summary["status"] != "healthy":
        console.print("[yellow]unhealthy:[/] exit code 1")
        raise typer.Exit(1)
