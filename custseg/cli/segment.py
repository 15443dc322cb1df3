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
    rich_markup_mode=None,  # plain help: wraps at any width, never cuts a word
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
        typer.Option(
            help="Serve the fits of served schemes (alias champion, the served model set). "
            "Without it nothing served changes: the fits are registered and compared."
        ),
    ] = False,
    track: Annotated[bool, typer.Option(help="Log the fits to MLflow and register them.")] = True,
) -> None:
    """Fit every scheme of the scheme file on a feature snapshot, side by side: try, compare,
    then promote.

    RFM rule thresholds, RFM quintile scores, value x activity matrix, ABC (Pareto), demographic
    (when the snapshot has customer attributes) and behavioural clustering tuned by Optuna.
    Each scheme becomes an MLflow run (params, metrics, profile, plots, segmenter model),
    registered as `custseg-segmenter-<scheme>`. A scheme whose definition and data are those of
    a registered fit is reused, not refitted. Each new fit is compared with the served
    champion; `--promote` serves them.
    """
    from core.progress import console
    from custseg.cli import display, fits
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
        fits.fit_summary(done, _again(features, schemes, trials, project, experiment))
        display.model_set(done.model_set, done.dropped)
        console.print(f"MLflow run {done.run_id} ({done.run_name}): `custseg segment compare`")


def _again(features, schemes, trials, project, experiment) -> str:
    """The same `segment fit` command (what decides reuse), for the promotion hint."""
    words = ["custseg segment fit -f", str(features)]
    for option, value in (("--schemes", schemes), ("--trials", trials), ("--project", project)):
        if value is not None:
            words += [option, str(value)]
    if experiment != catalog.project():  # not the project's own experiment
        words += ["--experiment", experiment]
    return " ".join(words)


@app.command("compare")
def compare(
    experiment: ExperimentOpt = DEFAULT_EXPERIMENT,
    tracking_uri: TrackingOpt = None,
    project: ProjectOpt = None,
    all_runs: Annotated[
        bool, typer.Option("--all", help="Every fit's scheme runs, not only the latest fit's.")
    ] = False,
    scheme: Annotated[
        str | None, typer.Option("--scheme", help="This scheme's runs only.", show_default=False)
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many runs with --all.")] = 50,
) -> None:
    """Schemes of the latest fit side by side: sizes, revenue concentration, separation in
    a common RFM space, own silhouette (clustering) and bootstrap stability; each measure
    marked with its better side (↑ higher, ↓ lower)."""
    import mlflow

    from core import paths
    from custseg.cli import fits
    from training.segmentation.history import compare

    mlflow.set_tracking_uri(tracking_uri or paths.tracking_uri())
    table = compare(experiment, all_runs, limit, scheme)
    if table.empty:
        which = f"runs of scheme {scheme!r}" if scheme else "segmentation runs"
        raise CustsegError(
            f"no {which} in experiment {experiment!r} at {mlflow.get_tracking_uri()}; "
            "run `custseg segment fit` or `custseg run` first"
        )
    from training.campaigns.effects import business_response

    response = business_response()
    if response:  # measured by `campaign evaluate`: segments that responded / measured
        table["business response"] = table["scheme"].map(response)
    fits.compare(table, f"experiment {experiment}" + (", newest fit first" if all_runs else ""))


@app.command("diff")
def diff(
    runs: Annotated[
        list[str] | None,
        typer.Argument(
            help="Two fits: run ids of `segment fit` (or `run`) runs, or their first "
            "characters (`segment compare --all` shows them).",
            show_default=False,
        ),
    ] = None,
    last: Annotated[
        int | None,
        typer.Option(
            "--last", min=2, max=2, help="The two newest fits (--last 2).", show_default=False
        ),
    ] = None,
    html: Annotated[
        Path | None,
        typer.Option(
            "--html", help="Also write the diff as a self-contained HTML page.", show_default=False
        ),
    ] = None,
    experiment: ExperimentOpt = DEFAULT_EXPERIMENT,
    tracking_uri: TrackingOpt = None,
    project: ProjectOpt = None,
) -> None:
    """What changed between two fits, and is it better: per scheme the scheme-file keys that
    changed (old -> new), every quality measure with its better side and the fit that wins
    it, segment sizes side by side and where customers moved."""
    import mlflow

    from core import paths
    from core.progress import console
    from custseg.cli import fits
    from training.segmentation.diff import diff_fits, write_html

    if (last is None) == (len(runs or []) != 2):
        raise CustsegError("give two run ids (RUN_A RUN_B) or --last 2")
    mlflow.set_tracking_uri(tracking_uri or paths.tracking_uri())
    a, b = runs if runs else (None, None)
    found = diff_fits(experiment, a, b, last)
    fits.diff(found)
    if html:
        console.print(f"wrote {write_html(found, html)}")


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


@app.command("export-rules")
def export_rules(
    scheme: Annotated[str, typer.Argument(help="The scheme (a tree or rules scheme).")],
    out: Annotated[
        Path,
        typer.Option("--out", "-o", help="The scheme file to write (TOML).", show_default=False),
    ],
    version: Annotated[
        str | None,
        typer.Option(help="This registered version, not the served one.", show_default=False),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option(help="The exported scheme's name. Default: SCHEME_rules.", show_default=False),
    ] = None,
    force: Annotated[bool, typer.Option(help="Overwrite an existing file.")] = False,
    tracking_uri: TrackingOpt = None,
    project: ProjectOpt = None,
) -> None:
    """Write a fitted tree (or rules) scheme as an ordinary `rules` scheme to edit: the served
    fit of SCHEME from the registry, its leaves as segments in order (first match wins, the
    last leaf the default), with the strategy table entries they use. `custseg segment fit
    --schemes FILE` fits it as a plain rule scheme: the same segments until you edit it."""
    import mlflow

    from core import paths
    from training.segmentation.export import champion, rules_toml

    if out.exists() and not force:
        raise CustsegError(f"{out} exists; pass --force to overwrite it")
    mlflow.set_tracking_uri(tracking_uri or paths.tracking_uri())
    model = champion(scheme, version)
    label = f"version {version}" if version else "the served fit"
    header = (
        f"Rules exported by `custseg segment export-rules {scheme}` from {label} of scheme "
        f"{scheme} ({model.kind}, features as of {model.snapshot.get('as_of')}).\n"
        "Segments are tried in order; the first whose conditions all hold wins, else `default`.\n"
        "A condition is FEATURE = { min = x } (>=), { max = x } (<=), { above = x } (>), "
        "{ below = x } (<);\nmissing = true: a missing value satisfies the feature's bounds. "
        f"Fit it: custseg segment fit -f FEATURES --schemes {out}"
    )
    text = rules_toml(
        name or f"{scheme}_rules",
        model.assigner,
        model.strategies,
        f"{scheme}: learned rules exported for editing",
        header,
    )
    try:
        out.write_text(text, "utf-8")
    except OSError as exc:
        raise CustsegError(f"{out}: cannot write the scheme file ({exc.strerror})") from None
    count = len(model.assigner.rules) + 1
    typer.echo(f"wrote {out} ({count} segments); fit it with --schemes {out}")
