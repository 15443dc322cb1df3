"""The promotion gate: a new model becomes the champion only if, on the same held-out window,
it beats every baseline and the current champion (re-scored on that window)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from training.prediction.metrics import evaluate

METRIC = "roc_auc"


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str
    champion_version: str | None = None
    champion_metrics: dict | None = None


def decide(
    result, champion=None, champion_version: str | None = None, metric: str = METRIC
) -> Decision:
    """`result` is a TargetResult; `champion` the current champion's Predictor (or None)."""
    score = result.metrics[metric]
    if not np.isfinite(score):
        return Decision(False, f"{metric} undefined on the test window (one class only)")
    beaten = {n: m[metric] for n, m in result.baselines.items() if not score > m[metric]}
    if beaten:
        worst = ", ".join(f"{n} {v:.4f}" for n, v in beaten.items())
        return Decision(False, f"{metric} {score:.4f} does not beat baseline(s) {worst}")
    if champion is None:
        return Decision(True, f"{metric} {score:.4f} beats every baseline; no champion yet")
    xt, yt, fit = result.test
    missing = [c for c in champion.columns if c not in xt.columns]
    if missing:
        return Decision(
            True,
            f"{metric} {score:.4f} beats every baseline; champion v{champion_version} cannot score "
            f"this window (its inputs {', '.join(missing[:5])} are gone), so it is replaced",
            champion_version,
        )
    theirs = evaluate(yt, champion.predict_proba(xt, fit))
    if score > theirs[metric]:
        return Decision(
            True,
            f"{metric} {score:.4f} beats every baseline and champion v{champion_version} "
            f"({theirs[metric]:.4f}) on the same window",
            champion_version,
            theirs,
        )
    return Decision(
        False,
        f"{metric} {score:.4f} does not beat champion v{champion_version} "
        f"({theirs[metric]:.4f}) on the same window",
        champion_version,
        theirs,
    )
