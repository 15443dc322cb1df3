"""The `custseg` command. One module per command group; each command parses its options, calls
one stage or pipeline function with dates and config objects, and prints. Heavy libraries are
imported inside commands so `--help` is instant."""

from __future__ import annotations

import sys

import typer

from core.errors import CustsegError
from custseg.cli import baskets, campaign, data, jobs, monitor, score, segment, services

app = typer.Typer(
    name="custseg",
    help="Customer segmentation: clean raw customer data, build features, segment, predict, "
    "serve and monitor. Start with `custseg run` (sample data, all defaults).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: wraps at any width, never cuts a word
)
app.command()(data.sample)
app.command()(data.clean)
app.command()(data.features)
app.add_typer(segment.app, name="segment")
app.command()(jobs.run)
app.command()(jobs.train)
app.command()(score.score)
app.command()(baskets.basket)
app.command()(services.serve)
app.command()(services.ui)
app.command()(monitor.monitor)
app.add_typer(campaign.app, name="campaign")


def main() -> None:
    try:
        app()
    except CustsegError as exc:
        typer.echo(f"custseg: error: {exc}", err=True)
        sys.exit(2)
    except OSError as exc:  # a full disk, a folder without permission: the machine's, not ours
        where = f"{exc.filename}: " if exc.filename else ""
        typer.echo(f"custseg: error: {where}{exc.strerror or exc}", err=True)
        sys.exit(2)
