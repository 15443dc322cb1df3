"""Options shared by several commands, and turning option values into the objects the stages
take (dates, column maps, config objects)."""

from __future__ import annotations

import os
from datetime import date, datetime
from pathlib import Path
from typing import Annotated

import typer

from core import catalog
from core.errors import CustsegError

TransactionsOpt = Annotated[
    Path,
    typer.Option(
        "--transactions",
        "-t",
        help="Transaction log (CSV or Parquet): customer_id, order_date, amount, "
        "optional order_id, quantity, product, category, channel, store, region.",
        show_default=False,
    ),
]
CustomersOpt = Annotated[
    Path | None,
    typer.Option(
        "--customers",
        "-c",
        help="Customer table (CSV or Parquet): customer_id, optional signup_date, age, "
        "gender, region, industry, phone, email, is_test, tags.",
        show_default=False,
    ),
]
ColumnOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--column",
        help="Map a column name: TARGET=SOURCE (e.g. amount=金额), or TABLE.TARGET=SOURCE "
        "(e.g. customers.region=地区). Repeat for several.",
        metavar="TARGET=SOURCE",
        show_default=False,
    ),
]
SheetOpt = Annotated[
    str | None,
    typer.Option(
        "--sheet",
        help="Sheet of the Excel (.xlsx) inputs to read. Default: the first.",
        show_default=False,
    ),
]
ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="TOML file with [cleaning], [features], [prediction], [monitoring] and "
        "[baskets] tables: thresholds and per-rule policies (see README).",
        show_default=False,
    ),
]
ReferenceOpt = Annotated[
    str | None,
    typer.Option(
        "--reference-date",
        help="Orders after this date (YYYY-MM-DD) count as future-dated. Default: today.",
        metavar="YYYY-MM-DD",
        show_default=False,
    ),
]
AsOfOpt = Annotated[
    str | None,
    typer.Option(
        "--as-of",
        help="Cutoff date (YYYY-MM-DD): only data on or before it is used. "
        "Default: the last order date in the data.",
        metavar="YYYY-MM-DD",
        show_default=False,
    ),
]
EngineOpt = Annotated[
    str | None,
    typer.Option(
        "--engine",
        help="Where the feature definitions run: duckdb (embedded, the default), polars "
        "(embedded) or spark (local mode, or the cluster in CUSTSEG_SPARK_MASTER).",
    ),
]
SchemesOpt = Annotated[
    Path | None,
    typer.Option(
        "--schemes",
        help="Scheme file (TOML): which schemes to fit, their thresholds and the strategy table. "
        "Default: the built-in file (`custseg segment init FILE` writes a copy to edit).",
        show_default=False,
    ),
]
TrialsOpt = Annotated[
    int | None,
    typer.Option(
        "--trials",
        min=1,
        help="Optuna trials for each clustering scheme. Default: the scheme file's `trials` (20).",
        show_default=False,
    ),
]
TrackingOpt = Annotated[
    str | None,
    typer.Option(
        "--tracking-uri",
        help="MLflow tracking URI. Default: MLFLOW_TRACKING_URI, else a SQLite store in the "
        "state folder.",
        show_default=False,
    ),
]


def _experiment(ctx: typer.Context, param: typer.CallbackParam, value: str) -> str:
    """Not given: the project's own experiment (custseg by default), so that two projects
    sharing one MLflow store never read each other's fits (--project is parsed first)."""
    source = ctx.get_parameter_source(param.name)  # an enum of typer's own click copy
    if source is None or source.name in ("DEFAULT", "DEFAULT_MAP"):
        return catalog.project()
    return value


ExperimentOpt = Annotated[
    str,
    typer.Option(
        "--experiment",
        help="MLflow experiment to log to / read from. Default: the project's name (custseg).",
        callback=_experiment,
        show_default=False,
    ),
]
TrackOpt = Annotated[
    bool, typer.Option(help="Log to MLflow and register the models (and promote winners).")
]
DEFAULT_EXPERIMENT = catalog.EXPERIMENT


def _use_project(value: str | None) -> str | None:
    """--project sets the project for this process and the servers it starts (environment)."""
    if value is not None:
        if not catalog.PROJECT_NAME.fullmatch(value):
            raise CustsegError(f"--project {value!r}: {catalog.PROJECT_RULE}")
        os.environ[catalog.PROJECT_ENV] = value
    return value


ProjectOpt = Annotated[
    str | None,
    typer.Option(
        "--project",
        help="Project: the prefix of the registered models and the default experiment, so "
        "that two data sets in one MLflow store never mix. Default: CUSTSEG_PROJECT, else "
        "custseg.",
        callback=_use_project,
        is_eager=True,  # before --experiment, whose default it is
        show_default=False,
    ),
]


def out_option(help: str, folder: bool = True):
    """An optional `--out / -o` (a folder, or a file with folder=False); None means the
    catalog's default under the state folder, which `help` names."""
    return Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", file_okay=not folder, dir_okay=folder, help=help, show_default=False
        ),
    ]


def parse_date(value: str | None, option: str) -> date | None:
    """YYYY-MM-DD, or a CustsegError naming the option."""
    if value is None:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        raise CustsegError(f"{option} {value!r}: expected a date as YYYY-MM-DD") from None


def column_map(column: list[str] | None) -> dict:
    """--column TARGET=SOURCE options as the contract's column map."""
    from features.contract import parse_column_map

    return parse_column_map(column)


def configs(
    path: Path | None, reference_date: date | None = None, level: str | None = None, **prediction
):
    """Every stage's section of the config file, checked by the stage itself; options given on
    the command line (not None) win over the file."""
    from core.config import section
    from features.cleaning.config import CleaningConfig
    from features.definitions import FeatureConfig
    from training.baskets.config import BasketConfig
    from training.pipeline import Configs
    from training.prediction.config import PredictionConfig

    return Configs(
        cleaning=section(path, "cleaning", CleaningConfig.from_dict, reference_date=reference_date),
        features=section(path, "features", FeatureConfig.from_dict),
        prediction=section(path, "prediction", PredictionConfig.from_dict, **prediction),
        baskets=section(path, "baskets", BasketConfig.from_dict, level=level),
    )


def tracking(track: bool, experiment: str, uri: str | None):
    """Where to log (None: nothing is logged)."""
    from training.pipeline import Tracking

    return Tracking(experiment, uri) if track else None
