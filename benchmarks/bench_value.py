"""Customer lifetime value on a real log, out of time: custseg's value model, as `custseg run`
fits it, against two baselines on the same customers.

    python benchmarks/bench_value.py ../shared/data/online_retail.parquet --as-of 2011-08-31
    python benchmarks/bench_value.py --sample

The log is cleaned by custseg (the cancellation and non-product patterns of check_real_log);
features as of the as-of date come from the log up to that date only. Each model predicts every
customer's net spend from the as-of date to the end of the log (undiscounted, to compare with
what happened); the truth is what they then spent. Baselines: the customer's spend rate so far
extrapolated, and a linear regression on log R, F, M learned one horizon earlier (its labels end
on the as-of date). Prints total predicted vs actual revenue, Spearman and normalised Gini of
the ranking, top-decile revenue capture, mean absolute error, and custseg's table by decile.
Not a test: the data lives outside the repository.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import tomllib
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
from check_real_log import CONFIG, columns_of

from features.cleaning.config import CleaningConfig
from features.contract import parse_column_map
from features.definitions import FeatureConfig
from features.stage import features_from_log
from training.prediction.clv import BTYD_GG, LABELS
from training.prediction.config import PredictionConfig
from training.prediction.stage import fit_value_only
from training.prediction.value import (
    actual_spend,
    by_decile,
    ranking_metrics,
    rfm_regression,
    spend_rate,
)


def features(log: Path, as_of: date, mapping: dict, cleaning):
    run = features_from_log(log, None, mapping, cleaning, FeatureConfig(), as_of)
    return run.table, run.result.transactions


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("log", nargs="?", type=Path, help="raw UCI Online Retail file")
    ap.add_argument("--as-of", type=date.fromisoformat)
    ap.add_argument("--sample", action="store_true", help="the generated sample instead")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="custseg-bench-value-"))
    if args.sample:
        import subprocess

        subprocess.run([sys.executable, "-m", "custseg", "sample", "--out", str(work)], check=True)
        log, mapping, cleaning = work / "transactions.csv", {}, CleaningConfig()
    else:
        log = args.log
        cols = columns_of(log)
        mapping = parse_column_map([f"{k}={v}" for k, v in cols.items()])
        cleaning = CleaningConfig.from_dict(tomllib.loads(CONFIG)["cleaning"])
    started = time.perf_counter()
    _, everything = features(log, None, mapping, cleaning)
    end = pd.Timestamp(everything["order_date"].max()).date()
    as_of = args.as_of or end - timedelta(days=180)
    horizon = (end - as_of).days
    table, _ = features(log, as_of, mapping, cleaning)
    earlier, _ = features(log, as_of - timedelta(days=horizon), mapping, cleaning)
    truth = actual_spend(everything, as_of, horizon)
    actual = truth.reindex(table["customer_id"]).fillna(0.0).to_numpy()
    learned = actual_spend(everything, as_of - timedelta(days=horizon), horizon)
    learned = learned.reindex(earlier["customer_id"]).fillna(0.0).to_numpy()

    run = features_from_log(log, None, mapping, cleaning, FeatureConfig(), as_of)
    cfg = PredictionConfig(clv_days=horizon, monthly_discount=0.0)
    value = fit_value_only(
        run.transactions, run.customers, run.result.transactions, run.table, as_of,
        run.cleaning, run.features_cfg, cfg,
    )  # fmt: skip
    model = value.predictor.btyd
    ours = f"custseg ({LABELS[value.chosen]})"
    predictions = {
        ours: value.predictor.spend(table),
        "spend rate extrapolated": spend_rate(table, horizon),
        "RFM regression": rfm_regression(earlier, learned, table),
    }
    if value.chosen != BTYD_GG:
        predictions["BG/NBD x Gamma-Gamma (for reference)"] = model.clv(table)
    for name, m in value.candidates.items():
        print(f"  chosen on the held-out window {value.plan.test}: {LABELS[name]} Spearman "
              f"{m['spearman']:.3f} capture {m['capture_top_decile']:.1%}")  # fmt: skip
    print(
        f"{log.name}: as of {as_of}, {horizon} days to the end of the log ({end}); "
        f"{len(table):,} customers; {time.perf_counter() - started:.1f} s"
    )
    print(
        f"  Gamma-Gamma p={model.spend.p:.2f} q={model.spend.q:.2f} v={model.spend.v:.2f}; "
        f"repeat orders vs mean value correlation {model.correlation:+.2f} (the model assumes ~0)"
    )
    print(
        f"  {'model':32} {'predicted':>12} {'actual':>12} {'Spearman':>9} {'Gini':>6} "
        f"{'top 10%':>8} {'MAE':>8}"
    )
    scores = {}
    for name, predicted in predictions.items():
        m = scores[name] = ranking_metrics(predicted, actual)
        print(
            f"  {name:32} {m['predicted_total']:12,.0f} {m['actual_total']:12,.0f} "
            f"{m['spearman']:9.3f} {m['gini']:6.3f} {m['capture_top_decile']:8.2%} {m['mae']:8.1f}"
        )
    mine, *others = list(scores.values())[:3]
    for key in ("spearman", "capture_top_decile"):
        wins = all(mine[key] > o[key] for o in others)
        print(f"  custseg beats both baselines on {key}: {'yes' if wins else 'no'}")
    print("  custseg by decile of predicted value (mean per customer):")
    print(by_decile(predictions[ours], actual).round(1).to_string())


if __name__ == "__main__":
    main()
