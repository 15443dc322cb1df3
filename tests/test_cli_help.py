"""Every command's --help reads well on an 80-column terminal: wrapped, never cut, no markup."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from custseg.cli import app


def commands(group, path: tuple[str, ...] = ()):
    yield path
    for name, sub in getattr(group, "commands", {}).items():
        yield from commands(sub, (*path, name))


@pytest.mark.parametrize("path", list(commands(typer.main.get_command(app))), ids=" ".join)
def test_help_fits_80_columns(path):
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    for line in result.output.splitlines():
        assert len(line) <= 80, line
        assert "…" not in line and "**" not in line and "\\[" not in line, line
