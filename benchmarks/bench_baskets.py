"""Benchmark: custseg's association rules (pairs counted in SQL, on DuckDB and on Spark: the
same SQL text) against mlxtend's fpgrowth + association_rules on the same baskets, and the
out-of-time check of the next-best products (hit rate / recall@3 against popularity and
segment popularity).

    python benchmarks/bench_baskets.py ../shared/data/online_retail.parquet   # raw UCI file
    python benchmarks/bench_baskets.py --sample                # generated sample (25k customers)
    python benchmarks/bench_baskets.py --customers 1000000     # generated, 1M customers

mlxtend is optional and not a custseg dependency: `pip install mlxtend` (or put it on
PYTHONPATH) to compare; without it only custseg's figures are printed. Each contender runs in
its own process (wall time of its compute, peak RSS of the process; for Spark the Python
driver's plus the JVM's, and the session start apart); baskets are prepared once (clean +
baskets, not timed). mlxtend gets the same baskets one-hot encoded (a dense bool frame, as its
docs show), pairs only (max_len=2), the same thresholds, under an address-space limit of
--mlxtend-max-gb and a time limit of --mlxtend-max-minutes: past either it is reported as not
finished within them. The generated log has no product pairs (its multi-product orders are
random products of one category), so --plant N (default 5 there) plants N pairs in its
baskets: X added to 1% of baskets, Y to 60% of the baskets with X and, as a habit, to the next
basket of 60% of the customers whose basket with X lacked it; the output says so.
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
    if not args.log and args.customers > CHUNK:
        return prepare_large(out, args)
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
    pairs = plant(b, args.plant if args.plant is not None else (0 if args.log else 5))
    _save(out, b)
    _, at = scheme_segments(feats, "rfm_rules")
    from datetime import timedelta

    cutoff = feats.as_of - timedelta(days=cfg.horizon_days)
    at(cutoff).rename("segment").reset_index().to_parquet(out / "segments.parquet")
    (out / "meta.json").write_text(json.dumps({"as_of": str(feats.as_of), "planted": pairs}))
    return {"baskets": b.n_baskets, "items": b.n_items, "customers": b.n_customers,
            "lines": len(b.lines), "as_of": str(feats.as_of), "planted": pairs}  # fmt: skip


CHUNK = 250_000  # generated customers per chunk above which prepare_large takes over


def prepare_large(out: Path, args) -> dict:
    """A generated log above CHUNK customers without the feature pipeline (cleaning, features
    and the rfm_rules fit of 1M customers peaked above 11 GB here): generated in chunks of
    CHUNK customers (ids prefixed by the chunk), each cleaned by its ground truth (the lines
    the generator dirtied or refunded dropped, the true customer id and date kept), then the
    baskets. No segments: the out-of-time check has no segment-popularity baseline here."""
    import pandas as pd

    from custseg.sample import SampleConfig, generate
    from training.baskets import build_baskets

    parts = []
    for i, start in enumerate(range(0, args.customers, CHUNK)):
        n = min(CHUNK, args.customers - start)
        data = generate(SampleConfig(customers=n, seed=3 + i))
        tx, truth = data["transactions"], data["truth_transactions"]
        clean = (truth["dirt"] == "").to_numpy()
        parts.append(pd.DataFrame({
            "order_id": f"{i}-" + tx["order_id"][clean].astype(str),
            "customer_id": f"{i}-" + truth["true_customer_id"][clean].astype(str),
            "order_date": truth["order_date"][clean],
            "amount": tx["amount"][clean], "quantity": tx["quantity"][clean],
            "product": tx["product"][clean], "category": tx["category"][clean],
        }))  # fmt: skip
        del data, tx, truth
    log = pd.concat(parts, ignore_index=True)
    del parts
    as_of = log["order_date"].max().date()
    b = build_baskets(log, as_of, _cfg(args).level)
    del log
    pairs = plant(b, args.plant if args.plant is not None else 5)
    _save(out, b)
    (out / "meta.json").write_text(json.dumps({"as_of": str(as_of), "planted": pairs}))
    return {"baskets": b.n_baskets, "items": b.n_items, "customers": b.n_customers,
            "lines": len(b.lines), "as_of": str(as_of), "planted": pairs,
            "note": "cleaned by the generator's truth, no segments"}  # fmt: skip


def _save(out: Path, b) -> None:
    import pandas as pd

    b.lines.to_parquet(out / "lines.parquet")
    pd.DataFrame({"item": b.items, "label": b.labels}).to_parquet(out / "items.parquet")
    pd.DataFrame({"customer_id": b.customers}).to_parquet(out / "customers.parquet")


def plant(b, n: int, seed: int = 7, share: float = 0.01, conf: float = 0.6) -> list[list[str]]:
    """Plant n pairs X -> Y in the baskets (in place): X is added to a random `share` of the
    baskets without it, then Y to a `conf` share of all baskets with X (on the basket's
    customer and day) and, of the baskets with X still without Y, Y to the customer's next
    basket with probability `conf` (a habit: what the out-of-time check can find). Returns the
    pairs' names."""
    import numpy as np
    import pandas as pd

    if n <= 0:
        return []
    rng = np.random.default_rng(seed)
    lines = b.lines
    first = lines.drop_duplicates("basket").set_index("basket").sort_index()
    customer, day = first["customer"].to_numpy(), first["day"].to_numpy()
    order = np.lexsort((np.arange(len(first)), day, customer))  # each customer's baskets in time
    nxt = np.full(len(first), -1, np.int64)
    same = customer[order[1:]] == customer[order[:-1]]
    nxt[order[:-1][same]] = order[1:][same]
    codes = rng.choice(b.n_items, 2 * n, replace=False)
    added = []
    for x, y in codes.reshape(n, 2):
        has_x = np.zeros(b.n_baskets, bool)
        has_x[lines.loc[lines["item"] == x, "basket"].to_numpy()] = True
        more_x = ~has_x & (rng.random(b.n_baskets) < share)
        has_y = np.zeros(b.n_baskets, bool)
        has_y[lines.loc[lines["item"] == y, "basket"].to_numpy()] = True
        with_x = has_x | more_x
        more_y = with_x & ~has_y & (rng.random(b.n_baskets) < conf)
        later = with_x & ~has_y & ~more_y & (nxt >= 0) & (rng.random(b.n_baskets) < conf)
        habit = np.zeros(b.n_baskets, bool)
        habit[nxt[later]] = True
        more_y |= habit & ~has_y
        for item, mask in ((x, more_x), (y, more_y)):
            rows = first.iloc[np.flatnonzero(mask)]
            added.append(pd.DataFrame({"basket": rows.index.to_numpy(np.int64),
                                       "item": np.int32(item), "customer": rows["customer"],
                                       "day": rows["day"]}))  # fmt: skip
    b.lines = (
        pd.concat([lines, *added], ignore_index=True)
        .astype(lines.dtypes.to_dict())
        .sort_values(["basket", "item"], ignore_index=True)
    )
    return [[str(b.items[x]), str(b.items[y])] for x, y in codes.reshape(n, 2)]


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
    return {"seconds": seconds, "rules": len(table), **_planted_found(out, table)}


def custseg_itemsets(out: Path, args) -> dict:
    """The same rules plus X1, X2 -> Y (max_antecedent = 2: triples over the frequent pairs)."""
    from dataclasses import replace

    from features.engines import duckdb_connection
    from training.baskets import rules

    b = _baskets(out)
    duckdb_connection()
    t0 = time.perf_counter()
    table = rules(b, replace(_cfg(args), max_antecedent=2))
    seconds = time.perf_counter() - t0
    two = int(table["antecedent_2"].notna().sum())
    return {"seconds": seconds, "rules": len(table), "itemset_rules": two}


def _planted_found(out: Path, table) -> dict:
    planted = json.loads((out / "meta.json").read_text()).get("planted", [])
    if not planted:
        return {}
    found = set(zip(table["antecedent"].astype(str), table["consequent"].astype(str),
                    strict=True))  # fmt: skip
    return {"planted_found": sum((x, y) in found for x, y in planted)}


def spark_rules(out: Path, args) -> dict:
    """The same rules on Spark (local mode; driver memory --spark-driver-gb): session start
    apart, then the rules, checked against DuckDB's: counts exact, measures to 1e-9."""
    import os

    import numpy as np
    import pandas as pd

    os.environ["PYSPARK_SUBMIT_ARGS"] = f"--driver-memory {args.spark_driver_gb}g pyspark-shell"
    try:
        from features.engines import spark_session

        t0 = time.perf_counter()
        spark_session().sparkContext.setLogLevel("ERROR")
    except Exception as exc:  # noqa: BLE001 - no pyspark / no Java: say why
        return {"skipped": f"no Spark here ({str(exc).splitlines()[0][:200]})"}
    from training.baskets import rules

    start = time.perf_counter() - t0
    b = _baskets(out)
    t0 = time.perf_counter()
    table = rules(b, _cfg(args), engine="spark")
    seconds = time.perf_counter() - t0
    ours = pd.read_parquet(out / "custseg_rules.parquet")
    key = ["segment", "antecedent", "consequent"]
    both = ours.merge(table, on=key, how="outer", suffixes=("", "_spark"), indicator=True)
    counts = ["n_baskets", "n_antecedent", "n_consequent", "n_both"]
    same = bool((both["_merge"] == "both").all()) and all(
        (both[c] == both[f"{c}_spark"]).all() for c in counts
    ) and all(np.allclose(both[c], both[f"{c}_spark"], rtol=1e-9, atol=0)
              for c in ("support", "confidence", "lift", "conviction"))  # fmt: skip
    return {"seconds": seconds, "session_start_s": start, "rules": len(table), "same_rules": same,
            "jvm_peak_rss_mb": harness.children_peak_rss_mb()}  # fmt: skip


def mlxtend_rules(out: Path, args) -> dict:
    try:
        from mlxtend.frequent_patterns import association_rules, fpgrowth
    except ImportError:
        return {"skipped": "mlxtend is not installed (pip install mlxtend)"}
    import resource
    import signal

    import numpy as np
    import pandas as pd

    b = _baskets(out)
    cfg = _cfg(args)
    limit = int(args.mlxtend_max_gb * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    def timeout(*_):
        raise TimeoutError

    signal.signal(signal.SIGALRM, timeout)
    signal.alarm(int(args.mlxtend_max_minutes * 60))
    t0 = time.perf_counter()
    try:
        onehot = np.zeros((b.n_baskets, b.n_items), dtype=bool)
        onehot[b.lines["basket"].to_numpy(), b.lines["item"].to_numpy()] = True
        frame = pd.DataFrame(onehot, columns=b.items)
        itemsets = fpgrowth(frame, min_support=cfg.min_support, use_colnames=True, max_len=2)
        found = association_rules(itemsets, metric="confidence", min_threshold=cfg.min_confidence)
        found = found[found["lift"] >= cfg.min_lift]
    except MemoryError:
        return {"skipped": f"did not finish within {args.mlxtend_max_gb:g} GB of address space "
                f"({time.perf_counter() - t0:.0f} s in; one-hot frame "
                f"{b.n_baskets * b.n_items / 1e9:.1f} GB)"}  # fmt: skip
    except TimeoutError:
        return {"skipped": f"did not finish within {args.mlxtend_max_minutes:g} minutes"}
    signal.alarm(0)
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
    at = None
    if (out / "segments.parquet").exists():
        seg = pd.read_parquet(out / "segments.parquet").set_index("customer_id")["segment"]
        at = lambda cutoff: seg  # noqa: E731
    t0 = time.perf_counter()
    check = validate(b, _cfg(args), at)
    return {"seconds": time.perf_counter() - t0, **check}


PHASES = {
    "custseg": custseg_rules,
    "itemsets": custseg_itemsets,
    "spark": spark_rules,
    "mlxtend": mlxtend_rules,
    "next_best": next_best_check,
}


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("log", nargs="?", help="a raw log (Online Retail's columns, or custseg's)")
    ap.add_argument("--sample", action="store_true", help="generated sample, 25k customers")
    ap.add_argument("--customers", type=int, default=25_000, help="customers to generate")
    ap.add_argument("--min-support", type=float, default=0.005)
    ap.add_argument("--min-confidence", type=float, default=0.1)
    ap.add_argument(
        "--mlxtend-max-gb",
        type=float,
        default=8.0,
        help="mlxtend's address-space limit (default 8)",
    )
    ap.add_argument("--mlxtend-max-minutes", type=float, default=30.0)
    ap.add_argument("--spark-driver-gb", type=int, default=4)
    ap.add_argument("--plant", type=int, help="pairs to plant (default: 5 generated, 0 a log)")
    ap.add_argument("--no-spark", action="store_true", help="skip the Spark contender")
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
    extra += [
        "--mlxtend-max-gb",
        str(args.mlxtend_max_gb),
        "--mlxtend-max-minutes",
        str(args.mlxtend_max_minutes),
        "--spark-driver-gb",
        str(args.spark_driver_gb),
    ]
    extra += [] if args.plant is None else ["--plant", str(args.plant)]
    phases = [p for p in PHASES if not (args.no_spark and p == "spark")]
    r = harness.run_phases(__file__, ["prepare", *phases], extra, rounds=1, setup=1,
                           may_fail=("mlxtend", "spark"))  # fmt: skip
    p = r["prepare"]
    print(f"{args.log or f'generated, {args.customers:,} customers'} as of {p['as_of']}: "
          f"{p['baskets']:,} baskets, {p['items']:,} products, {p['lines']:,} basket lines, "
          f"{p['customers']:,} customers" + (f" ({p['note']})" if "note" in p else ""))  # fmt: skip
    if p["planted"]:
        print(f"planted {len(p['planted'])} pairs X -> Y (the generator plants none): X added to "
              f"1% of baskets, Y to 60% of baskets with X, and to the next basket of 60% of those "
              f"without it: "
              + ", ".join(f"{x} -> {y}" for x, y in p["planted"]))  # fmt: skip
    print(f"rules X -> Y, min support {args.min_support}, min confidence {args.min_confidence}")
    print(f"  {'':28} {'wall s':>8} {'peak RSS MB':>12} {'rules':>8}")
    contenders = (("custseg", "custseg, DuckDB SQL"), ("spark", "custseg, Spark SQL (local[2])"),
                  ("mlxtend", "mlxtend fpgrowth"),
                  ("itemsets", "custseg + X1,X2 -> Y, DuckDB"))  # fmt: skip
    for name, label in contenders:
        m = r.get(name)
        if m is None:
            continue
        if "skipped" in m:
            print(f"  {label:28} {m['skipped']}")
            continue
        peak = m["peak_rss_mb"] + m.get("jvm_peak_rss_mb", 0)
        same = "" if "same_rules" not in m else f"  same rules as DuckDB: {m['same_rules']}"
        if m.get("at_threshold"):
            same += f" (but {m['at_threshold']} at exactly the confidence threshold)"
        if "itemset_rules" in m:
            same += f"  of which X1, X2 -> Y: {m['itemset_rules']:,}"
        if "planted_found" in m:
            same += f"  planted pairs found: {m['planted_found']} of {len(p['planted'])}"
        if "session_start_s" in m:
            same += (f"  (+ {m['session_start_s']:.0f} s session start; RSS: Python "
                     f"{m['peak_rss_mb']:,.0f} + JVM {m['jvm_peak_rss_mb']:,.0f} MB)")  # fmt: skip
        print(f"  {label:28} {m['seconds']:8.2f} {peak:12,.0f} {m['rules']:8,}{same}")
    v = r["next_best"]
    print(f"next-best products, out of time: history to {v['cutoff']}, {v['customers']:,} "
          f"customers buying new products in the {v['horizon_days']} days after "
          f"({v['seconds']:.1f} s, peak RSS {v['peak_rss_mb']:,.0f} MB)")  # fmt: skip
    print(f"  {'':28} {'hit rate@3':>10} {'recall@3':>10} {'precision@3':>12}")
    for name, m in v["methods"].items():
        print(f"  {name:28} {m['hit_rate']:10.1%} {m['recall']:10.4f} {m['precision']:12.4f}")


if __name__ == "__main__":
    main()
