"""The prediction stage as the main job runs it: plan windows, build the backtest, fit both
targets with progress bars, decide promotions (tracking is the caller's: `tracking`)."""

from __future__ import annotations

from datetime import date

import pandas as pd

from training.prediction import dataset
from training.prediction.config import PredictionConfig
from training.prediction.train import TargetResult, fit_target
from training.prediction.windows import TARGETS, ShortHistory, plan


def plans(as_of: date, first_order: date, cfg: PredictionConfig) -> tuple[list, dict[str, str]]:
    out, skipped = [], {}
    for target in TARGETS:
        try:
            out.append(plan(target, as_of, first_order, cfg))
        except ShortHistory as exc:
            skipped[target] = str(exc)
    return out, skipped


def fit(
    transactions,
    customers,
    clean_transactions: pd.DataFrame,
    scoring_features: pd.DataFrame,
    as_of: date,
    cleaning,
    features_cfg,
    cfg: PredictionConfig,
) -> tuple[dict[str, TargetResult], dict[str, str], list[str]]:
    """(results by target, skipped targets with the reason, notes on the windows)."""
    from custseg.progress import bar

    first = pd.Timestamp(clean_transactions["order_date"].min()).date()
    todo, skipped = plans(as_of, first, cfg)
    notes = [n for p in todo for n in p.notes]
    if not todo:
        return {}, skipped, notes
    cutoffs = sorted({d for p in todo for d in p.cutoffs})
    with bar(f"features at {len(cutoffs)} backtest cutoffs", len(cutoffs)) as step:
        backtest = dataset.build(
            transactions,
            customers,
            clean_transactions,
            todo,
            cleaning,
            features_cfg,
            cfg.repurchase_days,
            cfg.churn_days,
            step,
        )
    results = {}
    for p in todo:
        name = f"{cfg.study_name or 'custseg'}-{p.target}-{as_of}"
        with bar(f"{p.target}: tuning LightGBM", cfg.trials) as step:
            results[p.target] = fit_target(
                p.target, p, backtest, scoring_features, cfg, name, on_trial=lambda t: step()
            )
    return results, skipped, notes
