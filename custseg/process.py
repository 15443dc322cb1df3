"""A custseg server command (`serve`, `ui`) run in the background until it answers: what the
end-to-end tests and the serving benchmark need, and anyone scripting custseg."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def running(
    args: list[str],
    env: dict,
    ready_url: str,
    log: Path,
    timeout: float = 120,
    cwd: Path | None = None,
) -> Iterator[subprocess.Popen]:
    """`custseg ARGS` in its own process group, yielded once `ready_url` answers 200, stopped
    (SIGTERM to the group) on exit. Output goes to `log`: a pipe nobody reads fills up and
    blocks the server. RuntimeError with the log's tail if it exits or is not ready in time.
    ARGS starting with "-m" run another module instead (e.g. `-m bentoml serve BENTO`)."""
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, *(args if args[0] == "-m" else ["-m", "custseg", *args])],
            env=env,
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + timeout
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"custseg {args[0]} exited:\n{log.read_text()[-3000:]}")
                try:
                    if urllib.request.urlopen(ready_url, timeout=2).status == 200:
                        break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"custseg {args[0]} not ready in {timeout:.0f} s")
                time.sleep(0.5)
            yield proc
        finally:
            with contextlib.suppress(ProcessLookupError):  # it may have exited on its own
                os.killpg(proc.pid, 15)
            proc.wait(30)
