"""The prediction stage as the main job and `custseg train` run it: plan windows, build the
backtest, fit both targets with progress bars, then log and register them (promotion decided
against the registered champion) or, untracked, decide only."""

from __future__ import annotations

from datetime import date

import pandas as pd

from core.catalog import PREDICTION_TARGETS as TARGETS
from core.catalog import VALUE_TARGET as VALUE
from training.prediction import dataset
from training.prediction.clv import ValueResult, fit_value
from training.prediction.config import PredictionConfig
from training.prediction.spend import NoRepeatCustomers
from training.prediction.train import TargetResult, fit_target, fit_unsupervised
from training.prediction.windows import (
    UNSUPERVISED,
    NoSignal,
    ShortHistory,
    WindowPlan,
    plan,
    unsupervised,
)


def plans(as_of: date, first_order: date, cfg: PredictionConfig) -> list[WindowPlan]:
    """Every target's plan, the value model's last: labelled windows where the history allows,
    else BG/NBD (x Gamma-Gamma) alone."""
    out = []
    for target in (*TARGETS, VALUE):
        try:
            out.append(plan(target, as_of, first_order, cfg))
        except ShortHistory as exc:
            why = f"{exc}; scored by BG/NBD, which needs no labels"
            out.append(unsupervised(target, as_of, first_order, cfg, why))
    return out


def span(clean_transactions: pd.DataFrame, as_of: date) -> tuple[date, date, date]:
    """(first order, last order, anchor): labels need data up to the end of every label
    window, so windows are planned back from the as-of date or the last order, the earlier."""
    dates = clean_transactions["order_date"]
    first, last = (pd.Timestamp(d).date() for d in (dates.min(), dates.max()))
    return first, last, min(as_of, last)


def fit(
    transactions,
    customers,
    clean_transactions: pd.DataFrame,
    scoring_features: pd.DataFrame,
    as_of: date,
    cleaning,
    features_cfg,
    cfg: PredictionConfig,
) -> tuple[dict[str, TargetResult], dict[str, str], list[str], ValueResult | None]:
    """(results by target, skipped targets with the reason, notes on the windows, the value
    model). Every target gets a model: labelled windows where the history allows, else BG/NBD
    without labels."""
    from core.progress import bar, stage

    dates = clean_transactions["order_date"]
    if not len(dates) or not len(scoring_features):
        why = "no orders on or before the as-of date: nobody to score"
        return {}, dict.fromkeys(TARGETS, why), [], None
    first, last, anchor = span(clean_transactions, as_of)
    todo = plans(anchor, first, cfg)
    notes = [n for p in todo for n in p.notes]
    if anchor < as_of:
        notes.append(
            f"the data ends on {last}, before the as-of date {as_of}: backtest windows end on "
            f"{last} (later days would read as 'no purchase'); customers are scored as of {as_of}"
        )
    cutoffs = sorted({d for p in todo for d in p.cutoffs} | set(todo[-1].refit_between()))
    with bar(f"features at {len(cutoffs)} backtest cutoffs", len(cutoffs)) as step:
        backtest = dataset.build(
            transactions,
            customers,
            clean_transactions,
            cutoffs,
            cleaning,
            features_cfg,
            cfg.repurchase_days,
            cfg.churn_days,
            step,
            categories=scoring_features.attrs.get("categories"),
        )
    results = {}
    *todo, value_plan = todo
    for p in todo:
        if p.mode == UNSUPERVISED:
            results[p.target] = fit_unsupervised(p, backtest, scoring_features, cfg)
            continue
        name = study_name(cfg, p, backtest)
        try:
            with bar(f"{p.target}: tuning LightGBM", cfg.trials) as step:
                results[p.target] = fit_target(
                    p.target, p, backtest, scoring_features, cfg, name, on_trial=lambda t: step()
                )
        except NoSignal as exc:
            why = f"{exc}; scored by BG/NBD, which needs no labels"
            notes.append(why)
            fallback = unsupervised(p.target, anchor, first, cfg, why)
            results[p.target] = fit_unsupervised(fallback, backtest, scoring_features, cfg)
    try:
        with stage("value: CLV models on the held-out window"):
            value = fit_value(value_plan, backtest, clean_transactions, scoring_features, cfg)
        notes += value.notes
    except NoRepeatCustomers as exc:  # nobody bought twice: no order value to learn
        notes.append(f"value: no CLV ({exc})")
        value = None
    return results, {}, notes, value


def study_name(cfg: PredictionConfig, p, backtest) -> str:
    """<prefix>-<target>-<horizon>d-<test cutoff>-<data fingerprint>: workers on the same job
    share a study; another horizon, cutoff or data set never joins an old one."""
    import hashlib

    labels = backtest.labels[p.target].to_numpy()
    rows = sum(len(backtest.features[d]) for d in p.cutoffs)
    digest = hashlib.sha1(f"{rows}:{labels.sum()}:{len(labels)}".encode()).hexdigest()[:8]
    return f"{cfg.study_name or 'custseg'}-{p.target}-{p.horizon_days}d-{p.test}-{digest}"


def open_study_storage(value: str) -> str:
    """An Optuna storage URL (a plain path means a SQLite file), checked by connecting: a typo
    fails before the work, not after it."""
    import time
    from pathlib import Path

    import optuna

    from core.errors import ConfigError

    url = value if "://" in value else f"sqlite:///{Path(value).resolve()}"
    for attempt in range(3):  # workers starting together race to create the schema: retry
        try:
            optuna.storages.get_storage(url)
            return url
        except Exception as exc:  # noqa: BLE001 - SQLAlchemy, drivers and Optuna raise many kinds
            if attempt == 2:
                first = str(exc).splitlines()[0]
                raise ConfigError(f"--study-storage {value}: cannot open it ({first})") from None
            time.sleep(1 + attempt)
    return url


def decide_untracked(results: dict[str, TargetResult], gate_metric: str, value=None) -> None:
    """Without tracking nothing is registered, so nothing is promoted: each result says what the
    gate would have decided."""
    from training.prediction.promotion import Decision, decide
    from training.prediction.value_tracking import decide as decide_value

    if value is not None:
        d = decide_value(value)
        value.decision = Decision(
            False, f"not registered (--no-track); {d.reason}", metric=d.metric
        )
        value.served_label = f"{value.scored_by()[1]} (not registered)"
    for r in results.values():
        d = decide(r, metric=gate_metric)
        r.decision = Decision(False, f"not registered (--no-track); {d.reason}", metric=d.metric)
        r.served, r.served_label = r.predictor, f"{r.predictor.kind} (not registered)"


def log_targets(
    results: dict[str, TargetResult], snapshot: dict, cfg: PredictionConfig, value=None
) -> dict:
    """Log and register every target (and the value model) in the active MLflow run, promoting
    a winner of the gate; returns target -> {version, promoted, decision}."""
    import logging
    import warnings

    from core.progress import stage
    from training.prediction.tracking import log_target

    logging.getLogger("mlflow").setLevel(logging.ERROR)
    logged = {}
    for target, r in results.items():
        with stage(f"logging {target} model to MLflow"), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # MLflow's schema hints
            logged[target] = log_target(r, snapshot, cfg.gate_metric, cfg.gate_margin)
    if value is not None:
        from training.prediction.value_tracking import log_value

        with stage(f"logging {VALUE} model to MLflow"), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            logged[VALUE] = log_value(value, snapshot)
    return logged


def promotions(logged: dict[str, dict]) -> dict[str, str]:
    """Registered name -> version of the logged targets that passed the gate."""
    from core.catalog import predictor_name

    return {predictor_name(t): str(v["version"]) for t, v in logged.items() if v["promoted"]}


def summary_line(target: str, r: TargetResult) -> str:
    """One line: the chosen model against the others on the held-out window, and what scores."""
    from training.prediction.promotion import standing

    _, label = r.scored_by()
    plan = r.plan
    if not r.candidates or not r.test:
        return f"{target}: scored by {label}, BG/NBD without labels (no held-out window)"
    auc = r.candidates[r.chosen]["roc_auc"]
    refit = ", ".join(map(str, r.predictor.trained_on))
    return (
        f"{target} on the held-out window {plan.test}: {standing(r, 'log_loss')}; ROC-AUC "
        f"{auc:.3f}; refitted on cutoffs {refit}; scored by {label}"
    )


def value_line(value: ValueResult) -> str:
    """One line: the value model's choice on the held-out window, and what scores."""
    from training.prediction.clv import LABELS, METRIC

    _, label = value.scored_by()
    h = value.plan.horizon_days
    if not value.candidates:
        return f"value (CLV, {h} days): no held-out window; scored by {label}"
    scores = ", ".join(
        f"{LABELS[k]} {m[METRIC]:.3f}" for k, m in value.candidates.items() if k != value.chosen
    )
    ours = value.candidates[value.chosen]
    return (
        f"value (CLV, {h} days) on the held-out window {value.plan.test}: Spearman "
        f"{ours[METRIC]:.3f} ({LABELS[value.chosen]}) against {scores}; top-10% revenue "
        f"capture {ours['capture_top_decile']:.1%}; scored by {label}"
    )


def fit_value_only(
    transactions,
    customers,
    clean_transactions: pd.DataFrame,
    scoring_features: pd.DataFrame,
    as_of: date,
    cleaning,
    features_cfg,
    cfg: PredictionConfig,
) -> ValueResult:
    """The value model alone, planned and fitted as `fit` does (benchmarks and tests)."""
    first, _, anchor = span(clean_transactions, as_of)
    value_plan = plans(anchor, first, cfg)[-1]
    cutoffs = sorted({*value_plan.cutoffs, *value_plan.refit_between()})
    backtest = dataset.build(
        transactions, customers, clean_transactions, cutoffs, cleaning, features_cfg,
        cfg.repurchase_days, cfg.churn_days,
        categories=scoring_features.attrs.get("categories"),
    )  # fmt: skip
    return fit_value(value_plan, backtest, clean_transactions, scoring_features, cfg)
