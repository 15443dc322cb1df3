"""Benchmark: 10x on one machine (issue 24). The whole batch path at 1M and 10M customers.

    python benchmarks/bench_scale.py                                  # 1M and 10M customers
    python benchmarks/bench_scale.py --customers 100000 --work /tmp/s  # a quick look

Generates the raw log block by block (`custseg.sample.blocks`: 1M customers / ~13M order lines
a block, Parquet parts; not timed, kept in --work for the next run: the 1M log is the first
block of the 10M one), then runs each stage in a fresh process and prints its wall time, peak
RSS and rows in / out, then the 10M / 1M ratios:

  clean     `clean_parquet`: the cleaning rules part by part (DuckDB splits the raw log by
            customer hash, spilling under its memory limit), Parquet in, Parquet out
  features  `build_features_by_part` on DuckDB: the clean parts hold whole customers, so each
            part's feature table is built on its own (categories ranked over the whole log
            first) and written as a snapshot part -> features/
  score     segment assignment and churn / repurchase scores with the registered champions,
            in chunks (`serving.batch.score_parquet` on features/) -> scores/ (Parquet parts)

The champions are fitted once, before any timing, by `custseg run` on a 20k-customer sample of
the same generator (transactions only, like the large log) into a tracking store in --work.
DuckDB gets CUSTSEG_DUCKDB_MEMORY_LIMIT (--memory-limit) and a spill folder in --work.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

from harness import peak_rss_mb

AS_OF = date(2026, 6, 30)
HERE = Path(__file__).resolve()
STAGES = ("clean", "features", "score")
FIT_CUSTOMERS = 20_000
EXTRA = ("parts", "recleaned", "columns", "build_s", "scoring_s")  # printed after a stage's figures


def _log_dir(work: Path) -> Path:
    return work / "log"


def _raw(work: Path, customers: int) -> Path:
    return work / f"raw-{customers}"


def _out(work: Path, customers: int) -> Path:
    return work / f"run-{customers}"


def _tracking(work: Path) -> str:
    return f"sqlite:///{work / 'champions' / 'mlflow.db'}"


def _cleaning():
    from custseg.sample import CANCEL_ID_PATTERN
    from features.cleaning import CleaningConfig

    return CleaningConfig(reference_date=AS_OF, cancel_id_pattern=CANCEL_ID_PATTERN)


# ---- phases: each runs in its own process and returns its figures --------------------------


def phase_generate(work: Path, customers: int, block_size: int) -> dict:
    from custseg.sample import SampleConfig
    from custseg.sample.blocks import write_blocks

    def say(b, n):
        print(f"  generating block {b + 1} of {n}", file=sys.stderr, flush=True)

    t0 = time.perf_counter()
    m = write_blocks(
        _log_dir(work), customers, SampleConfig(seed=1, orders_scale=1.25), block_size, say
    )
    raw = _raw(work, customers)
    raw.mkdir(parents=True, exist_ok=True)
    for b in sorted(m["blocks"], key=int):  # this size's log: links to its first blocks
        name = f"part-{int(b):05d}.parquet"
        link = raw / name
        if not link.exists():
            link.symlink_to(m["transactions_dir"] / name)
    return {"generate_s": time.perf_counter() - t0, "rows": m["transactions"]}


def phase_clean(work: Path, customers: int, rows_per_part: int) -> dict:
    from features.cleaning import clean_parquet

    t0 = time.perf_counter()
    r = clean_parquet(
        _raw(work, customers),
        _out(work, customers) / "clean",
        _cleaning(),
        rows_per_part=rows_per_part,
    )
    t = r.audit["tables"]["transactions"]
    return {
        "seconds": time.perf_counter() - t0,
        "rows_in": t["input_rows"],
        "rows_out": t["kept_rows"],
        "balanced": t["balanced"],
        "parts": r.parts,
        "recleaned": r.recleaned,
    }


def phase_features(work: Path, customers: int) -> dict:
    import pyarrow.parquet as pq

    from features.build import build_features_by_part

    out = _out(work, customers)
    src = out / "clean" / "transactions.parquet"
    rows_in = sum(pq.ParquetFile(p).metadata.num_rows for p in src.glob("*.parquet"))
    t0 = time.perf_counter()
    r = build_features_by_part(src, out / "features", AS_OF)
    return {
        "seconds": time.perf_counter() - t0,
        "rows_in": rows_in,
        "rows_out": r["rows"],
        "parts": r["parts"],
        "columns": len(pq.read_schema(next((out / "features").glob("*.parquet"))).names) - 1,
    }


def phase_fit(work: Path) -> dict:
    """Champions for the score stage: `custseg run` on a small log of the same generator."""
    from custseg.sample import SampleConfig, generate

    fit = work / "champions"
    if (fit / "done.json").exists():
        return json.loads((fit / "done.json").read_text())
    fit.mkdir(parents=True, exist_ok=True)
    data = generate(SampleConfig(customers=FIT_CUSTOMERS, seed=99, orders_scale=1.25))
    data["transactions"].to_parquet(fit / "transactions.parquet", index=False)
    (fit / "custseg.toml").write_text('[cleaning]\ncancel_id_pattern = "^C"\n')
    cmd = [
        sys.executable,
        "-m",
        "custseg",
        "run",
        "--transactions",
        str(fit / "transactions.parquet"),
        "--config",
        str(fit / "custseg.toml"),
        "--as-of",
        str(AS_OF),
        "--trials",
        "5",
        "--out",
        str(fit / "output"),
        "--tracking-uri",
        _tracking(work),
    ]
    t0 = time.perf_counter()
    env = {**os.environ, "CUSTSEG_HOME": str(fit / "home")}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"custseg run failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    done = {"seconds": time.perf_counter() - t0, "customers": FIT_CUSTOMERS}
    (fit / "done.json").write_text(json.dumps(done))
    return done


def phase_score(work: Path, customers: int) -> dict:
    import pyarrow.parquet as pq

    from serving.batch import score_parquet

    out = _out(work, customers)
    t0 = time.perf_counter()
    r = score_parquet(out / "features", out / "scores", tracking_uri=_tracking(work))
    return {
        "seconds": time.perf_counter() - t0,
        "scoring_s": r["scoring_seconds"],
        "rows_in": sum(pq.ParquetFile(p).metadata.num_rows for p in (out / "features").glob("*")),
        "rows_out": r["customers"],
        "parts": r["parts"],
    }


# ---- the driver ---------------------------------------------------------------------------


def _run(args: argparse.Namespace, phase: str, customers: int | None = None) -> dict:
    cmd = [sys.executable, str(HERE), "--phase", phase, "--work", str(args.work)]
    cmd += ["--block-size", str(args.block_size), "--rows-per-part", str(args.rows_per_part)]
    if customers:
        cmd += ["--customers", str(customers)]
    env = {
        **os.environ,
        "CUSTSEG_DUCKDB_MEMORY_LIMIT": args.memory_limit,
        "CUSTSEG_DUCKDB_TEMP_DIRECTORY": str(args.work / "duckdb-tmp"),
    }
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode:
        return {"failed": True, "wall_s": wall, "error": f"exit {proc.returncode}"}
    return {**json.loads(proc.stdout.strip().splitlines()[-1]), "wall_s": wall}


def _summary(rounds: list[dict]) -> dict:
    """A stage's rounds as one: the median wall time, the largest peak RSS."""
    if any(r.get("failed") for r in rounds):
        return next(r for r in rounds if r.get("failed"))
    walls = sorted(r["wall_s"] for r in rounds)
    mid = len(walls) // 2
    median = walls[mid] if len(walls) % 2 else (walls[mid - 1] + walls[mid]) / 2
    return {
        **rounds[0],
        "wall_s": median,
        "peak_rss_mb": max(r["peak_rss_mb"] for r in rounds),
        "walls": walls,
    }


def _fmt_rows(r: dict) -> str:
    if r.get("failed"):
        return f"FAILED ({r['error']})"
    a, b = r.get("rows_in"), r.get("rows_out")
    return f"{a:,} -> {b:,}" if a is not None and b is not None else ""


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--customers", type=int, nargs="+", default=[1_000_000, 10_000_000])
    ap.add_argument("--work", type=Path, default=Path("bench-scale-work"))
    ap.add_argument("--block-size", type=int, default=1_000_000)
    ap.add_argument("--rows-per-part", type=int, default=4_000_000)
    ap.add_argument("--memory-limit", default="2GB", help="DuckDB's, per stage (default 2GB)")
    ap.add_argument(
        "--rounds", type=int, default=1, help="runs of each stage (median time, largest peak)"
    )
    ap.add_argument("--stages", nargs="+", default=list(STAGES), choices=STAGES)
    ap.add_argument("--phase", help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.work = args.work.resolve()
    if args.phase:
        n = args.customers[0]
        if args.phase == "generate":
            res = phase_generate(args.work, n, args.block_size)
        elif args.phase == "clean":
            res = phase_clean(args.work, n, args.rows_per_part)
        elif args.phase == "fit":
            res = phase_fit(args.work)
        else:
            res = {"features": phase_features, "score": phase_score}[args.phase](args.work, n)
        print(json.dumps({**res, "peak_rss_mb": peak_rss_mb()}, default=str))
        return

    args.work.mkdir(parents=True, exist_ok=True)
    stages = [s for s in STAGES if s in args.stages]
    if "score" in stages:
        try:
            import serving.batch  # noqa: F401
        except ImportError:
            print("(no serving.batch.score_parquet in this tree: the score stage is skipped)")
            stages.remove("score")
        else:
            fit = _run(args, "fit")
            print(
                f"champions: custseg run on {FIT_CUSTOMERS:,} customers "
                f"({fit.get('seconds', 0):.0f} s, not timed below)",
                flush=True,
            )
    for n in args.customers:
        g = _run(args, "generate", n)
        if g.get("failed"):
            sys.exit(f"generating {n:,} customers failed")
        print(
            f"{n:,} customers: {g['rows']:,} raw order lines "
            f"(generated or reused in {g['generate_s']:.0f} s, not timed)",
            flush=True,
        )
    runs: dict[int, dict[str, list[dict]]] = {n: {} for n in args.customers}
    for round_no in range(1, args.rounds + 1):  # sizes interleaved: a busy spell hits both
        for n in args.customers:
            print(f"round {round_no}, {n:,} customers", flush=True)
            for stage in stages:
                r = _run(args, stage, n)
                runs[n].setdefault(stage, []).append(r)
                peak = r.get("peak_rss_mb", float("nan"))
                print(
                    f"  {stage:9} {r['wall_s']:8.1f} s  peak RSS {peak:8,.0f} MB  {_fmt_rows(r)}"
                    f"  {json.dumps({k: v for k, v in r.items() if k in EXTRA})}",
                    flush=True,
                )
                if r.get("failed"):
                    break
    results = {n: {s: _summary(rs) for s, rs in by.items()} for n, by in runs.items()}

    print()
    print(
        f"custseg scale benchmark, {date.today()}, as of {AS_OF}; DuckDB memory_limit "
        f"{args.memory_limit}; {os.cpu_count()} cores; {args.rounds} round(s): median time, "
        "largest peak RSS"
    )
    sizes = args.customers
    head = " | ".join(f"{n / 1e6:g}M: time | {n / 1e6:g}M: peak RSS" for n in sizes)
    ratio = " | time ratio | memory ratio" if len(sizes) == 2 else ""
    print(f"| stage | rows in -> out ({sizes[-1] / 1e6:g}M) | {head}{ratio} |")
    print("|---" * (2 + 2 * len(sizes) + (2 if ratio else 0)) + "|")
    for stage in stages:
        rs = [
            results[n].get(stage, {"failed": True, "error": "not run", "wall_s": 0}) for n in sizes
        ]
        cells = []
        for r in rs:
            if r.get("failed"):
                cells += [f"failed after {r['wall_s']:.0f} s", ""]
            else:
                cells += [f"{r['wall_s']:,.1f} s", f"{r['peak_rss_mb'] / 1024:,.2f} GB"]
        row = f"| {stage} | {_fmt_rows(rs[-1])} | " + " | ".join(cells)
        if ratio:
            a, b = rs
            if a.get("failed") or b.get("failed"):
                row += " | | "
            else:
                row += (
                    f" | {b['wall_s'] / a['wall_s']:.1f}x"
                    f" | {b['peak_rss_mb'] / a['peak_rss_mb']:.1f}x"
                )
        print(row + " |")


if __name__ == "__main__":
    main()
