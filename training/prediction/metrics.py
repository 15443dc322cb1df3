"""How good a probability is: ranking, calibration and the top decile that campaigns target."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

EPS = 1e-6
NAMES = ("roc_auc", "pr_auc", "brier", "log_loss", "lift_top_decile", "capture_top_decile")
HIGHER_IS_BETTER = {
    "roc_auc": True,
    "pr_auc": True,
    "brier": False,
    "log_loss": False,
    "lift_top_decile": True,
    "capture_top_decile": True,
}


def top_decile(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    """(lift, capture) of the 10% highest scored: their positive rate over the base rate, and
    their share of all positives. Ties broken by a stable sort on -p."""
    n = max(int(np.ceil(len(y) * 0.1)), 1)
    top = np.argsort(-p, kind="stable")[:n]
    base, positives = y.mean(), y.sum()
    lift = float(y[top].mean() / base) if base > 0 else float("nan")
    capture = float(y[top].sum() / positives) if positives > 0 else float("nan")
    return lift, capture


def evaluate(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    y = np.asarray(y, dtype=int)
    p = np.clip(np.asarray(p, dtype=float), EPS, 1 - EPS)
    out = {"n": float(len(y)), "base_rate": float(y.mean()) if len(y) else float("nan")}
    both = len(np.unique(y)) == 2
    out["roc_auc"] = float(roc_auc_score(y, p)) if both else float("nan")
    out["pr_auc"] = float(average_precision_score(y, p)) if both else float("nan")
    out["brier"] = float(brier_score_loss(y, p)) if len(y) else float("nan")
    out["log_loss"] = float(log_loss(y, p, labels=[0, 1])) if len(y) else float("nan")
    out["lift_top_decile"], out["capture_top_decile"] = (
        top_decile(y, p) if len(y) else (np.nan,) * 2
    )
    return out


def calibration_table(y: np.ndarray, p: np.ndarray, bins: int = 10):
    """Mean predicted vs observed rate in quantile bins (for the calibration curve)."""
    import pandas as pd

    frame = pd.DataFrame({"y": np.asarray(y, float), "p": np.asarray(p, float)})
    frame["bin"] = pd.qcut(frame["p"].rank(method="first"), min(bins, len(frame)), labels=False)
    return frame.groupby("bin").agg(
        predicted=("p", "mean"), observed=("y", "mean"), n=("y", "size")
    )
