"""LightGBM fitted on the training windows, tuned by Optuna on the validation window.

TPE samples the usual regularisation knobs; every trial stops early on validation log loss and
reports it as it goes, so the median pruner can stop hopeless trials. The study lives in memory
or in the configured storage URL (SQLite by default when given as a path, any SQLAlchemy URL to
share one study between processes or machines: `load_if_exists` joins it).
"""

from __future__ import annotations

import lightgbm as lgb
import numpy as np

from training.prediction.metrics import HIGHER_IS_BETTER, evaluate
from training.sampling import sample_rows

DATASET_PARAMS = {"max_bin": 63, "feature_pre_filter": False, "verbosity": -1}
BASE_PARAMS = {
    "objective": "binary",
    "metric": "binary_logloss",
    "verbosity": -1,
    "num_threads": 2,
    "deterministic": True,
    "force_col_wise": True,
}


def _pruning(trial, every: int = 10):
    """Report validation log loss to Optuna; stop the trial when the pruner says so."""
    import optuna

    def callback(env) -> None:
        if env.iteration % every:
            return
        for _, name, value, _ in env.evaluation_result_list:
            if name == "binary_logloss":
                trial.report(-value, env.iteration)  # the study maximises
                if trial.should_prune():
                    raise optuna.TrialPruned(f"pruned at iteration {env.iteration}")

    return callback


def datasets(x, y, xv, yv, init=None, init_valid=None) -> tuple[lgb.Dataset, lgb.Dataset]:
    """Binned once and shared by every trial (binning is a large part of a short fit).
    `init` is the log-odds per row the booster corrects."""
    dtrain = lgb.Dataset(x, y, init_score=init, params=DATASET_PARAMS, free_raw_data=False)
    dvalid = lgb.Dataset(xv, yv, init_score=init_valid, reference=dtrain)
    return dtrain, dvalid


def train(params: dict, dtrain: lgb.Dataset, dvalid: lgb.Dataset, cfg, callbacks=()):
    """A booster early-stopped on the validation set."""
    return lgb.train(
        {**BASE_PARAMS, **DATASET_PARAMS, "seed": cfg.seed, **params},
        dtrain,
        num_boost_round=cfg.max_boost_rounds,
        valid_sets=[dvalid],
        callbacks=[lgb.early_stopping(cfg.early_stopping_rounds, verbose=False), *callbacks],
    )


def tune(x, y, xv, yv, cfg, study_name, trials, on_trial=None, init=None, init_valid=None):
    """(booster refitted with the best params, study, params). Objective: the gate's metric
    (`cfg.gate_metric`) on the validation window, of prior + correction before calibration."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name=study_name,
        storage=cfg.study_storage,
        load_if_exists=True,
        direction="maximize",
        # workers sharing a stored study must not all propose the same trials
        sampler=optuna.samplers.TPESampler(seed=None if cfg.study_storage else cfg.seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=20),
    )

    # trials see at most `tune_rows` training and validation rows (a seeded sample); the final
    # model is refitted on every row with the best parameters
    rng = np.random.default_rng(cfg.seed)
    rows = sample_rows(rng, len(y), cfg.tune_rows)
    vrows = sample_rows(rng, len(yv), cfg.tune_rows // 2)
    ti = None if init is None else init[rows]
    vx, vy, vi = xv.iloc[vrows], yv[vrows], None if init_valid is None else init_valid[vrows]
    dtune, dtune_valid = datasets(x.iloc[rows], y[rows], vx, vy, ti, vi)

    def objective(trial) -> float:
        params = {
            "learning_rate": trial.suggest_float("learning_rate", 0.03, 0.3, log=True),
            "num_leaves": trial.suggest_int("num_leaves", 7, 63, log=True),
            "min_child_samples": trial.suggest_int("min_child_samples", 10, 200, log=True),
            "feature_fraction": trial.suggest_float("feature_fraction", 0.5, 1.0),
            "bagging_fraction": trial.suggest_float("bagging_fraction", 0.6, 1.0),
            "bagging_freq": 1,
            "lambda_l2": trial.suggest_float("lambda_l2", 1e-3, 10.0, log=True),
        }
        booster = train(params, dtune, dtune_valid, cfg, [_pruning(trial)])
        trial.set_user_attr("best_iteration", int(booster.best_iteration))
        margin = booster.predict(vx, raw_score=True) + (0 if vi is None else vi)
        value = evaluate(vy, 1.0 / (1.0 + np.exp(-margin)))[cfg.gate_metric]
        return value if HIGHER_IS_BETTER[cfg.gate_metric] else -value

    callbacks = [lambda s, t: on_trial(t)] if on_trial else []
    study.optimize(objective, n_trials=trials, callbacks=callbacks, catch=(ValueError,))
    best = study.best_trial
    params = {**best.params, "bagging_freq": 1}
    final = train(params, *datasets(x, y, xv, yv, init, init_valid), cfg)
    return final, study, params


def refit(params: dict, rounds: int, x, y, cfg, init=None):
    """The tuned recipe (parameters and the early-stopped number of rounds) on more rows: the
    freshest labelled window included, so no window is left to stop on."""
    data = lgb.Dataset(x, y, init_score=init, params=DATASET_PARAMS)
    return lgb.train(
        {**BASE_PARAMS, **DATASET_PARAMS, "seed": cfg.seed, **params},
        data,
        num_boost_round=max(int(rounds), 1),
    )
