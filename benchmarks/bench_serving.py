"""Benchmark: the BentoML service over loopback, bounded in requests and time.

    python benchmarks/bench_serving.py              # trains a small model set first (~1 min)
    python benchmarks/bench_serving.py --home DIR   # use the champions of an existing state folder

Prints p50/p99 latency of single-customer /predict and /score_transactions, requests/s at
concurrency 1, 8 and 32 (keep-alive connections, one per client thread), customers/s with
batches of 500, and beside them the in-process call of the same model set. The same /predict
loads then run against a plain BentoML service over one of the champions' LightGBM boosters
(`plain_service.py`, no custseg code), started the same way after custseg's has stopped: the
custseg/plain ratio means the same on any machine. CUSTSEG_WORKERS=1 measures one worker
process for both (default 2, one per core).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

from custseg.process import running


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load(port: int, path: str, bodies: list[bytes], clients: int, seconds: float) -> dict:
    """`clients` threads, each on its own keep-alive connection, post bodies round-robin until
    every body was sent once or `seconds` passed."""
    latencies, errors, lock = [], [0], threading.Lock()
    queue = list(bodies)

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            with lock:
                if not queue:
                    return
                body = queue.pop()
            t = time.perf_counter()
            conn.request("POST", path, body, {"content-type": "application/json"})
            r = conn.getresponse()
            r.read()
            with lock:
                latencies.append(time.perf_counter() - t)
                errors[0] += r.status != 200

    t0 = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    wall = time.perf_counter() - t0
    ms = np.array(latencies) * 1000
    return {
        "n": len(ms),
        "rps": len(ms) / wall,
        "p50": np.percentile(ms, 50),
        "p99": np.percentile(ms, 99),
        "errors": errors[0],
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--home", type=Path, help="state folder with registered champions")
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--seconds", type=float, default=20)
    args = ap.parse_args()
    tmp = tempfile.TemporaryDirectory(prefix="custseg-bench-serve-")
    home = (args.home or Path(tmp.name)).resolve()
    env = {
        **os.environ,
        "CUSTSEG_HOME": str(home),
        "BENTOML_HOME": str(Path(tmp.name) / "bento"),
        "BENTOML_DO_NOT_TRACK": "True",
    }
    env.pop("MLFLOW_TRACKING_URI", None)
    if not args.home:
        subprocess.run(
            [sys.executable, "-m", "custseg", "run", "--sample-customers", "3000", "--trials", "3"],
            env=env,
            check=True,
            capture_output=True,
        )
    out = home / "output"
    features = pd.read_parquet(out / "features.parquet")
    tx = pd.read_parquet(out / "transactions.parquet")

    os.environ.update({k: v for k, v in env.items() if k.startswith(("CUSTSEG", "BENTOML"))})
    from serving.models import load_champions

    models = load_champions()
    cols = ["customer_id", *models.columns]
    rows = json.loads(features[cols].head(1000).to_json(orient="records"))
    one = [json.dumps({"customers": [r]}).encode() for r in rows]
    batches = [
        json.dumps({"customers": (rows * 2)[i : i + 500]}).encode() for i in range(0, 1000, 500)
    ]
    ids = features["customer_id"].head(200).tolist()
    t = tx[tx["customer_id"].isin(ids)].copy()
    t["amount"] = t["amount"].abs()
    t["order_date"] = t["order_date"].dt.strftime("%Y-%m-%d")
    as_of = str(features.attrs.get("as_of") or tx["order_date"].max().date())
    raw = [
        json.dumps(
            {
                "as_of": as_of,
                "transactions": json.loads(
                    g[
                        ["customer_id", "order_date", "amount", "is_refund", "category", "channel"]
                    ].to_json(orient="records")
                ),
            }
        ).encode()
        for _, g in t.groupby("customer_id")
    ]

    frame = features[cols].head(1)
    frame.attrs = {}  # as a request's frame: no snapshot metadata to copy along
    for _ in range(20):
        models.predict(frame)
    times = []
    for _ in range(300):
        s = time.perf_counter()
        models.predict(frame)
        times.append(time.perf_counter() - s)
    big = features[cols].head(500)
    big.attrs = {}
    s = time.perf_counter()
    for _ in range(5):
        models.predict(big)
    inproc_batch = 5 * 500 / (time.perf_counter() - s)

    workers = os.environ.get("CUSTSEG_WORKERS", "2")
    print(
        f"custseg serving benchmark (loopback, {len(models.versions)} champions, {workers} "
        f"workers; anchor: a plain BentoML service over one LightGBM model, {workers} workers)"
    )
    p50, p99 = (np.percentile(times, q) * 1000 for q in (50, 99))
    print(
        f"  in-process ModelSet.predict, 1 customer: p50 {p50:.1f} ms, p99 {p99:.1f} ms; "
        f"500-row batches: {inproc_batch:,.0f} customers/s"
    )
    n = min(args.requests, len(one) * 10)
    single = {c: (one * 10)[:n] for c in (1, 8, 32)}
    port = free_port()
    ready = f"http://127.0.0.1:{port}/readyz"
    ours = {}
    with running(["serve", "--port", str(port)], env, ready, Path(tmp.name) / "server.log"):
        load(port, "/predict", one[:50], 1, 10)  # warm up
        for c, bodies in single.items():
            ours["/predict", c] = load(port, "/predict", bodies, c, args.seconds)
        for c in (1, 8, 32):
            bodies = (raw * 10)[: min(args.requests, len(raw) * 10)]
            ours["/score_transactions", c] = load(port, "/score_transactions", bodies, c, 20)
        for c in (2, 4, 8):
            ours["batch", c] = load(port, "/predict", batches * 30, c, args.seconds)
    plain = measure_plain(models, features, cols, env, Path(tmp.name), single, batches, args)
    for (path, c), r in ours.items():
        anchor = plain.get((path, c))
        if path == "batch":
            line = (
                f"  /predict, batches of 500, concurrency {c}: {r['rps'] * 500:8,.0f} customers/s"
            )
        else:
            line = f"  {path:20} 1 customer, concurrency {c:2}: {r['rps']:6.0f} req/s"
        line += f", p50 {r['p50']:6.1f} ms, p99 {r['p99']:6.1f} ms, errors {r['errors']}"
        if anchor:
            unit = (
                f"{anchor['rps'] * 500:,.0f} customers/s"
                if path == "batch"
                else (f"{anchor['rps']:.0f} req/s")
            )
            line += f" | plain {unit}, p99 {anchor['p99']:5.1f} ms"
            line += f" | custseg/plain {r['rps'] / anchor['rps']:.2f}x"
        print(line)


def anchor_model(models, features: pd.DataFrame, folder: Path) -> Path:
    """A champion's LightGBM booster as a model file; when no champion is a LightGBM (a
    baseline won), a LightGBM of the usual size fitted on the same features."""
    import lightgbm as lgb

    path = folder / "plain-model.txt"
    for predictor in models.predictors.values():
        if getattr(predictor, "booster", None) is not None:
            predictor.booster.save_model(str(path))
            return path
    numeric = features.select_dtypes("number").drop(columns=["recency_days"], errors="ignore")
    label = (features["recency_days"] < 60).astype(int)
    data = lgb.Dataset(numeric, label, params={"verbosity": -1})
    lgb.train({"objective": "binary", "verbosity": -1}, data, 150).save_model(str(path))
    return path


def measure_plain(models, features, cols, env, folder, single, batches, args) -> dict:
    """The same /predict loads against the plain service."""
    model = anchor_model(models, features, folder)
    port = free_port()
    plain_env = {**env, "PLAIN_MODEL": str(model), "PLAIN_WORKERS": env.get("CUSTSEG_WORKERS", "2")}
    here = str(Path(__file__).resolve().parent)
    cmd = ["-m", "bentoml", "serve", "plain_service:Plain", "--port", str(port)]
    cmd += ["--working-dir", here]
    out = {}
    with running(cmd, plain_env, f"http://127.0.0.1:{port}/readyz", folder / "plain.log"):
        load(port, "/predict", single[1][:50], 1, 10)
        for c, bodies in single.items():
            out["/predict", c] = load(port, "/predict", bodies, c, args.seconds)
        for c in (2, 4, 8):
            out["batch", c] = load(port, "/predict", batches * 30, c, args.seconds)
    return out


if __name__ == "__main__":
    main()
