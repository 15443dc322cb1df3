"""The promotion gate: a new model becomes the champion only if, on the same held-out window,
it beats every baseline and the current champion (re-scored on that window).

The yardstick is a proper scoring rule by default, log loss: what custseg serves is a
probability, so it must be both well ranked and well calibrated. `gate_metric` in
`[prediction]` can make it roc_auc, pr_auc or brier instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from training.prediction.metrics import HIGHER_IS_BETTER, evaluate

METRIC = "log_loss"
GATE_METRICS = ("log_loss", "roc_auc", "pr_auc", "brier")


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str
    champion_version: str | None = None
    champion_metrics: dict | None = None
    metric: str = METRIC


def better(metric: str, a: float, b: float) -> bool:
    """Is `a` strictly better than `b` on `metric`?"""
    return a > b if HIGHER_IS_BETTER[metric] else a < b


def decide(
    result,
    champion=None,
    champion_version: str | None = None,
    metric: str = METRIC,
    margin: float = 0.0,
) -> Decision:
    """`result` is a TargetResult; `champion` the current champion's Predictor (or None). Against
    the champion the new model must win by more than `margin` (refits of the same data differ
    by a little; a tie of that size is not a reason to swap models)."""
    score = result.metrics[metric]

    def verdict(promote: bool, reason: str, theirs: dict | None = None) -> Decision:
        return Decision(promote, reason, champion_version, theirs, metric)

    xt, yt, fit = result.test
    if not np.isfinite(score) or len(np.unique(yt)) < 2:
        return verdict(False, "the test window has one class only: nothing to compare on")
    beaten = {
        n: m[metric] for n, m in result.baselines.items() if not better(metric, score, m[metric])
    }
    if beaten:
        worst = ", ".join(f"{n} {v:.4f}" for n, v in beaten.items())
        return verdict(False, f"{metric} {score:.4f} does not beat baseline(s) {worst}")
    if champion is None:
        return verdict(True, f"{metric} {score:.4f} beats every baseline; no champion yet")
    if champion.horizon_days != result.plan.horizon_days:
        return verdict(
            True,
            f"{metric} {score:.4f} beats every baseline; champion v{champion_version} predicts a "
            f"{champion.horizon_days}-day horizon, this model {result.plan.horizon_days} days, "
            "so the new definition replaces it",
        )
    missing = [c for c in champion.columns if c not in xt.columns]
    if missing:
        return verdict(
            True,
            f"{metric} {score:.4f} beats every baseline; champion v{champion_version} cannot score "
            f"this window (its inputs {', '.join(missing[:5])} are gone), so it is replaced",
        )
    theirs = evaluate(yt, champion.predict_proba(xt, fit))
    gain = (score - theirs[metric]) * (1 if HIGHER_IS_BETTER[metric] else -1)
    if gain > margin:
        return verdict(
            True,
            f"{metric} {score:.4f} beats every baseline and champion v{champion_version} "
            f"({theirs[metric]:.4f}) on the same window",
            theirs,
        )
    return verdict(
        False,
        f"{metric} {score:.4f} does not beat champion v{champion_version} "
        f"({theirs[metric]:.4f}) by more than {margin:g} on the same window",
        theirs,
    )
