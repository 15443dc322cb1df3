"""Progress display for long stages: one line per stage with a spinner and elapsed time."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console

console = Console(stderr=True)


@contextmanager
def stage(name: str) -> Iterator[None]:
    """`with stage("cleaning"): ...` shows a spinner while it runs, then `✓ cleaning  3.2 s`."""
    start = time.perf_counter()
    with console.status(f"[bold]{name}[/]…", spinner="dots"):
        yield
    console.print(f"[green]✓[/] {name:<28} {time.perf_counter() - start:6.1f} s")


@contextmanager
def bar(name: str, total: int) -> Iterator[Callable[[], None]]:
    """`with bar("tuning", 20) as step: ... step()` shows a progress bar with counts and ETA."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    start = time.perf_counter()
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(name, total=total)
        yield lambda: progress.advance(task)
    console.print(f"[green]✓[/] {name:<28} {time.perf_counter() - start:6.1f} s")


def warn(message: str) -> None:
    """A warning line on stderr: the user should know, the work goes on."""
    console.print(f"[yellow]warning:[/] {message}")


def note(message: str) -> None:
    """A note line on stderr (something skipped or chosen for the user)."""
    console.print(f"[yellow]note:[/] {message}")
