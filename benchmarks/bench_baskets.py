"""Benchmark: custseg's association rules (pairs counted in DuckDB SQL) against mlxtend's
fpgrowth + association_rules on the same baskets, and the out-of-time check of the next-best
products (hit rate / recall@3 against popularity and segment popularity).

    python benchmarks/bench_baskets.py ../shared/data/online_retail.parquet   # raw UCI file
    python benchmarks/bench_baskets.py --sample                # generated sample (25k customers)
    python benchmarks/bench_baskets.py --customers 1000000     # generated, 1M customers

mlxtend is optional and not a custseg dependency: `pip install mlxtend` (or put it on
PYTHONPATH) to compare; without it only custseg's figures are printed. Each contender runs in
its own process (wall time of its compute, peak RSS of the process); baskets are prepared once
(clean + baskets, not timed). mlxtend gets the same baskets one-hot encoded (a dense bool
frame, as its docs show), pairs only (max_len=2), the same thresholds; it is skipped with the
reason when that frame would exceed --mlxtend-max-gb.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import date
from pathlib import Path

import harness

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _cfg(args):
    from training.baskets import BasketConfig

    return BasketConfig(min_support=args.min_support, min_confidence=args.min_confidence)


def prepare(out: Path, args) -> dict:
    """Clean the log, build features, the rfm_rules segments (at the cutoff of the out-of-time
    check) and the baskets; save them for the other phases."""
    from check_real_log import CONFIG, columns_of

    from features.cleaning.config import CleaningConfig
    from features.definitions import FeatureConfig
    from features.stage import features_from_log
    from training.baskets import build_baskets
    from training.baskets.stage import scheme_segments

    cfg = _cfg(args)
    if args.log:
        log = Path(args.log)
        mapping = {"*": columns_of(log)}
        (out / "retail.toml").write_text(CONFIG)
        from core.config import section

        cleaning = section(out / "retail.toml", "cleaning", CleaningConfig.from_dict)
    else:
        from custseg.sample import CANCEL_ID_PATTERN, SampleConfig, generate, write

        files = write(generate(SampleConfig(customers=args.customers, seed=3)), out / "sample")
        log, mapping = files["transactions"], {}
        cleaning = CleaningConfig(cancel_id_pattern=CANCEL_ID_PATTERN)
    feats = features_from_log(log, None, mapping, cleaning, FeatureConfig())
    b = build_baskets(feats.result.transactions, feats.as_of, cfg.level)
    b.lines.to_parquet(out / "lines.parquet")
    import pandas as pd

    pd.DataFrame({"item": b.items, "label": b.labels}).to_parquet(out / "items.parquet")
    pd.DataFrame({"customer_id": b.customers}).to_parquet(out / "customers.parquet")
    _, at = scheme_segments(feats, "rfm_rules")
    from datetime import timedelta

    cutoff = feats.as_of - timedelta(days=cfg.horizon_days)
    at(cutoff).rename("segment").reset_index().to_parquet(out / "segments.parquet")
    (out / "meta.json").write_text(json.dumps({"as_of": str(feats.as_of)}))
    return {"baskets": b.n_baskets, "items": b.n_items, "customers": b.n_customers,
            "lines": len(b.lines), "as_of": str(feats.as_of)}  # fmt: skip


def _baskets(out: Path):
    import pandas as pd

    from training.baskets import Baskets

    items = pd.read_parquet(out / "items.parquet")
    meta = json.loads((out / "meta.json").read_text())
    return Baskets(
        pd.read_parquet(out / "lines.parquet"),
        items["item"].to_numpy(object),
        pd.read_parquet(out / "customers.parquet")["customer_id"].to_numpy(object),
        items["label"].to_numpy(object),
        "product",
        date.fromisoformat(meta["as_of"]),
    )


def custseg_rules(out: Path, args) -> dict:
    from features.engines import duckdb_connection
    from training.baskets import rules

    b = _baskets(out)
    duckdb_connection()
    t0 = time.perf_counter()
    table = rules(b, _cfg(args))
    seconds = time.perf_counter() - t0
    table.to_parquet(out / "custseg_rules.parquet")
    return {"seconds": seconds, "rules": len(table)}


def mlxtend_rules(out: Path, args) -> dict:
    try:
        from mlxtend.frequent_patterns import association_rules, fpgrowth
    except ImportError:
        return {"skipped": "mlxtend is not installed (pip install mlxtend)"}
    import numpy as np
    import pandas as pd

    b = _baskets(out)
    gb = b.n_baskets * b.n_items / 1e9
    if gb > args.mlxtend_max_gb:
        return {"skipped": f"its one-hot frame would be {gb:.1f} GB (> --mlxtend-max-gb)"}
    cfg = _cfg(args)
    t0 = time.perf_counter()
    onehot = np.zeros((b.n_baskets, b.n_items), dtype=bool)
    onehot[b.lines["basket"].to_numpy(), b.lines["item"].to_numpy()] = True
    frame = pd.DataFrame(onehot, columns=b.items)
    itemsets = fpgrowth(frame, min_support=cfg.min_support, use_colnames=True, max_len=2)
    found = association_rules(itemsets, metric="confidence", min_threshold=cfg.min_confidence)
    found = found[found["lift"] >= cfg.min_lift]
    seconds = time.perf_counter() - t0
    ours = pd.read_parquet(out / "custseg_rules.parquet")
    key = set(zip(ours["antecedent"], ours["consequent"], strict=True))
    theirs = {(next(iter(a)), next(iter(c))) for a, c in zip(found["antecedents"],
              found["consequents"], strict=True)}  # fmt: skip
    # a rule at exactly the confidence threshold (98 / 980 = 0.1) mlxtend computes from float
    # supports, just below it: those are the only difference allowed
    conf = dict(zip(zip(ours["antecedent"], ours["consequent"], strict=True), ours["confidence"],
                    strict=True))  # fmt: skip
    edge = {k for k in key - theirs if abs(conf[k] - cfg.min_confidence) < 1e-12}
    same = theirs <= key and key - theirs == edge
    return {"seconds": seconds, "rules": len(found), "same_rules": same, "at_threshold": len(edge)}


def next_best_check(out: Path, args) -> dict:
    import pandas as pd

    from training.baskets import validate

    b = _baskets(out)
    seg = pd.read_parquet(out / "segments.parquet").set_index("customer_id")["segment"]
    t0 = time.perf_counter()
    check = validate(b, _cfg(args), lambda cutoff: seg)
    return {"seconds": time.perf_counter() - t0, **check}


PHASES = {"custseg": custseg_rules, "mlxtend": mlxtend_rules, "next_best": next_best_check}


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("log", nargs="?", help="a raw log (Online Retail's columns, or custseg's)")
    ap.add_argument("--sample", action="store_true", help="generated sample, 25k customers")
    ap.add_argument("--customers", type=int, default=25_000, help="customers to generate")
    ap.add_argument("--min-support", type=float, default=0.005)
    ap.add_argument("--min-confidence", type=float, default=0.1)
    ap.add_argument("--mlxtend-max-gb", type=float, default=4.0)
    ap.add_argument("--phase", help=argparse.SUPPRESS)
    ap.add_argument("--dir", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.phase:
        out = Path(args.dir)
        run = prepare if args.phase == "prepare" else PHASES[args.phase]
        print(json.dumps({**run(out, args), "peak_rss_mb": harness.peak_rss_mb()}))
        return
    if not args.log and not args.sample and "--customers" not in sys.argv:
        ap.error("give a LOG, --sample or --customers N")
    extra = [str(Path(args.log).resolve())] if args.log else ["--customers", str(args.customers)]
    extra += ["--min-support", str(args.min_support), "--min-confidence", str(args.min_confidence)]
    extra += ["--mlxtend-max-gb", str(args.mlxtend_max_gb)]
    r = harness.run_phases(__file__, ["prepare", *PHASES], extra, rounds=1, setup=1)
    p = r["prepare"]
    print(f"{args.log or f'generated, {args.customers:,} customers'} as of {p['as_of']}: "
          f"{p['baskets']:,} baskets, {p['items']:,} products, {p['lines']:,} basket lines, "
          f"{p['customers']:,} customers")  # fmt: skip
    print(f"rules X -> Y, min support {args.min_support}, min confidence {args.min_confidence}")
    print(f"  {'':28} {'wall s':>8} {'peak RSS MB':>12} {'rules':>8}")
    for name, label in (("custseg", "custseg (DuckDB SQL)"), ("mlxtend", "mlxtend fpgrowth")):
        m = r[name]
        if "skipped" in m:
            print(f"  {label:28} skipped: {m['skipped']}")
            continue
        same = "" if "same_rules" not in m else f"  same rules as custseg: {m['same_rules']}"
        if m.get("at_threshold"):
            same += f" (but {m['at_threshold']} at exactly the confidence threshold)"
        print(f"  {label:28} {m['seconds']:8.2f} {m['peak_rss_mb']:12,.0f} {m['rules']:8,}{same}")
    v = r["next_best"]
    print(f"next-best products, out of time: history to {v['cutoff']}, {v['customers']:,} "
          f"customers buying new products in the {v['horizon_days']} days after "
          f"({v['seconds']:.1f} s, peak RSS {v['peak_rss_mb']:,.0f} MB)")  # fmt: skip
    print(f"  {'':28} {'hit rate@3':>10} {'recall@3':>10} {'precision@3':>12}")
    for name, m in v["methods"].items():
        print(f"  {name:28} {m['hit_rate']:10.1%} {m['recall']:10.4f} {m['precision']:12.4f}")


if __name__ == "__main__":
    main()
