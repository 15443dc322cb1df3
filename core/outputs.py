"""Where a command may write: never over its inputs, never into a system folder, and never half
a set of outputs. Jobs write into a temporary folder beside `--out` and move the files in when
everything is written, so a failed or killed job leaves the previous outputs as they were."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from core.errors import CustsegError

# folders of the operating system: nobody means to write custseg's outputs there
SYSTEM = (
    "/bin",
    "/boot",
    "/dev",
    "/etc",
    "/lib",
    "/lib32",
    "/lib64",
    "/proc",
    "/run",
    "/sbin",
    "/sys",
    "/usr",
    "/var/lib",
    "/var/log",
)
PARTIAL = ".partial-"  # temporary folders: .<out name>.partial-<pid>


def check_output(
    out: Path, inputs: Iterable[Path | None], option: str = "--out", folder: bool = True
) -> Path:
    """`out` resolved, or a CustsegError when it is an input, holds an input (a folder), sits
    beside one (a file: the same folder is fine, the same file is not) or is a system folder."""
    target = Path(out).expanduser().resolve()
    if target == Path("/") or any(target.is_relative_to(s) for s in SYSTEM):
        raise CustsegError(f"{option} {out}: a system folder; choose a folder of your own")
    for given in inputs:
        if given is None or not Path(given).exists():  # a missing input is the reader's error
            continue
        source = Path(given).expanduser().resolve()
        clash = source == target or (
            source.is_relative_to(target) if folder else target.is_relative_to(source)
        )
        if clash:
            elsewhere = "another folder" if folder else "another file"
            raise CustsegError(
                f"{option} {out}: it would overwrite the input {given}; write to {elsewhere}"
            )
    above = next(p for p in (target, *target.parents) if p.exists())
    if above != target and not above.is_dir():
        raise CustsegError(f"{option} {out}: {above} is a file, not a folder")
    if target.exists() and folder != target.is_dir():
        kind = "a file" if folder else "a folder"
        raise CustsegError(f"{option} {out}: is {kind}; give a {'folder' if folder else 'file'}")
    return target


@contextmanager
def staged(out: Path) -> Iterator[Path]:
    """A temporary folder beside `out` to write into. On success every file in it moves into
    `out` (replacing older ones of the same name); on an error it is removed. Temporary folders
    of killed jobs (their process is gone) are removed on the next start."""
    out.parent.mkdir(parents=True, exist_ok=True)
    _remove_orphans(out)
    tmp = out.parent / f".{out.name}{PARTIAL}{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
        out.mkdir(exist_ok=True)
        for f in sorted(tmp.rglob("*")):
            if f.is_file():
                dest = out / f.relative_to(tmp)
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.replace(f, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def staged_file(out: Path) -> Iterator[Path]:
    """`staged` for one file: written beside `out` under a temporary name, renamed over it when
    complete."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}{PARTIAL}{os.getpid()}"
    try:
        yield tmp
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)


def moved(paths: dict[str, Path], staging: Path, out: Path) -> dict[str, Path]:
    """The paths a job wrote into `staging`, as they are after `staged` moved them into `out`."""
    return {
        k: out / p.relative_to(staging) if p.is_relative_to(staging) else p
        for k, p in paths.items()
    }


def _remove_orphans(out: Path) -> None:
    for tmp in out.parent.glob(f".{out.name}{PARTIAL}*"):
        pid = tmp.name.rsplit(PARTIAL, 1)[-1]
        if pid.isdigit() and not process_alive(int(pid)):
            shutil.rmtree(tmp, ignore_errors=True)


def process_alive(pid: int) -> bool:
    """Whether process `pid` of this machine still runs (a killed job's is gone)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


# Excel reads a CSV without a byte-order mark in the machine's code page (GBK on a Chinese
# Windows): Chinese names turn to mojibake. With the mark it reads UTF-8; pandas and pyarrow
# skip it when reading (pandas: encoding=CSV_ENCODING to be explicit).
CSV_ENCODING = "utf-8-sig"


def write_csv(frame, path: Path, **kwargs) -> Path:
    """`frame` (a pandas DataFrame) as a CSV file people open in Excel: UTF-8 with BOM."""
    frame.to_csv(path, encoding=CSV_ENCODING, **kwargs)
    return path


def csv_text(frame, **kwargs) -> str:
    """`frame` as CSV text beginning with the BOM, for files written as text (MLflow's
    log_text writes UTF-8: the mark makes Excel read it as such)."""
    return "\ufeff" + frame.to_csv(**kwargs)
