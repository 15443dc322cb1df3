"""`custseg campaign ...`: a holdout per segment before a campaign, treatment against control
per segment after it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from core import catalog
from custseg.cli.options import (
    DEFAULT_EXPERIMENT,
    ColumnOpt,
    ConfigOpt,
    ExperimentOpt,
    TrackingOpt,
    column_map,
    parse_date,
    tracking,
)

app = typer.Typer(
    help="Campaigns: hold out a random control group per segment before a campaign, then "
    "measure per segment whether the strategy worked (uplift, ROI) and feed it back.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
TrackCampaign = Annotated[bool, typer.Option(help="Log the plan / results to MLflow.")]


@app.command("plan")
def plan(
    segments: Annotated[
        Path,
        typer.Option(
            "--segments",
            help="scores.csv of `custseg run` or segments.parquet of `custseg segment fit`.",
            show_default=False,
        ),
    ],
    scheme: Annotated[
        str, typer.Option("--scheme", help="Scheme whose segments to plan.", show_default=False)
    ],
    segment: Annotated[
        list[str] | None,
        typer.Option(
            "--segment",
            help="Only this segment key (repeat for several). Default: every segment.",
            show_default=False,
        ),
    ] = None,
    control_share: Annotated[
        float, typer.Option(min=0.001, max=0.999, help="Share of each segment held out.")
    ] = 0.1,
    seed: Annotated[int, typer.Option(help="Seed of the draw: same inputs, same plan.")] = 42,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            dir_okay=False,
            help="Plan file (CSV); its summary (JSON) is written beside it. "
            "Default: campaigns/plan.csv in the state folder.",
            show_default=False,
        ),
    ] = None,
    transactions: Annotated[
        Path | None,
        typer.Option(
            "--transactions",
            "-t",
            help="Transaction log before the campaign: baseline conversion per segment and "
            "recency/frequency/monetary for the balance check.",
            show_default=False,
        ),
    ] = None,
    column: ColumnOpt = None,
    plan_date: Annotated[
        str | None,
        typer.Option(
            "--date",
            help="Campaign start (YYYY-MM-DD). Default: the day after the log's last order, "
            "else today.",
            metavar="YYYY-MM-DD",
            show_default=False,
        ),
    ] = None,
    window_days: Annotated[
        int, typer.Option(min=1, help="Campaign length in days, for the baseline conversion.")
    ] = 30,
    baseline_rate: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Baseline conversion of every segment, when no log is given.",
            show_default=False,
        ),
    ] = None,
    mde: Annotated[
        float | None,
        typer.Option(
            min=0.0001,
            max=1.0,
            help="Conversion uplift to detect (absolute, 0.02 = 2 points): the control size "
            "each segment needs.",
            show_default=False,
        ),
    ] = None,
    tracking_uri: TrackingOpt = None,
    experiment: ExperimentOpt = DEFAULT_EXPERIMENT,
    track: TrackCampaign = True,
) -> None:
    """Draw a random control group in each segment of a scheme (stratified, seeded), show the
    power of the test per segment (minimum detectable effect at alpha 0.05 and power 0.8) and
    the balance of the groups, and write the plan your campaign tool loads."""
    from custseg.cli import campaigns_display as show
    from training.campaigns.stage import prepare_plan, save_plan

    p = prepare_plan(
        segments,
        scheme,
        control_share=control_share,
        seed=seed,
        keys=segment,
        transactions=transactions,
        column_map=column_map(column),
        plan_date=parse_date(plan_date, "--date"),
        window_days=window_days,
        baseline_rate=baseline_rate,
        mde=mde,
    )
    show.plan(p)
    saved = save_plan(
        p,
        out or catalog.campaigns_dir() / catalog.PLAN,
        [segments, transactions],
        tracking(track, experiment, tracking_uri),
    )
    show.saved(saved)


@app.command("evaluate")
def evaluate(
    plan_file: Annotated[
        Path,
        typer.Option("--plan", help="Plan of `custseg campaign plan`.", show_default=False),
    ],
    transactions: Annotated[
        Path,
        typer.Option(
            "--transactions",
            "-t",
            help="Orders of the campaign window (CSV or Parquet): customer_id, order_date, "
            "amount, optional order_id. Earlier orders are left out.",
            show_default=False,
        ),
    ],
    start: Annotated[
        str | None,
        typer.Option(
            "--start",
            help="First day of the window. Default: the plan date.",
            metavar="YYYY-MM-DD",
            show_default=False,
        ),
    ] = None,
    end: Annotated[
        str | None,
        typer.Option(
            "--end",
            help="Last day of the window. Default: the last order of the log.",
            metavar="YYYY-MM-DD",
            show_default=False,
        ),
    ] = None,
    events: Annotated[
        Path | None,
        typer.Option(
            "--events",
            help="Campaign events (CSV or Parquet): customer_id, event (sent, open, click).",
            show_default=False,
        ),
    ] = None,
    costs: Annotated[
        Path | None,
        typer.Option(
            "--costs",
            help="costs.toml: per_contact, margin, [fixed] costs (see README).",
            show_default=False,
        ),
    ] = None,
    config: ConfigOpt = None,
    column: ColumnOpt = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            file_okay=False,
            help="Folder for the results, summary and report. Default: campaigns/results in "
            "the state folder.",
            show_default=False,
        ),
    ] = None,
    record: Annotated[
        bool,
        typer.Option(
            help="Record the measured effects in the strategy-effect table (`segment compare`)."
        ),
    ] = True,
    tracking_uri: TrackingOpt = None,
    experiment: ExperimentOpt = DEFAULT_EXPERIMENT,
    track: TrackCampaign = True,
) -> None:
    """Per segment, treatment against control over the campaign window: conversion, orders and
    revenue per customer, funnel, uplift with 95% intervals and Holm-corrected p-values, cost,
    ROI, incremental ROI and LTV/CAC; the segments where the strategy did not pay and the
    segments that could merge."""
    from custseg.cli import campaigns_display as show
    from training.campaigns.stage import run_evaluation, save_evaluation

    e = run_evaluation(
        plan_file,
        transactions,
        start=parse_date(start, "--start"),
        end=parse_date(end, "--end"),
        events=events,
        costs=costs,
        config=config,
        column_map=column_map(column),
    )
    show.evaluation(e)
    saved = save_evaluation(
        e,
        out or catalog.campaigns_dir() / "results",
        [plan_file, transactions, events, costs, config],
        tracking(track, experiment, tracking_uri),
        record,
    )
    show.saved(saved)
