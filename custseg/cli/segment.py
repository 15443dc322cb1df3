"""`custseg segment ...`: fit the schemes side by side, compare their runs, edit the scheme file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from core import catalog
from core.errors import CustsegError
from custseg.cli.options import (
    DEFAULT_EXPERIMENT,
    ExperimentOpt,
    ProjectOpt,
    SchemesOpt,
    TrackingOpt,
    TrialsOpt,
    out_option,
)

SegmentsOut = out_option(
    "Folder for segments.parquet and profiles.csv. Default: segments/ in the state folder."
)
app = typer.Typer(
    help="Segmentation schemes: fit them side by side, compare their runs, edit the scheme file.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)


@app.command("fit")
def fit(
    features: Annotated[
        Path,
        typer.Option(
            "--features", "-f", help="Feature snapshot from `custseg features`.", show_default=False
        ),
    ],
    schemes: SchemesOpt = None,
    trials: TrialsOpt = None,
    out: SegmentsOut = None,
    tracking_uri: TrackingOpt = None,
    project: ProjectOpt = None,
    experiment: ExperimentOpt = DEFAULT_EXPERIMENT,
    promote: Annotated[
        bool,
        typer.Option(help="Give the new segmenters of served schemes the registry alias champion."),
    ] = True,
    track: Annotated[bool, typer.Option(help="Log the fits to MLflow and register them.")] = True,
) -> None:
    """Fit every scheme of the scheme file on a feature snapshot, side by side.

    RFM rule thresholds, RFM quintile scores, value x activity matrix, ABC (Pareto), demographic
    (when the snapshot has customer attributes) and behavioural clustering tuned by Optuna.
    Each scheme becomes an MLflow run (params, metrics, profile, plots, segmenter model),
    registered as `custseg-segmenter-<scheme>`.
    """
    from core.progress import console
    from custseg.cli import display
    from custseg.cli.options import tracking
    from training.segmentation.stage import fit_snapshot

    done = fit_snapshot(
        features,
        schemes,
        trials,
        out or catalog.segments_dir(),
        tracking(track, experiment, tracking_uri),
        promote,
    )
    display.schemes(done.fitted, done.skipped)
    console.print(f"segments: {done.paths['segments']}; profiles: {done.paths['profiles']}")
    if done.run_id:
        display.segmenters(done.logged)
        display.model_set(done.model_set, done.dropped)
        console.print(f"MLflow run {done.run_id}: `custseg segment compare` to compare")


@app.command("compare")
def compare(
    experiment: ExperimentOpt = DEFAULT_EXPERIMENT,
    tracking_uri: TrackingOpt = None,
    project: ProjectOpt = None,
    all_runs: Annotated[
        bool, typer.Option("--all", help="Every scheme run, not only the latest fit.")
    ] = False,
    limit: Annotated[int, typer.Option(min=1, help="At most this many runs with --all.")] = 50,
) -> None:
    """Schemes of the latest fit side by side: sizes, revenue concentration, separation in
    a common RFM space, own silhouette (clustering) and bootstrap stability."""
    import mlflow
    from rich.console import Console
    from rich.table import Table

    from core import paths
    from custseg.cli.display import cell
    from training.segmentation.tracking import compare

    mlflow.set_tracking_uri(tracking_uri or paths.tracking_uri())
    table = compare(experiment, all_runs, limit)
    if table.empty:
        raise CustsegError(
            f"no segmentation runs in experiment {experiment!r} at {mlflow.get_tracking_uri()}; "
            "run `custseg segment fit` or `custseg run` first"
        )
    info = ["as of", "run", "fit", "started"]
    title = f"segmentation schemes, experiment {experiment}"
    if not all_runs:
        first = table.iloc[0]
        title += f": latest fit (run {first['fit']}, as of {first['as of']}, {first['started']})"
        table = table.drop(columns=info)
    t = Table(title=title, title_justify="left", box=None)
    for col in table.columns:
        t.add_column(col, justify="left" if table[col].dtype == object else "right")
    shares = {"largest", "smallest", "top rev"}
    for row in table.to_dict("records"):
        t.add_row(*(cell(v, k in shares) for k, v in row.items()))
    # the table is the command's output (stdout); a pipe or a file gets it whole, not cut at 80
    out = Console()
    out = out if out.is_terminal else Console(width=200)
    out.print(t)
    out.print(
        "largest/smallest: customer share of the largest/smallest segment; top rev: revenue "
        "share of the top segment; rev HHI: revenue concentration over segments; RFM silh: "
        "silhouette in one log-scaled recency/frequency/monetary space (comparable across "
        "schemes); own silh: in the clustering's own space; stability: mean adjusted Rand "
        "index between the fit and bootstrap refits (1 = refits move nobody)."
    )


@app.command("init")
def init(
    path: Annotated[Path, typer.Argument(help="Where to write the scheme file.")],
    force: Annotated[bool, typer.Option(help="Overwrite an existing file.")] = False,
) -> None:
    """Write a copy of the built-in scheme file to edit (thresholds, schemes, strategy table)."""
    from training.segmentation.spec import default_path

    if path.exists() and not force:
        raise CustsegError(f"{path} exists; pass --force to overwrite it")
    try:
        path.write_text(default_path().read_text("utf-8"), "utf-8")
    except OSError as exc:
        raise CustsegError(f"{path}: cannot write the scheme file ({exc.strerror})") from None
    typer.echo(f"wrote {path}; use it with --schemes {path}")
