"""Benchmark: tuning and fitting the segmentation schemes on a large feature table.

    python benchmarks/bench_segmentation.py                   # 1M customers
    python benchmarks/bench_segmentation.py --customers 100000

Prepares a feature table once (generate + clean + features, not timed), then in fresh processes:
(1) the default clustering scheme step by step (Optuna tuning with the default trial count,
elbow / silhouette-vs-K, the final fit and assignment of every customer, bootstrap stability),
(2) every default scheme through `fit_schemes`, as `custseg run` does (MLflow logging aside).
Prints wall time per step and each process's peak RSS.
"""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path

import harness

AS_OF = date(2026, 6, 30)


def prepare(out: Path, customers: int) -> dict:
    from custseg.sample import SampleConfig, generate
    from features.build import build_features_from_parquet
    from features.cleaning import CleaningConfig, clean
    from features.contract import TRANSACTIONS, type_table

    data = generate(SampleConfig(customers=customers, seed=3))
    result = clean(
        type_table(data["transactions"], TRANSACTIONS), None, CleaningConfig(reference_date=AS_OF)
    )
    cols = ["customer_id", "order_date", "amount", "is_refund", "channel", "category"]
    result.transactions[cols].to_parquet(out / "tx.parquet", index=False)
    table = build_features_from_parquet(out / "tx.parquet", AS_OF)
    table.to_parquet(out / "features.parquet", index=False)
    return {"customers": len(table), "transactions": len(result.transactions)}


def clustering(out: Path) -> dict:
    import numpy as np
    import pandas as pd

    from training.segmentation import load, parse, quality

    features = pd.read_parquet(out / "features.parquet")
    sf = load()
    spec = next(s for s in sf.schemes if s.kind == "clustering")
    kind = parse(spec, sf)
    times = {}
    t = time.perf_counter()
    tuned = kind.tune(features)
    times["tune_s"] = time.perf_counter() - t
    t = time.perf_counter()
    tuned.elbow(features)
    times["elbow_s"] = time.perf_counter() - t
    t = time.perf_counter()
    assigner = tuned.fit(features)
    times["fit_s"] = time.perf_counter() - t
    t = time.perf_counter()
    labels = assigner.assign(features)
    times["assign_s"] = time.perf_counter() - t
    t = time.perf_counter()
    rows = quality.eval_rows(len(features), 4000, 42)
    ari = quality.stability(
        lambda df, s: tuned.fit(df, s),
        features,
        labels,
        rows,
        tuned.stability_refits,
        tuned.fit_sample,
        42,
    )
    times["stability_s"] = time.perf_counter() - t
    c = tuned.chosen
    return {
        **times,
        "trials": tuned.trials,
        "chosen": f"{c.family} k={c.k} on {c.subset} ({c.scaling})",
        "silhouette": float(tuned.study.best_value),
        "stability_ari": ari,
        "segments": int(len(np.unique(labels))),
    }


def all_schemes(out: Path) -> dict:
    from contextlib import contextmanager

    import pandas as pd

    from training.segmentation import fit_schemes, load

    features = pd.read_parquet(out / "features.parquet")
    each = {}

    @contextmanager
    def timed(spec):
        t = time.perf_counter()
        yield None
        each[spec.name] = time.perf_counter() - t

    t0 = time.perf_counter()
    fit_schemes(features, load(), progress=timed)
    return {"total_s": time.perf_counter() - t0, "each_s": each}


PHASES = {"clustering": clustering, "all_schemes": all_schemes}


def main() -> None:
    ran = harness.main(__file__, __doc__, prepare, PHASES, 1_000_000)
    if ran is None:
        return
    _, res = ran
    p, c, a = res["prepare"], res["clustering"], res["all_schemes"]
    print(
        f"custseg segmentation benchmark: {p['customers']:,} customers "
        f"({p['transactions']:,} transactions)"
    )
    print(f"  clustering, default scheme ({c['trials']} Optuna trials): chose {c['chosen']}")
    for key, label in (
        ("tune_s", "tuning (fit sample + silhouette sample)"),
        ("elbow_s", "elbow / silhouette vs K"),
        ("fit_s", "final fit"),
        ("assign_s", "assign every customer"),
        ("stability_s", "bootstrap stability"),
    ):
        print(f"    {label:42} {c[key]:7.1f} s")
    total = sum(c[k] for k in ("tune_s", "elbow_s", "fit_s", "assign_s", "stability_s"))
    print(f"    {'total':42} {total:7.1f} s   peak RSS {c['peak_rss_mb']:,.0f} MB")
    print(
        f"    silhouette {c['silhouette']:.3f}, stability (ARI) {c['stability_ari']:.3f}, "
        f"{c['segments']} segments"
    )
    print(
        f"  every default scheme (fit_schemes): {a['total_s']:.1f} s, "
        f"peak RSS {a['peak_rss_mb']:,.0f} MB"
    )
    for name, secs in a["each_s"].items():
        print(f"    {name:42} {secs:7.1f} s")


if __name__ == "__main__":
    main()
