"""The main job on a transaction log alone (no customer table), a few hundred customers with
string ids, and two worker processes adding trials to one Optuna study in a shared database."""

from __future__ import annotations

import os
import subprocess
import sys

import pandas as pd
import pytest


@pytest.mark.slow
def test_two_processes_join_one_study_on_a_transaction_log_alone(tmp_path):
    import optuna

    from custseg.sample import SampleConfig, generate, write

    files = write(generate(SampleConfig(customers=400, seed=11)), tmp_path / "data")
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    env = {**os.environ, "CUSTSEG_HOME": str(tmp_path / "home")}
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "custseg",
                "run",
                "--transactions",
                str(files["transactions"]),
                "--trials",
                "3",
                "--no-track",
                "--study-storage",
                storage,
                "--study-name",
                "shared",
                "--out",
                str(tmp_path / f"out{i}"),
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    for p in procs:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err[-3000:]
        assert "Traceback" not in err
    names = {s.study_name for s in optuna.get_all_study_summaries(storage)}
    assert len(names) == 2 and all(n.startswith("shared-") for n in names)  # one per target
    for name in names:
        study = optuna.load_study(study_name=name, storage=storage)
        assert len(study.trials) == 6, name  # 3 from each worker
        proposals = {tuple(sorted(t.params.items())) for t in study.trials}
        assert len(proposals) == 6, name  # the workers do not propose the same trials

    scores = pd.read_csv(tmp_path / "out0" / "scores.csv", dtype={"customer_id": str})
    assert scores["customer_id"].str.startswith("C").all()  # string ids kept as they were
    assert 300 < len(scores) <= 420  # without a customer table duplicate ids are not merged
    assert "segment_demographic" not in scores  # no customer table: no demographic scheme
    assert scores["repurchase_probability"].between(0, 1).all()


@pytest.mark.slow
def test_run_says_why_when_data_cannot_support_a_model(tmp_path, capsys):
    """A log without repeat purchases, scored as of a date after the data ends: the job still
    segments, says why no model could learn repurchase, and scores it by BG/NBD (no labels):
    nobody ever bought twice, so nobody is expected to."""
    from custseg.sample import SampleConfig, generate
    from tests.conftest import run_cli

    tx = generate(SampleConfig(customers=400, seed=12))["transactions"]
    first = tx.drop_duplicates("customer_id")  # one order per customer
    path = tmp_path / "first_orders.csv"
    first.to_csv(path, index=False)
    code, _, err = run_cli(
        [
            "run",
            "-t",
            str(path),
            "--no-track",
            "--trials",
            "2",
            "--as-of",
            "2026-09-30",
            "--out",
            str(tmp_path / "out"),
        ],
        capsys,
    )
    assert code == 0, err[-2000:]
    text = " ".join(err.split())  # the console wraps long lines
    assert "the data ends on" in text and "backtest windows end on" in text
    assert "every label False" in text  # repurchase: nobody bought again
    assert "scored by BG/NBD, which needs no labels" in text
    scores = pd.read_csv(tmp_path / "out" / "scores.csv")
    assert (scores["repurchase_model"] == "bg_nbd (not registered)").all()
    assert scores["repurchase_probability"].between(0, 0.01).all()
    assert "segment_rfm_rules" in scores
