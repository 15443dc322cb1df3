"""Progress display for long stages: one line per stage with a spinner and elapsed time."""

from __future__ import annotations

import time
from collections.abc import Iterator
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
