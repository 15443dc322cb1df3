"""Benchmark: the BentoML service over loopback, bounded in requests and time.

    python benchmarks/bench_serving.py              # trains a small model set first (~1 min)
    python benchmarks/bench_serving.py --home DIR   # use the champions of an existing state folder

Prints p50/p99 latency of single-customer /predict and /score_transactions, requests/s at
concurrency 1, 8 and 32 (keep-alive connections, one per client thread), customers/s with
batches of 500, and beside them the in-process call of the same model set. Plain BentoML
services (`plain_service.py`, no custseg code) run beside custseg's, all started at once with
the same number of worker processes: two over one of the champions' LightGBM boosters,
plain-default (no thread settings, as the BentoML and LightGBM docs write it) and plain-tuned
(one thread per request, as custseg's), and plain-empty, the same request and answer with no
model: the framework's ceiling on this machine. Each /predict load runs on all in turn, the
order rotating each round (--rounds), so a slow spell of a shared machine hits them alike;
figures are medians over the rounds, and custseg/plain ratios medians of the same-round ratios.
CUSTSEG_WORKERS=1 measures one worker process for all (default 2, one per core).

    python benchmarks/bench_serving.py --before /path/to/older/checkout

adds custseg from another checkout of the project (e.g. `git worktree add
/tmp/before <commit>`), on the same champions in the same rounds: before/after in one run.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import socket
import statistics
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
    first_error: list[str] = []  # what the first refused request was told
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
            answer = r.read()
            with lock:
                latencies.append(time.perf_counter() - t)
                errors[0] += r.status != 200
                if r.status != 200 and not first_error:
                    first_error.append(f"{r.status} {answer[:160].decode('utf-8', 'replace')}")

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
        "first_error": first_error[0] if first_error else "",
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--home", type=Path, help="state folder with registered champions")
    ap.add_argument("--requests", type=int, default=1000, help="per load (default 1000)")
    ap.add_argument("--seconds", type=float, default=10, help="per load at most (default 10)")
    ap.add_argument("--rounds", type=int, default=2, help="interleaved rounds (default 2)")
    ap.add_argument(
        "--before", type=Path, help="another checkout of custseg, served beside this one"
    )
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
                    g[[c for c in SENT if c in g]].to_json(orient="records")
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
        f"custseg serving benchmark (loopback, {len(models.versions)} champions; custseg, "
        f"plain-default, plain-tuned and plain-empty side by side, {workers} worker processes "
        f"each; medians of {args.rounds} interleaved rounds)"
    )
    p50, p99 = (np.percentile(times, q) * 1000 for q in (50, 99))
    print(
        f"  in-process ModelSet.predict, 1 customer: p50 {p50:.1f} ms, p99 {p99:.1f} ms; "
        f"500-row batches: {inproc_batch:,.0f} customers/s"
    )
    n = min(args.requests, len(one) * 10)
    single = {c: (one * 10)[:n] for c in (1, 8, 32)}
    loads = [("/predict", c, single[c]) for c in (1, 8, 32)]
    loads += [("batch", c, batches * 30) for c in (2, 4, 8)]
    services = SERVICES + (("custseg-before",) if args.before else ())
    ports = {name: free_port() for name in services}
    model = anchor_model(models, features, Path(tmp.name))
    runs: dict[tuple, list[dict]] = {}
    with contextlib.ExitStack() as stack:
        for name, port in ports.items():
            cmd, service_env = service_command(name, port, env, model, workers, args.before)
            ready = f"http://127.0.0.1:{port}/readyz"
            log = Path(tmp.name) / f"{name}.log"
            cwd = args.before if name == "custseg-before" else None  # its own `serving`
            stack.enter_context(running(cmd, service_env, ready, log, cwd=cwd))
        for port in ports.values():
            load(port, "/predict", one[:50], 1, 10)  # warm up
        for r in range(args.rounds):
            k = r % len(services)
            order = services[k:] + services[:k]
            for path, c, bodies in loads:
                for name in order:
                    result = load(ports[name], "/predict", bodies, c, args.seconds)
                    runs.setdefault((name, path, c), []).append(result)
        for c in (1, 8, 32):
            bodies = (raw * 10)[: min(args.requests, len(raw) * 10)]
            result = load(ports["custseg"], "/score_transactions", bodies, c, args.seconds)
            runs["custseg", "/score_transactions", c] = [result]
    for (name, path, c), rounds in runs.items():
        if name != "custseg":
            continue
        r = _median(rounds)
        if path == "batch":
            line = f"  /predict, batches of 500, c={c}: {r['rps'] * 500:7,.0f} customers/s"
        else:
            line = f"  {path:20} 1 customer, c={c:2}: {r['rps']:6,.0f} req/s"
        line += f", p50 {r['p50']:5.1f} ms, p99 {r['p99']:6.1f} ms, errors {r['errors']}"
        told = {"custseg": r["first_error"]}  # what a refused request was told, per service
        for anchor in services[1:]:
            if (anchor, path, c) not in runs:
                continue
            a = _median(runs[anchor, path, c])
            told[anchor] = a["first_error"]
            unit = (
                f"{a['rps'] * 500:,.0f} customers/s"
                if path == "batch"
                else f"{a['rps']:,.0f} req/s"
            )
            ratios = [
                x["rps"] / y["rps"] for x, y in zip(rounds, runs[anchor, path, c], strict=True)
            ]
            line += (
                f" | {anchor} {unit}, p99 {a['p99']:.1f} ms, errors {a['errors']}: "
                f"custseg/{anchor.removeprefix('custseg-')} {statistics.median(ratios):.2f}x"
            )
        print(line)
        for n, text in told.items():
            if text:  # why the errors: a refusal by design (409) reads differently from a bug
                print(f"      {n} refused with: {text}")


# plain-empty: the same framework, request and answer with no model at all: the ceiling any
# BentoML service reaches on this machine (a ratio to it is how much of the framework is left)
SERVICES = ("custseg", "plain-default", "plain-tuned", "plain-empty")
# a transaction's fields /score_transactions is sent, where the log has them (a real log may
# lack a channel or category)
SENT = ("customer_id", "order_date", "amount", "is_refund", "product", "category", "channel")


def _median(rounds: list[dict]) -> dict:
    """Median of each figure over the rounds; errors add up."""
    out = {k: statistics.median(r[k] for r in rounds) for k in ("rps", "p50", "p99")}
    told = next((r["first_error"] for r in rounds if r["first_error"]), "")
    return {**out, "errors": sum(r["errors"] for r in rounds), "first_error": told}


def service_command(
    name: str, port: int, env: dict, model: Path, workers: str, before: Path | None = None
):
    """(the command for `running`, its environment): custseg's `serve` (custseg-before: from
    the checkout `before`), or the plain service with the library defaults (plain-default), one
    thread per request (plain-tuned) or no model (plain-empty)."""
    if name == "custseg":
        return ["serve", "--port", str(port)], env
    if name == "custseg-before":
        return ["serve", "--port", str(port)], {**env, "PYTHONPATH": str(before.resolve())}
    service_env = {**env, "PLAIN_MODEL": str(model), "PLAIN_WORKERS": workers}
    for var in ("PLAIN_THREADS", "OMP_NUM_THREADS"):
        service_env.pop(var, None)
    if name == "plain-tuned":
        service_env.update(PLAIN_THREADS="1", OMP_NUM_THREADS="1")
    here = str(Path(__file__).resolve().parent)
    service = "plain_service:Empty" if name == "plain-empty" else "plain_service:Plain"
    cmd = ["-m", "bentoml", "serve", service, "--port", str(port)]
    return [*cmd, "--working-dir", here], service_env


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


if __name__ == "__main__":
    main()
