"""`custseg team up / down / status`: team mode's PostgreSQL and MLflow tracking server
(custseg.team starts and stops them; this module parses and prints)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    help="Team mode: a local PostgreSQL and an MLflow tracking server on it, which several "
    "jobs, projects and Optuna workers share, in place of the embedded SQLite store.",
    no_args_is_help=True,
)

DirOpt = Annotated[
    Path | None,
    typer.Option(
        "--dir",
        file_okay=False,
        help="Folder of the servers' data, logs and ports. Default: team/ in the state folder.",
        show_default=False,
    ),
]


@app.command("up")
def up(
    folder: DirOpt = None,
    artifacts: Annotated[
        Path | None,
        typer.Option(
            "--artifacts",
            file_okay=False,
            help="Artifact root of the MLflow server (models, reports). Default: artifacts/ in "
            "--dir.",
            show_default=False,
        ),
    ] = None,
    pg_port: Annotated[
        int | None,
        typer.Option(
            "--pg-port",
            min=1,
            max=65535,
            help="PostgreSQL's port. Default: the last one if free, else a free one.",
            show_default=False,
        ),
    ] = None,
    mlflow_port: Annotated[
        int | None,
        typer.Option(
            "--mlflow-port",
            min=1,
            max=65535,
            help="The MLflow server's port. Default: the last one if free, else a free one.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Start PostgreSQL (the first time: a new cluster with the databases mlflow and optuna)
    and an MLflow tracking server on it, both on 127.0.0.1, and print the URIs to use. What
    runs already is left running. Needs Debian's postgresql package (make install has it)."""
    from custseg import team

    _print(team.up(folder, artifacts, pg_port, mlflow_port))


@app.command("down")
def down(folder: DirOpt = None) -> None:
    """Stop the MLflow server and PostgreSQL; their data stays for the next `team up`."""
    from custseg import team

    s = team.down(folder)
    where = folder or team.default_dir()
    typer.echo(f"team mode in {where}: " + ("stopped" if s.team else "never started"))


@app.command("status")
def status(folder: DirOpt = None) -> None:
    """What runs, with the URIs to use. Exit code 0 when both servers run, else 1."""
    from custseg import team

    s = team.status(folder)
    if s.up:
        _print(s.team)
        return
    where = folder or team.default_dir()
    if s.team is None:
        typer.echo(f"team mode in {where}: never started (`custseg team up`)")
    else:
        state = {True: "running", False: "stopped"}
        typer.echo(
            f"team mode in {where}: PostgreSQL {state[s.postgres]}, MLflow server "
            f"{state[s.mlflow]} (`custseg team up` starts what is stopped)"
        )
    raise typer.Exit(1)


def _print(t) -> None:
    typer.echo(
        f"PostgreSQL {t.pg_version} on 127.0.0.1:{t.pg_port} (data: {t.dir}/postgres)\n"
        f"MLflow tracking server on {t.tracking_uri} (store: PostgreSQL database mlflow; "
        f"artifacts: {t.artifacts})\n"
        "use them (`custseg team down` stops both, the data stays):\n"
        f"  export MLFLOW_TRACKING_URI={t.tracking_uri}\n"
        f"  custseg run --project NAME --study-storage '{t.study_storage}'\n"
        "  custseg serve --project NAME   (monitor, segment compare, ...: --project NAME too)\n"
        f"the MLflow UI: {t.tracking_uri}"
    )
