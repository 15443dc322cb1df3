"""Benchmark: generate N customers (~10 orders each) and clean them; wall time and peak RSS.

    python benchmarks/bench_cleaning.py                 # 1M customers / ~10M transactions
    python benchmarks/bench_cleaning.py --customers 100000

Each phase runs in its own process so its peak memory is its own. Prints a table; no asserts.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from harness import peak_rss_mb, run_phases


def phase_generate(out: Path, customers: int, fmt: str, orders_scale: float) -> dict:
    from custseg.sample import SampleConfig, generate, write

    t0 = time.perf_counter()
    data = generate(SampleConfig(customers=customers, seed=1, orders_scale=orders_scale))
    t1 = time.perf_counter()
    write(data, out, fmt)
    t2 = time.perf_counter()
    return {
        "generate_s": t1 - t0,
        "write_s": t2 - t1,
        "transactions": len(data["transactions"]),
        "customer_rows": len(data["customers"]),
        "peak_rss_mb": peak_rss_mb(),
    }


def phase_clean(out: Path, fmt: str) -> dict:
    from features.cleaning import CleaningConfig, clean
    from features.contract import CUSTOMERS, TRANSACTIONS, read_table

    t0 = time.perf_counter()
    tx = read_table(out / f"transactions.{fmt}", TRANSACTIONS)
    cu = read_table(out / f"customers.{fmt}", CUSTOMERS)
    t1 = time.perf_counter()
    result = clean(tx, cu, CleaningConfig())
    t2 = time.perf_counter()
    result.write(out / "clean")
    t3 = time.perf_counter()
    t = result.audit["tables"]
    return {
        "read_s": t1 - t0,
        "clean_s": t2 - t1,
        "write_s": t3 - t2,
        "peak_rss_mb": peak_rss_mb(),
        "kept_transactions": t["transactions"]["kept_rows"],
        "log_rows": len(result.changes),
        "balanced": all(x["balanced"] for x in t.values()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--format", default="csv", choices=["csv", "parquet"])
    ap.add_argument("--orders-scale", type=float, default=1.25, help="1.25: ~10 orders a customer")
    ap.add_argument("--phase", choices=["generate", "clean"], help=argparse.SUPPRESS)
    ap.add_argument("--dir", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.phase:
        fn = phase_generate if args.phase == "generate" else phase_clean
        kwargs = (
            {"customers": args.customers, "orders_scale": args.orders_scale}
            if args.phase == "generate"
            else {}
        )
        print(json.dumps(fn(Path(args.dir), fmt=args.format, **kwargs)))
        return
    extra = [
        "--customers",
        str(args.customers),
        "--orders-scale",
        str(args.orders_scale),
        "--format",
        args.format,
    ]
    results = run_phases(__file__, ["generate", "clean"], extra)
    g, c = results["generate"], results["clean"]
    print(
        f"custseg cleaning benchmark: {args.customers:,} customers, {g['transactions']:,} "
        f"transactions, {args.format}"
    )
    print(
        f"  generate sample   {g['generate_s']:7.1f} s   write {g['write_s']:5.1f} s   "
        f"peak RSS {g['peak_rss_mb']:7,.0f} MB"
    )
    print(f"  read + type       {c['read_s']:7.1f} s")
    print(
        f"  clean             {c['clean_s']:7.1f} s   "
        f"({g['transactions'] / max(c['clean_s'], 1e-9):,.0f} transactions/s)"
    )
    print(f"  write outputs     {c['write_s']:7.1f} s   peak RSS {c['peak_rss_mb']:7,.0f} MB")
    print(
        f"  kept {c['kept_transactions']:,} transactions; {c['log_rows']:,} row-log entries; "
        f"balanced: {c['balanced']}"
    )


if __name__ == "__main__":
    main()
