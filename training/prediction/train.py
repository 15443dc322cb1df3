"""Fit one target: LightGBM on the training windows, tuned and calibrated on validation, scored
with the baselines on the held-out test window."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pandas as pd

from training.prediction import baselines, calibration, lgbm
from training.prediction.btyd import BGNBD
from training.prediction.config import PredictionConfig
from training.prediction.dataset import Backtest, split
from training.prediction.metrics import calibration_table, evaluate
from training.prediction.predictor import Predictor, design, input_columns, prior
from training.prediction.windows import NoSignal, WindowPlan


@dataclass
class TargetResult:
    target: str
    plan: WindowPlan
    predictor: Predictor
    metrics: dict[str, float]  # the calibrated model on the test window
    baselines: dict[str, dict[str, float]]  # same window
    valid_metrics: dict[str, float]
    calibration_losses: dict[str, float]
    drivers: pd.Series  # mean |contribution| per model input on the test window
    curves: dict[str, pd.DataFrame]  # calibration tables, model and baselines
    study: object = None
    sizes: dict[str, int] = field(default_factory=dict)
    test: tuple = ()  # (features, labels, btyd fit) of the test window, for the promotion gate
    decision: object = None


def matrix(
    x: pd.DataFrame, numeric, categories, fits: dict[date, BGNBD], days: int
) -> pd.DataFrame:
    """Model matrix of rows stacked from several cutoffs, each with its own cutoff's BTYD fit."""
    parts = [
        design(g, numeric, categories, fits[pd.Timestamp(c).date()], days)
        for c, g in x.groupby("cutoff", sort=True)
    ]
    return pd.concat(parts).loc[x.index]


def fit_target(
    target: str,
    plan: WindowPlan,
    backtest: Backtest,
    scoring_features: pd.DataFrame,
    cfg: PredictionConfig,
    study_name: str,
    on_trial: Callable | None = None,
    permute_labels: bool = False,
) -> TargetResult:
    """`permute_labels` shuffles the training and validation labels: a leakage check (the test
    AUC must then fall to about 0.5)."""
    data = split(backtest, plan, target)
    for name, (_, labels) in data.items():
        if len(np.unique(labels)) < 2:
            value = "no customers" if not len(labels) else f"every label {bool(labels[0])}"
            raise NoSignal(f"{target}: the {name} window has {value}; nothing to learn or score")
    if permute_labels:
        rng = np.random.default_rng(cfg.seed)
        data = {k: (x, rng.permutation(y) if k != "test" else y) for k, (x, y) in data.items()}
    fits = {d: BGNBD.fit(backtest.features[d], cfg.seed) for d in plan.cutoffs}
    h = plan.horizon_days
    numeric, categories = input_columns(data["train"][0])
    (x, y), (xv, yv), (xt, yt) = data["train"], data["valid"], data["test"]
    m, mv = (matrix(d, numeric, categories, fits, h) for d in (x, xv))
    init, init_valid = (
        (prior(target, d["btyd_p_purchase"].to_numpy()) for d in (m, mv))
        if cfg.btyd_prior
        else (None, None)
    )
    booster, study, params = lgbm.tune(
        m, y, mv, yv, cfg, study_name, cfg.trials, on_trial, init, init_valid
    )
    predictor = Predictor(
        target,
        h,
        numeric,
        categories,
        BGNBD.fit(scoring_features, cfg.seed),
        booster,
        calibration.Calibrator("none"),
        {**params, "best_iteration": int(booster.best_iteration)},
        cfg.btyd_prior,
    )
    raw_valid = predictor.raw(xv, fits[plan.valid])
    predictor.calibrator, losses = calibration.choose(raw_valid, yv, cfg.seed)
    calibrator = predictor.calibrator
    p_test = predictor.predict_proba(xt, fits[plan.test])
    base = baselines.score_all(target, h, data, fits, plan.valid, plan.test)
    contrib = predictor.contributions(xt, fits[plan.test]).drop(columns="bias")
    return TargetResult(
        target=target,
        plan=plan,
        predictor=predictor,
        metrics=evaluate(yt, p_test),
        baselines={name: evaluate(yt, p) for name, p in base.items()},
        valid_metrics=evaluate(yv, calibrator(raw_valid)),
        calibration_losses=losses,
        drivers=contrib.abs().mean().sort_values(ascending=False),
        curves={
            "model": calibration_table(yt, p_test),
            **{n: calibration_table(yt, p) for n, p in base.items()},
        },
        study=study,
        sizes={"train": len(y), "valid": len(yv), "test": len(yt)},
        test=(xt, yt, fits[plan.test]),
    )
