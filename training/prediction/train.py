"""Fit one target: LightGBM on the training windows, tuned and calibrated on validation, scored
with the baselines on the held-out test window; whichever wins that window is refitted on the
freshest labels and becomes the target's model. Too little history for labelled windows: BG/NBD
alone, which needs no labels (`fit_unsupervised`)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from training.prediction import baselines, calibration, lgbm
from training.prediction.btyd import BGNBD
from training.prediction.config import PredictionConfig
from training.prediction.dataset import Backtest, labelled, pooled, split
from training.prediction.metrics import (
    HIGHER_IS_BETTER,
    calibration_table,
    evaluate,
    paired_bootstrap,
)
from training.prediction.predictor import Predictor, design, input_columns, prior
from training.prediction.windows import NoSignal, WindowPlan

LIGHTGBM = "lightgbm"


@dataclass
class TargetResult:
    target: str
    plan: WindowPlan
    predictor: object  # the chosen model refitted on plan.refit: what is registered
    chosen: str  # lightgbm or a baseline kind: the best on the test window
    metrics: dict[str, float]  # LightGBM (fitted without the test window) on the test window
    baselines: dict[str, dict[str, float]]  # same window
    valid_metrics: dict[str, float] = field(default_factory=dict)
    calibration_losses: dict[str, float] = field(default_factory=dict)
    drivers: pd.Series = field(default_factory=pd.Series)  # mean |contribution| on the test window
    curves: dict[str, pd.DataFrame] = field(default_factory=dict)  # calibration tables
    study: object = None
    sizes: dict[str, int] = field(default_factory=dict)
    test: tuple = ()  # (features, labels, btyd fit) of the test window, for the promotion gate
    decision: object = None
    model: Predictor | None = None  # LightGBM as fitted without the test window
    held_out: object = None  # the chosen model as fitted without the test window (the gate's)
    comparison: dict = field(default_factory=dict)  # baseline -> LightGBM minus it, with CI
    served: object = None  # what scores.csv uses once the gate has decided
    served_label: str = ""
    example: object = None  # a few scoring rows (the model's input example without a test window)

    @property
    def candidates(self) -> dict[str, dict[str, float]]:
        """Every model's metrics on the test window, LightGBM first."""
        return ({LIGHTGBM: self.metrics} if self.metrics else {}) | self.baselines

    def scored_by(self) -> tuple[object, str]:
        """(model, label) of what customers are scored with."""
        return self.served or self.predictor, self.served_label or self.chosen


def best(candidates: dict[str, dict[str, float]], metric: str) -> str:
    """The candidate with the best finite `metric` (the first on ties: LightGBM)."""
    sign = 1 if HIGHER_IS_BETTER[metric] else -1
    finite = {n: m[metric] for n, m in candidates.items() if math.isfinite(m.get(metric, np.nan))}
    return max(finite, key=lambda n: sign * finite[n]) if finite else next(iter(candidates))


def matrix(x: pd.DataFrame, numeric, categories, fits: dict, days: int) -> pd.DataFrame:
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
    scoring_fit = BGNBD.fit(scoring_features, cfg.seed)
    h = plan.horizon_days
    numeric, categories = input_columns(data["train"][0])
    (x, y), (xv, yv), (xt, yt) = data["train"], data["valid"], data["test"]
    m, mv = (matrix(d, numeric, categories, fits, h) for d in (x, xv))
    init, init_valid = (_prior(target, d, cfg) for d in (m, mv))
    booster, study, params = lgbm.tune(
        m, y, mv, yv, cfg, study_name, cfg.trials, on_trial, init, init_valid
    )
    params = {**params, "best_iteration": int(booster.best_iteration)}
    model = Predictor(
        target, h, numeric, categories, scoring_fit, booster, calibration.Calibrator("none"),
        params, cfg.btyd_prior, trained_on=plan.train,
    )  # fmt: skip
    raw_valid = model.raw(xv, fits[plan.valid])
    model.calibrator, losses = calibration.choose(raw_valid, yv, cfg.seed)
    p_test = model.predict_proba(xt, fits[plan.test])
    base = baselines.held_out(target, h, data, fits, plan)
    result = TargetResult(
        target=target,
        plan=plan,
        predictor=None,
        chosen=LIGHTGBM,
        metrics=evaluate(yt, p_test),
        baselines={name: evaluate(yt, p) for name, (_, p) in base.items()},
        valid_metrics=evaluate(yv, model.calibrator(raw_valid)),
        calibration_losses=losses,
        drivers=(
            model.contributions(xt, fits[plan.test])
            .drop(columns="bias")
            .abs()
            .mean()
            .sort_values(ascending=False)
        ),
        curves={
            "model": calibration_table(yt, p_test),
            **{n: calibration_table(yt, p) for n, (_, p) in base.items()},
        },
        study=study,
        sizes={"train": len(y), "valid": len(yv), "test": len(yt)},
        test=(xt, yt, fits[plan.test]),
        model=model,
        comparison={
            n: paired_bootstrap(yt, p_test, p, seed=cfg.seed) for n, (_, p) in base.items()
        },
    )
    result.chosen = best(result.candidates, cfg.gate_metric)
    if result.chosen == LIGHTGBM:
        result.held_out = model
        result.predictor = refit_lightgbm(model, data, fits, plan, cfg)
    else:
        result.held_out = base[result.chosen][0]
        result.predictor = baselines.refit(result.held_out, data, fits, plan, scoring_fit)
    return result


def _prior(target: str, m: pd.DataFrame, cfg: PredictionConfig):
    return prior(target, m["btyd_p_purchase"].to_numpy()) if cfg.btyd_prior else None


def refit_lightgbm(
    model: Predictor, data: dict, fits: dict, plan: WindowPlan, cfg: PredictionConfig
) -> Predictor:
    """The tuned model again on every labelled window, the freshest (as_of - h) included; the
    calibration learned on validation is kept (no held-out labels are left to learn another)."""
    x, y = pooled(data)
    m = matrix(x, model.numeric, model.categories, fits, model.horizon_days)
    booster = lgbm.refit(
        {k: v for k, v in model.params.items() if k != "best_iteration"},
        model.params["best_iteration"],
        m,
        y,
        cfg,
        _prior(model.target, m, cfg),
    )
    return Predictor(
        model.target, model.horizon_days, model.numeric, model.categories, model.btyd, booster,
        model.calibrator, model.params, model.boost_from_prior, trained_on=plan.refit,
    )  # fmt: skip


def fit_unsupervised(
    plan: WindowPlan, backtest: Backtest, scoring_features: pd.DataFrame, cfg: PredictionConfig
) -> TargetResult:
    """BG/NBD alone, for a log too short for labelled windows: fitted on the history as of the
    scoring date, no labels. Measured on the test window (BG/NBD fitted on the history before
    it) when the log is longer than the horizon and that window has both outcomes."""
    target, h = plan.target, plan.horizon_days
    predictor = baselines.bg_nbd(target, h, BGNBD.fit(scoring_features, cfg.seed))
    result = TargetResult(target, plan, predictor, "bg_nbd", {}, {}, held_out=predictor)
    result.example = scoring_features.head(3)
    if plan.test is None or plan.test not in backtest.features:
        return result
    xt, yt = labelled(backtest, plan.test, target)
    if len(np.unique(yt)) < 2:
        return result
    fit = BGNBD.fit(backtest.features[plan.test], cfg.seed)
    p = predictor.predict_proba(xt, fit)
    result.baselines = {"bg_nbd": evaluate(yt, p)}
    result.curves = {"bg_nbd": calibration_table(yt, p)}
    result.sizes = {"test": len(yt)}
    result.test = (xt, yt, fit)
    return result
