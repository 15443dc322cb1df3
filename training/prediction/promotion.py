"""The promotion gate: the target's model is whichever wins the held-out test window (LightGBM
or a baseline, `TargetResult.chosen`); it becomes the champion only if it also beats the current
champion re-scored on that same window.

The yardstick is a proper scoring rule by default, log loss: what custseg serves is a
probability, so it must be both well ranked and well calibrated. `gate_metric` in
`[prediction]` can make it roc_auc, pr_auc or brier instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import numpy as np

from training.prediction.metrics import HIGHER_IS_BETTER, evaluate

METRIC = "log_loss"
GATE_METRICS = ("log_loss", "roc_auc", "pr_auc", "brier")
LABELS = {
    "lightgbm": "LightGBM",
    "recency_rule": "recency rule",
    "logistic_rfm": "logistic RFM",
    "bg_nbd": "BG/NBD",
}


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str
    champion_version: str | None = None
    champion_metrics: dict | None = None
    metric: str = METRIC


def standing(result, metric: str) -> str:
    """How the chosen model stands against the others on the test window, in one phrase."""
    scores = {
        n: m[metric] for n, m in result.candidates.items() if np.isfinite(m.get(metric, np.nan))
    }
    chosen = result.chosen
    others = ", ".join(f"{LABELS.get(n, n)} {v:.4f}" for n, v in scores.items() if n != chosen)
    head = f"{metric} {scores[chosen]:.4f}: {LABELS.get(chosen, chosen)}"
    return f"{head} beats {others}" if others else f"{head}, the only model"


def saw_test_labels(champion, test) -> bool:
    """Did the champion learn from labels inside this test window? Then re-scoring it there
    would flatter it."""
    trained_on = getattr(champion, "trained_on", ()) or ()
    reach = timedelta(days=champion.horizon_days)
    return bool(trained_on) and max(trained_on) + reach > test


def decide(
    result,
    champion=None,
    champion_version: str | None = None,
    metric: str = METRIC,
    margin: float = 0.0,
) -> Decision:
    """`result` is a TargetResult; `champion` the current champion's model (or None). Against
    the champion the new model must win by more than `margin` (refits of the same data differ
    by a little; a tie of that size is not a reason to swap models)."""

    def verdict(promote: bool, reason: str, theirs: dict | None = None) -> Decision:
        return Decision(promote, reason, champion_version, theirs, metric)

    score = result.candidates.get(result.chosen, {}).get(metric, np.nan)
    if not result.test or not np.isfinite(score):
        why = "no held-out window with both outcomes"
        if champion is None:
            return verdict(True, f"{why}: BG/NBD without labels; no champion yet")
        return verdict(False, f"{why} to compare with champion v{champion_version}: it stays")
    lead = standing(result, metric)
    xt, yt, fit = result.test
    plan = result.plan
    if champion is None:
        return verdict(True, f"{lead}; no champion yet")
    if champion.horizon_days != plan.horizon_days:
        return verdict(
            True,
            f"{lead}; champion v{champion_version} predicts a {champion.horizon_days}-day "
            f"horizon, this model {plan.horizon_days} days, so the new definition replaces it",
        )
    missing = [c for c in champion.columns if c not in xt.columns]
    if missing:
        return verdict(
            True,
            f"{lead}; champion v{champion_version} cannot score this window (its inputs "
            f"{', '.join(missing[:5])} are gone), so it is replaced",
        )
    if saw_test_labels(champion, plan.test):
        return verdict(
            True,
            f"{lead}; champion v{champion_version} learned from labels inside this test window "
            f"(cutoffs up to {max(champion.trained_on)}), so it cannot be re-scored fairly: the "
            "model trained on fresher labels replaces it",
        )
    theirs = evaluate(yt, champion.predict_proba(xt, fit))
    gain = (score - theirs[metric]) * (1 if HIGHER_IS_BETTER[metric] else -1)
    if gain > margin:
        return verdict(
            True,
            f"{lead}, and champion v{champion_version} ({theirs[metric]:.4f}) on the same window",
            theirs,
        )
    return verdict(
        False,
        f"{lead}, but not champion v{champion_version} ({theirs[metric]:.4f}) by more than "
        f"{margin:g} on the same window: the champion stays",
        theirs,
    )
