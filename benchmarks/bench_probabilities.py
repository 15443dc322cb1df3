"""Out-of-time benchmark of custseg's churn and repurchase probabilities against two baselines.

    python benchmarks/bench_probabilities.py ../shared/data/online_retail.parquet \\
        --as-of 2011-08-31 --horizon 90
    python benchmarks/bench_probabilities.py ../shared/data/online_retail_ii_2009_2010.parquet \\
        --as-of 2010-08-31 --horizon 90
    python benchmarks/bench_probabilities.py --sample [--customers N]

Protocol: pick an as-of date and a horizon h (used for both targets). custseg sees only the log
up to as-of: the raw log is truncated to the rows dated on or before it (every column kept) and
`custseg train` runs on that file in a fresh process with its own state folder, with the
`--column` mappings and cleaning patterns of check_real_log.py plus a `[prediction]` table
setting both horizons to h. The truth comes from the orders after as-of in the FULL log:
repurchase = any valid order in (as-of, as-of + h], churn = none. Customers = those with a valid
order on or before as-of (UCI: non-"C" invoice, customer id present, quantity and price > 0,
product stock code; sample: every order line with a readable date, a customer id and a positive
amount, duplicate customer ids mapped to the generator's true id, as custseg's cleaning does).

Two baselines score the same customers, from the truncated log only:
  BG/NBD  the project's own fit (training/prediction/btyd.py) on distinct order days, recency
          and tenure at as-of; P(at least one purchase in h days).
  GBM     scikit-learn GradientBoostingClassifier (defaults, random_state=0) on seven RFM
          features, trained on backtest cutoffs as-of - h - 30 i (i = 0..3) stacked, whose
          labels end on or before as-of; a cutoff with < 30 days of history or one label class
          is skipped.

Per target: ROC-AUC, PR-AUC, log loss (probabilities clipped to 1e-6), base rate, n, and a paired
bootstrap (customers resampled, seeded) 95% CI of custseg minus each baseline for ROC-AUC and
log loss (ΔAUC > 0 and Δlog loss < 0 favour custseg). If custseg leaves a target unscored (too
short a history), the baselines are still reported and the table says so.

--sample generates a log with `custseg sample` into a temporary folder (its customer table is
passed with -c; the truncated log stays CSV so its dirty text reaches custseg verbatim); as-of =
its last order date (on or before the generator's end date) - h, h = 90 unless the sample is
shorter than 4 h + 60 days. Not a test: the UCI data lives outside the
repository, and a run trains for minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
from check_real_log import CANCEL, COLUMNS, CONFIG, NON_PRODUCT, columns_of, raw_log
from harness import print_stages, timed_job
from sklearn.ensemble import GradientBoostingClassifier

from training.prediction.btyd import BGNBD
from training.prediction.metrics import evaluate, paired_bootstrap

TARGETS = ("repurchase", "churn")
GBM_WINDOWS = 4
GBM_STEP_DAYS = 30
GBM_MIN_HISTORY_DAYS = 30
RECENT_DAYS = 90
GBM_FEATURES = [
    "recency_days",
    "frequency",
    "monetary",
    "tenure_days",
    "avg_order_value",
    "orders_90d",
    "spend_90d",
]


def norm_ids(ids: pd.Series) -> pd.Series:
    """Customer ids as text, a numeric id without its float tail (12347.0 -> "12347")."""
    return ids.astype("string").str.strip().str.replace(r"^(\d+)\.0*$", r"\1", regex=True)


# ---- the log: one row per valid order (customer_id, order_id, day, amount) -----------------


def uci_orders(raw: pd.DataFrame) -> pd.DataFrame:
    """Valid orders of a UCI log (file 1's column names), as custseg counts them."""
    invoice = raw["InvoiceNo"].astype(str)
    valid = (
        raw["CustomerID"].notna()
        & ~invoice.str.match(CANCEL)
        & (raw["Quantity"] > 0)
        & (raw["UnitPrice"] > 0)
        & ~raw["StockCode"].astype(str).str.fullmatch(NON_PRODUCT[1:-1])
    )
    lines = pd.DataFrame(
        {
            "customer_id": norm_ids(raw.loc[valid, "CustomerID"]),
            "order_id": invoice[valid],
            "day": raw.loc[valid, "InvoiceDate"].dt.normalize(),
            "amount": raw.loc[valid, "Quantity"] * raw.loc[valid, "UnitPrice"],
        }
    )
    return _orders(lines)


def sample_dates(text: pd.Series) -> pd.Series:
    """The generator's date spellings (2024-05-01, 2024/05/01, 20240501, 2024年05月01日) as
    days; the deliberately unreadable ones (昨天, 2024-13-45, ...) as NaT."""
    digits = text.astype("string").str.replace(r"\D", "", regex=True)
    return pd.to_datetime(digits.where(digits.str.len() == 8), format="%Y%m%d", errors="coerce")


def sample_orders(tx: pd.DataFrame, true_ids: pd.Series | None) -> pd.DataFrame:
    """Valid orders of a generated log: readable date, customer id, positive amount; duplicate
    customer ids mapped to the generator's true id (custseg's cleaning merges them too)."""
    amount = pd.to_numeric(tx["amount"], errors="coerce")
    day = sample_dates(tx["order_date"])
    ids = tx["customer_id"].astype("string").str.strip()
    valid = day.notna() & ids.notna() & (amount > 0)
    ids = ids[valid]
    if true_ids is not None:
        ids = ids.map(true_ids).fillna(ids)
    lines = pd.DataFrame(
        {
            "customer_id": ids,
            "order_id": tx.loc[valid, "order_id"].astype("string").fillna(ids),
            "day": day[valid],
            "amount": amount[valid],
        }
    )
    return _orders(lines)


def _orders(lines: pd.DataFrame) -> pd.DataFrame:
    """Order lines -> orders (an order's day is its first line's)."""
    return (
        lines.groupby(["customer_id", "order_id"], observed=True, sort=False)
        .agg(day=("day", "min"), amount=("amount", "sum"))
        .reset_index()
    )


# ---- per-customer history and labels at a cutoff --------------------------------------------


def history(orders: pd.DataFrame, cutoff: pd.Timestamp) -> pd.DataFrame:
    """Per customer with an order on or before `cutoff`: BG/NBD's and the GBM's features."""
    past = orders[orders["day"] <= cutoff]
    recent = past["day"] > cutoff - pd.Timedelta(days=RECENT_DAYS)
    g = past.assign(
        recent=recent.astype(int), recent_amount=past["amount"].where(recent, 0.0)
    ).groupby("customer_id", sort=True)
    h = g.agg(
        first=("day", "min"),
        last=("day", "max"),
        frequency_days=("day", "nunique"),
        frequency=("order_id", "size"),
        monetary=("amount", "sum"),
        orders_90d=("recent", "sum"),
        spend_90d=("recent_amount", "sum"),
    )
    h["recency_days"] = (cutoff - h.pop("last")).dt.days
    h["tenure_days"] = (cutoff - h.pop("first")).dt.days
    h["avg_order_value"] = h["monetary"] / h["frequency"]
    return h


def bought(orders: pd.DataFrame, cutoff: pd.Timestamp, days: int, who: pd.Index) -> pd.Series:
    """1 for each customer in `who` with an order in (cutoff, cutoff + days], else 0."""
    after = orders[(orders["day"] > cutoff) & (orders["day"] <= cutoff + pd.Timedelta(days=days))]
    return pd.Series(who.isin(after["customer_id"].unique()).astype(int), index=who)


# ---- baselines ------------------------------------------------------------------------------


def bgnbd(at_as_of: pd.DataFrame, days: int) -> np.ndarray:
    """P(a purchase within `days`) by the project's BG/NBD, fitted on the as-of history."""
    return BGNBD.fit(at_as_of).p_purchase(at_as_of, days)


def gbm(
    orders: pd.DataFrame, as_of: pd.Timestamp, days: int, at_as_of: pd.DataFrame
) -> tuple[np.ndarray, list[str]]:
    """P(a purchase within `days`) by a GBM on RFM features, trained on backtest cutoffs whose
    labels end on or before as-of (`orders` holds only orders up to as-of)."""
    first = orders["day"].min()
    xs, ys, notes = [], [], []
    for i in range(GBM_WINDOWS):
        cutoff = as_of - pd.Timedelta(days=days + GBM_STEP_DAYS * i)
        if (cutoff - first).days < GBM_MIN_HISTORY_DAYS:
            notes.append(f"{cutoff.date()} skipped (< {GBM_MIN_HISTORY_DAYS} days of history)")
            continue
        h = history(orders, cutoff)
        y = bought(orders, cutoff, days, h.index)
        if y.nunique() < 2:
            notes.append(f"{cutoff.date()} skipped (one label class)")
            continue
        xs.append(h[GBM_FEATURES])
        ys.append(y.to_numpy())
        notes.append(f"{cutoff.date()} ({len(y):,} customers, {y.mean():.1%} bought)")
    if not xs:
        return np.full(len(at_as_of), np.nan), notes
    model = GradientBoostingClassifier(random_state=0)
    model.fit(pd.concat(xs).to_numpy(float), np.concatenate(ys))
    return model.predict_proba(at_as_of[GBM_FEATURES].to_numpy(float))[:, 1], notes


# ---- metrics --------------------------------------------------------------------------------


# ---- custseg --------------------------------------------------------------------------------


def run_custseg(
    log: Path,
    customers: Path | None,
    work: Path,
    out: Path,
    as_of: date,
    days: int,
    trials: int,
    columns: dict | None,
) -> tuple[str, float, float]:
    config = work / "bench.toml"
    cleaning = CONFIG if columns else ""
    config.write_text(f"{cleaning}\n[prediction]\nrepurchase_days = {days}\nchurn_days = {days}\n")
    cmd = [sys.executable, "-m", "custseg", "train", "-t", str(log)]
    cmd += ["-c", str(customers)] if customers else []
    cmd += ["--config", str(config)]
    for target, source in (columns or {}).items():
        cmd += ["--column", f"{target}={source}"]
    cmd += ["--as-of", str(as_of), "--trials", str(trials), "--no-track", "--out", str(out)]
    return timed_job(cmd, work / "home")


def job_notes(stderr: str) -> list[str]:
    """What the job said about its targets (skips, short history, held-out figures)."""
    lines, keep = [], False
    for line in stderr.splitlines():
        text = line.strip()
        if text.startswith(("repurchase", "churn", "skipped", "note", "warning", "⚠")):
            lines.append(text)
            keep = True
        elif keep and text and not text.startswith(("✓", "scores:", "report:")):
            lines[-1] += " " + text
        else:
            keep = False
    return lines


# ---- the two kinds of input -----------------------------------------------------------------


def prepare_uci(path: Path, as_of: pd.Timestamp, work: Path):
    """(truncated log as Parquet with the file's own column names, no customer table, the
    `--column` mappings, all valid orders of the full log) of a UCI file."""
    columns = columns_of(path)
    raw = raw_log(path)  # file 1's column names
    truncated = work / f"{path.stem}_to_{as_of.date()}.parquet"
    keep = raw["InvoiceDate"].dt.normalize() <= as_of
    back = {COLUMNS[k]: columns[k] for k in COLUMNS}  # the file's own names again
    raw[keep].rename(columns=back).to_parquet(truncated, index=False)
    return truncated, None, columns, uci_orders(raw)


def prepare_sample(customers: int, horizon: int | None, work: Path):
    """Generate a sample; (truncated log, customer table, all valid orders, as-of, horizon)."""
    folder = work / "sample"
    cmd = [sys.executable, "-m", "custseg", "sample", "--out", str(folder)]
    cmd += ["--customers", str(customers)]
    env = {**os.environ, "CUSTSEG_HOME": str(work / "home")}
    subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
    tx = pd.read_csv(folder / "transactions.csv", dtype=str, keep_default_na=False, na_values=[""])
    truth = pd.read_parquet(folder / "truth" / "customers.parquet")
    true_ids = truth.set_index("customer_id")["true_customer_id"].astype("string")
    end = pd.Timestamp(
        json.loads((folder / "truth" / "summary.json").read_text())["config"]["end_date"]
    )
    orders = sample_orders(tx, true_ids)
    orders = orders[orders["day"] <= end]  # future-dated dirt is not the last order
    last, first = orders["day"].max(), orders["day"].min()
    if horizon is None:
        span = (last - first).days
        horizon = 90 if span >= 4 * 90 + 60 else max(7, (span - 60) // 4)
        if horizon != 90:
            print(f"the sample spans {span} days: horizon {horizon} days instead of 90")
    as_of = (last - pd.Timedelta(days=horizon)).normalize()
    truncated = work / "transactions_to_as_of.csv"
    day = sample_dates(tx["order_date"])
    tx[day.notna() & (day <= as_of)].to_csv(truncated, index=False)
    return truncated, folder / "customers.csv", orders, as_of, horizon


# ---- report ---------------------------------------------------------------------------------


def ci(diff_lo_hi: tuple[float, float, float], digits: int) -> str:
    value, lo, hi = diff_lo_hi
    return f"{value:+.{digits}f} [{lo:+.{digits}f}, {hi:+.{digits}f}]"


def report_target(
    target: str,
    y: np.ndarray,
    probs: dict[str, np.ndarray],
    scored: np.ndarray,
    resamples: int,
) -> None:
    """One table: every model on the customers custseg scored (all, if it scored none)."""
    n_all = len(y)
    print(f"\n== {target} ==  custseg scored {scored.sum():,} of {n_all:,} customers")
    unscored = scored.sum() == 0
    if unscored:
        print(f"custseg left {target} unscored: baselines on all {n_all:,} customers")
        rows = np.ones(n_all, bool)
    else:
        rows = scored
    yy = y[rows]
    table = {
        m: evaluate(yy, p[rows]) for m, p in probs.items() if not (unscored and m == "custseg")
    }
    base = {m: p[rows] for m, p in probs.items() if m != "custseg"}
    deltas = (
        {}
        if unscored
        else {  # custseg minus each baseline: (difference, 2.5%, 97.5%)
            m: paired_bootstrap(yy, probs["custseg"][rows], p, resamples, max_rows=len(yy))
            for m, p in base.items()
        }
    )
    print(f"n {len(yy):,}, base rate {yy.mean():.3f}")
    head = f"{'target':10} {'model':8} {'ROC-AUC':>7} {'PR-AUC':>7} {'log loss':>8}"
    print(f"{head}   {'ΔAUC vs custseg [95% CI]':>27}   {'Δlog loss [95% CI]':>27}")
    if unscored:
        print(f"{target:10} {'custseg':8} {'unscored':>7}")
    for m, r in table.items():
        line = f"{target:10} {m:8} {r['roc_auc']:7.4f} {r['pr_auc']:7.4f} {r['log_loss']:8.4f}"
        if m in deltas:
            d = deltas[m]
            auc, loss = ci(d["roc_auc"], 4), ci(d["log_loss"], 4)
            line += f"   {auc:>27}   {loss:>27}"
        print(line)
    if unscored:
        return
    best = max(base, key=lambda m: table[m]["roc_auc"])
    ratio = table["custseg"]["roc_auc"] / table[best]["roc_auc"]
    auc_win = all(table["custseg"]["roc_auc"] > table[m]["roc_auc"] for m in base)
    loss_win = all(table["custseg"]["log_loss"] < table[m]["log_loss"] for m in base)
    sure = [
        m for m in base if deltas[m]["roc_auc"][1] > 0 and deltas[m]["log_loss"][2] < 0
    ]  # both CIs exclude 0 in custseg's favour
    print(
        f"{target}: custseg ROC-AUC / best baseline ({best}) ROC-AUC = {ratio:.3f}; custseg beats "
        f"both baselines on AUC: {'yes' if auc_win else 'no'}, on log loss: "
        f"{'yes' if loss_win else 'no'} (CIs exclude 0 on both vs: {', '.join(sure) or 'none'})"
    )


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("log", type=Path, nargs="?", help="UCI Online Retail (I or II) .parquet/.xlsx")
    ap.add_argument("--sample", action="store_true", help="generate a log with custseg sample")
    ap.add_argument("--customers", type=int, default=5000, help="sample size (with --sample)")
    ap.add_argument("--as-of", default=None, help="YYYY-MM-DD (required for a log)")
    ap.add_argument("--horizon", type=int, default=None, help="days, both targets (default 90)")
    ap.add_argument("--trials", type=int, default=20, help="custseg's Optuna trials per target")
    ap.add_argument("--bootstrap", type=int, default=1000, help="paired bootstrap resamples")
    ap.add_argument(
        "--keep", type=Path, default=None, help="copy the work folder (inputs, job output) here"
    )
    args = ap.parse_args()
    if args.sample == (args.log is not None):
        ap.error("give a log or --sample (not both)")
    if args.log is not None and args.as_of is None:
        ap.error("--as-of is required with a log")

    work = Path(tempfile.mkdtemp(prefix="custseg-probs-"))
    try:
        if args.sample:
            log, customers, orders, as_of, days = prepare_sample(args.customers, args.horizon, work)
            columns, name = None, f"custseg sample ({args.customers:,} customers)"
        else:
            as_of, days = pd.Timestamp(args.as_of).normalize(), args.horizon or 90
            log, customers, columns, orders = prepare_uci(args.log.resolve(), as_of, work)
            name = args.log.name
        out = work / "out"
        print(
            f"{name}: as of {as_of.date()}, horizon {days} days, {args.trials} trials", flush=True
        )
        stderr, wall, peak = run_custseg(
            log, customers, work, out, as_of.date(), days, args.trials, columns
        )
        (work / "job.stderr").write_text(stderr)
        print_stages(stderr, wall, peak)
        for line in job_notes(stderr):
            print(f"  job: {line}")
        scores = pd.read_csv(out / "scores.csv", dtype={"customer_id": str})
        if args.keep:
            shutil.copytree(work, args.keep, dirs_exist_ok=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    # truth: customers with a valid order on or before as-of; a valid order within h after it
    seen = orders[orders["day"] <= as_of]
    at_as_of = history(seen, as_of)
    repurchase = bought(orders, as_of, days, at_as_of.index)
    scores["customer_id"] = norm_ids(scores["customer_id"])
    scores = scores.drop_duplicates("customer_id").set_index("customer_id")
    for col in ("repurchase_model", "churn_model"):
        if col in scores:
            counts = scores[col].value_counts(dropna=False)
            print(f"{col}: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
    both = at_as_of.index.intersection(scores.index)
    print(
        f"customers: {len(at_as_of):,} with an order by {as_of.date()}, {len(scores):,} in "
        f"scores.csv, {len(both):,} in both ({len(at_as_of) - len(both):,} only in the truth, "
        f"{len(scores) - len(both):,} only in custseg's scores; the job drops test accounts)"
    )
    at_as_of, repurchase, scores = at_as_of.loc[both], repurchase.loc[both], scores.loc[both]

    p_btyd = bgnbd(at_as_of, days)
    p_gbm, notes = gbm(seen, as_of, days, at_as_of)
    print(f"GBM training cutoffs: {'; '.join(notes)}")
    if np.isnan(p_gbm).all():
        print("GBM: no usable training cutoff, left out")
    for target in TARGETS:
        y = repurchase.to_numpy() if target == "repurchase" else 1 - repurchase.to_numpy()
        flip = (lambda p: p) if target == "repurchase" else (lambda p: 1 - p)
        ours = scores[f"{target}_probability"].to_numpy(float)
        probs = {"custseg": ours, "BG/NBD": flip(p_btyd), "GBM": flip(p_gbm)}
        probs = {m: p for m, p in probs.items() if m == "custseg" or not np.isnan(p).all()}
        report_target(target, y, probs, ~np.isnan(ours), args.bootstrap)


if __name__ == "__main__":
    main()
