"""Outputs never overwrite inputs, never land in system folders, and appear as a whole: a job
that fails or is killed leaves the previous outputs as they were."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pandas as pd
import pytest

from core.errors import CustsegError
from core.outputs import PARTIAL, check_output, staged
from tests.conftest import run_cli


@pytest.fixture
def raw(sample_dir, tmp_path):
    """A folder holding a copy of the raw sample log as Parquet."""
    d = tmp_path / "d"
    d.mkdir()
    pd.read_csv(sample_dir / "transactions.csv", dtype=str).to_parquet(d / "transactions.parquet")
    return d


def test_clean_into_the_folder_of_its_input_is_refused(raw, capsys):
    before = (raw / "transactions.parquet").read_bytes()
    code, _, err = run_cli(
        ["clean", "-t", str(raw / "transactions.parquet"), "-o", str(raw)], capsys
    )
    assert code == 2 and "would overwrite the input" in err and "Traceback" not in err
    assert (raw / "transactions.parquet").read_bytes() == before
    assert sorted(p.name for p in raw.iterdir()) == ["transactions.parquet"]


def test_features_over_its_input_is_refused(raw, capsys):
    path = raw / "transactions.parquet"
    before = path.read_bytes()
    code, _, err = run_cli(["features", "-t", str(path), "-o", str(path)], capsys)
    assert code == 2 and "would overwrite the input" in err
    assert path.read_bytes() == before


@pytest.mark.parametrize("out", ["/", "/proc/nope", "/etc/custseg", "/usr/local/x"])
def test_system_folders_are_refused(raw, capsys, out):
    code, _, err = run_cli(["clean", "-t", str(raw / "transactions.parquet"), "-o", out], capsys)
    assert code == 2 and "a system folder" in err and "Traceback" not in err


def test_an_impossible_folder_is_one_line(raw, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    out = blocker / "sub"  # a folder inside a file: the OS refuses
    code, _, err = run_cli(
        ["clean", "-t", str(raw / "transactions.parquet"), "-o", str(out)], capsys
    )
    assert code == 2 and "Traceback" not in err, err
    assert f"{blocker} is a file, not a folder" in err.splitlines()[-1]


def test_a_file_given_for_a_folder_is_refused(tmp_path):
    f = tmp_path / "f"
    f.write_text("x")
    with pytest.raises(CustsegError, match="is a file"):
        check_output(f, [])
    # a file beside its input in the same folder is fine; the input itself is not
    assert check_output(tmp_path / "g.parquet", [f], folder=False) == tmp_path / "g.parquet"
    with pytest.raises(CustsegError, match="overwrite the input"):
        check_output(f, [f], folder=False)


def test_a_failing_job_leaves_the_previous_outputs_untouched(tmp_path):
    out = tmp_path / "out"
    with staged(out) as tmp:
        (tmp / "scores.csv").write_text("old")
        (tmp / "report.html").write_text("old")
    with pytest.raises(RuntimeError), staged(out) as tmp:
        (tmp / "scores.csv").write_text("new")
        (tmp / "features.parquet").write_text("new")
        raise RuntimeError("the job failed half way")
    assert sorted(p.name for p in out.iterdir()) == ["report.html", "scores.csv"]
    assert (out / "scores.csv").read_text() == "old"
    assert not list(tmp_path.glob(f".out{PARTIAL}*"))


def test_the_temporary_folder_of_a_killed_job_is_removed_on_the_next_start(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a pid that no longer runs
    out = tmp_path / "out"
    orphan = tmp_path / f".out{PARTIAL}{dead.pid}"
    orphan.mkdir()
    (orphan / "scores.csv").write_text("half")
    live = tmp_path / f".out{PARTIAL}{os.getppid()}"  # a running process: not ours to remove
    live.mkdir()
    with staged(out) as tmp:
        (tmp / "x").write_text("1")
    assert not orphan.exists() and live.exists() and (out / "x").exists()
    shutil.rmtree(live)


def test_an_os_error_while_writing_is_one_line(tmp_path, capsys, monkeypatch):
    import custseg.sample

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device", str(tmp_path / "s" / "customers.csv"))

    monkeypatch.setattr(custseg.sample, "write", full_disk)
    code, _, err = run_cli(["sample", "-n", "20", "-o", str(tmp_path / "s")], capsys)
    assert code == 2 and "Traceback" not in err
    assert err.splitlines()[-1] == (
        f"custseg: error: {tmp_path / 's' / 'customers.csv'}: No space left on device"
    )
