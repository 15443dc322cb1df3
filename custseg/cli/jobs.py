"""The jobs: `run` (the main job: everything from the raw log to scores) and `train` (the
churn and repurchase predictors alone). Both call `training.pipeline`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from core import catalog
from custseg.cli.options import (
    DEFAULT_EXPERIMENT,
    AsOfOpt,
    ColumnOpt,
    ConfigOpt,
    CustomersOpt,
    ExperimentOpt,
    ProjectOpt,
    SchemesOpt,
    SheetOpt,
    TrackingOpt,
    TrackOpt,
    TransactionsOpt,
    column_map,
    configs,
    out_option,
    parse_date,
    tracking,
)

RepurchaseOpt = Annotated[
    int | None,
    typer.Option(
        min=1,
        help="Repurchase = an order within this many days after the cutoff. [30]",
        show_default=False,
    ),
]
ChurnOpt = Annotated[
    int | None,
    typer.Option(
        min=1,
        help="Churn = no order within this many days after the cutoff. [90]",
        show_default=False,
    ),
]
ClvOpt = Annotated[
    int | None,
    typer.Option(
        min=1,
        help="CLV = discounted expected spend over this many days after the cutoff. [365]",
        show_default=False,
    ),
]
StudyStorageOpt = Annotated[
    str | None,
    typer.Option(
        help="Optuna storage URL shared by workers, e.g. sqlite:///optuna.db or "
        "postgresql://host/db: processes running the same job join one study. "
        "Default: in memory.",
        show_default=False,
    ),
]
StudyNameOpt = Annotated[
    str | None,
    typer.Option(
        help="Study name prefix in that storage (studies are <name>-<target>-<as of>). [custseg]",
        show_default=False,
    ),
]

RunOut = out_option("Output folder. Default: output/ in the state folder.")
TrainOut = out_option("Folder for scores.csv and report.html. Default: train/ in the state folder.")


def run(
    transactions: Annotated[
        Path | None,
        typer.Option(
            "--transactions",
            "-t",
            help="Transaction log. Default: generate sample data first.",
            show_default=False,
        ),
    ] = None,
    customers: CustomersOpt = None,
    out: RunOut = None,
    as_of: AsOfOpt = None,
    repurchase_days: RepurchaseOpt = None,
    churn_days: ChurnOpt = None,
    clv_days: ClvOpt = None,
    trials: Annotated[
        int | None,
        typer.Option(
            "--trials",
            min=1,
            help="Optuna trials for each tuned model (clustering, repurchase, churn). [20]",
            show_default=False,
        ),
    ] = None,
    schemes: SchemesOpt = None,
    column: ColumnOpt = None,
    sheet: SheetOpt = None,
    config: ConfigOpt = None,
    study_storage: StudyStorageOpt = None,
    study_name: StudyNameOpt = None,
    sample_customers: Annotated[
        int, typer.Option(help="Customers to generate when no --transactions is given.")
    ] = 25_000,
    tracking_uri: TrackingOpt = None,
    project: ProjectOpt = None,
    experiment: ExperimentOpt = DEFAULT_EXPERIMENT,
    track: TrackOpt = True,
) -> None:
    """The main job: clean, build features, fit the segmentation schemes and the churn and
    repurchase models, log and register them in MLflow, and score every customer.

    Writes to --out: scores.csv (per customer: repurchase and churn probability and the model
    behind each, segment id, name and strategy per scheme), report.html (segments, models vs
    baselines, drivers), the clean tables and audit, features.parquet, segments.parquet and
    profiles.csv. Without --transactions it generates sample data first (`make run`).
    """
    from core.progress import console
    from custseg.cli import display
    from training import pipeline

    cfg = configs(
        config,
        repurchase_days=repurchase_days,
        churn_days=churn_days,
        clv_days=clv_days,
        trials=trials,
        study_storage=study_storage,
        study_name=study_name,
    )
    where = tracking(track, experiment, tracking_uri)
    cfg, scheme_file = pipeline.check(cfg, schemes, where)  # typos fail before any work
    inputs = pipeline.Inputs(transactions, customers, column_map(column), sheet)
    if transactions is None:
        inputs, cfg = _sample_inputs(sample_customers, cfg)
    r = pipeline.run(
        inputs,
        out,
        as_of=parse_date(as_of, "--as-of"),
        configs=cfg,
        schemes=scheme_file,
        trials=trials,
        track=where,
    )
    display.cleaning_summary(r.features.result.audit, r.paths)
    console.print(
        f"features: {len(r.features.table):,} customers x {len(r.features.table.columns) - 1} "
        f"as of {r.snapshot['as_of']} -> {r.paths['features']}"
    )
    display.schemes(r.fitted, r.skipped_schemes)
    console.print(f"segments: {r.paths['segments']}; profiles: {r.paths['profiles']}")
    display.segmenters(r.segmenters)
    display.predictors(r.predictions, r.registered, r.value)
    display.next_best(r.next_best)
    if r.run_id:
        display.model_set(r.model_set, r.dropped)
    _print_outputs(r, experiment)


def train(
    transactions: TransactionsOpt,
    customers: CustomersOpt = None,
    features: Annotated[
        Path | None,
        typer.Option(
            "--features",
            "-f",
            help="Feature snapshot of this log (`custseg features`) to score, instead of a "
            "table built here; it sets the cutoff.",
            show_default=False,
        ),
    ] = None,
    out: TrainOut = None,
    as_of: AsOfOpt = None,
    repurchase_days: RepurchaseOpt = None,
    churn_days: ChurnOpt = None,
    clv_days: ClvOpt = None,
    trials: Annotated[
        int | None,
        typer.Option("--trials", min=1, help="Optuna trials per target. [20]", show_default=False),
    ] = None,
    column: ColumnOpt = None,
    sheet: SheetOpt = None,
    config: ConfigOpt = None,
    study_storage: StudyStorageOpt = None,
    study_name: StudyNameOpt = None,
    tracking_uri: TrackingOpt = None,
    project: ProjectOpt = None,
    experiment: ExperimentOpt = DEFAULT_EXPERIMENT,
    track: TrackOpt = True,
) -> None:
    """Train the repurchase and churn predictors alone (no segmentation): backtest windows of
    the log, LightGBM tuned by Optuna against BG/NBD and RFM baselines on the same held-out
    window, logged and registered in MLflow (a winner becomes the champion).

    Writes to --out: scores.csv (per customer: repurchase and churn probability and the model
    behind each) and report.html (models vs baselines, drivers).
    """
    from custseg.cli import display
    from training import pipeline

    cfg = configs(
        config,
        repurchase_days=repurchase_days,
        churn_days=churn_days,
        clv_days=clv_days,
        trials=trials,
        study_storage=study_storage,
        study_name=study_name,
    )
    r = pipeline.train(
        pipeline.Inputs(transactions, customers, column_map(column), sheet),
        out,
        as_of=parse_date(as_of, "--as-of"),
        snapshot=features,
        configs=cfg,
        track=tracking(track, experiment, tracking_uri),
    )
    display.predictors(r.predictions, r.registered, r.value)
    if r.run_id:
        display.model_set(r.model_set, r.dropped)
    _print_outputs(r, experiment)


def _sample_inputs(customers: int, cfg):
    """Sample data in the state folder, for `custseg run` without a log (`make run`), and the
    configs with the sample's convention: its cancellation invoices (order ids C...) refund
    earlier purchases, unless the config file sets its own `cancel_id_pattern`."""
    from dataclasses import replace

    from core.progress import stage
    from custseg.sample import CANCEL_ID_PATTERN, SampleConfig, generate, write
    from training.pipeline import Inputs

    with stage(f"sample data ({customers:,} customers)"):
        files = write(generate(SampleConfig(customers=customers)), catalog.sample_dir())
    if cfg.cleaning.cancel_id_pattern is None:
        cleaning = replace(cfg.cleaning, cancel_id_pattern=CANCEL_ID_PATTERN)
        cfg = replace(cfg, cleaning=cleaning)
    return Inputs(files["transactions"], files["customers"]), cfg


def _print_outputs(r, experiment: str) -> None:
    from core.progress import console

    console.print(f"scores: {r.paths['scores']}")
    console.print(f"report: {r.paths['report']}  (open it in a browser)")
    if r.run_id:
        own = "" if catalog.project() == catalog.PROJECT else f" --project {catalog.project()}"
        compare = f"`custseg segment compare{own}` compares the schemes, " if r.fitted else ""
        console.print(
            f"MLflow run {r.run_id} (experiment {experiment}); {compare}`custseg ui` opens the "
            "MLflow UI"
        )
