"""The live service under load while a fit promotes a new model set: no errors, every answer
from one complete set (the old one, then the new one), memory flat. CI-sized: 8 clients for
the length of one scheme fit plus a few seconds (about a minute)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from custseg.process import running
from tests.conftest import free_port, run_job, serve_env
from tests.test_serving_http import call

CLIENTS = 8


def _rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants (the service's workers)."""
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        try:
            status = Path(f"/proc/{p}/status").read_text()
            total += int(next(x for x in status.splitlines() if x.startswith("VmRSS")).split()[1])
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, StopIteration):
            continue
    return total / 1024


@pytest.mark.slow
def test_answers_come_from_one_set_while_a_fit_promotes(sample_dir, tmp_path):
    import mlflow

    from core.registry import served

    home, out = tmp_path / "home", tmp_path / "out"
    data = ["-t", str(sample_dir / "transactions.csv"), "-c", str(sample_dir / "customers.csv")]
    job = ["run", *data, "--out", str(out), "--trials", "2"]
    proc = run_job(home, *job, "--as-of", "2026-02-28")
    assert proc.returncode == 0, proc.stderr[-3000:]
    client = mlflow.MlflowClient(f"sqlite:///{home / 'mlflow.db'}")
    before = served(client)

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = serve_env(home, CUSTSEG_WATCH_SECONDS="1")
    with running(["serve", "--port", str(port)], env, base + "/readyz", home / "s.log") as srv:
        status, meta = call(base, "/metadata", key=None)
        cols = [f["name"] for f in meta["features"]]
        table = pd.read_parquet(out / "features.parquet")[["customer_id", *cols]]
        body = {"customers": json.loads(table.head(3).to_json(orient="records"))}
        stop, answers, errors = threading.Event(), [], []

        def load() -> None:
            while not stop.is_set():
                status, answer = call(base, "/predict", body, key=None)
                if status == 200:
                    answers.append(json.dumps(answer["versions"], sort_keys=True))
                else:
                    errors.append((status, str(answer)[:200]))

        threads = [threading.Thread(target=load) for _ in range(CLIENTS)]
        for t in threads:
            t.start()
        time.sleep(8)  # warm: every worker has answered
        rss_before = _rss_mb(srv.pid)
        # a fit promotes a new set midway (the clustering refitted with other trials,
        # registered, published)
        fit = ["segment", "fit", "-f", str(out / "features.parquet"), "--trials", "3", "--promote"]
        promoted = run_job(home, *fit, "-o", str(tmp_path / "segments"))
        after = served(client)
        time.sleep(6)  # the watch (1 s) swaps the new set in everywhere
        rss_after = _rss_mb(srv.pid)
        stop.set()
        for t in threads:
            t.join()

    assert promoted.returncode == 0, promoted.stderr[-3000:]
    assert after != before
    assert errors == []
    seen = set(answers)
    sets = {json.dumps(before, sort_keys=True), json.dumps(after, sort_keys=True)}
    assert seen <= sets, seen - sets  # never a mix of two sets
    assert json.dumps(after, sort_keys=True) in seen and len(answers) > 200
    assert rss_after <= rss_before * 1.10, (rss_before, rss_after)
