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


def auc_rows(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """ROC-AUC of every row of (draws x customers) arrays by the rank-sum formula (ties count
    half, as in roc_auc_score); NaN for a row with one class."""
    from scipy.stats import rankdata

    ranks = rankdata(p, axis=-1)
    pos = y.sum(axis=-1)
    neg = y.shape[-1] - pos
    with np.errstate(divide="ignore", invalid="ignore"):
        return ((ranks * y).sum(axis=-1) - pos * (pos + 1) / 2) / (pos * neg)


def paired_bootstrap(
    y: np.ndarray,
    model: np.ndarray,
    baseline: np.ndarray,
    resamples: int = 200,
    seed: int = 0,
    max_rows: int = 20_000,
) -> dict[str, tuple[float, float, float]]:
    """Model minus baseline on the same customers, ROC-AUC and log loss: (difference, 2.5%,
    97.5%) over `resamples` bootstrap draws of the customers. A difference whose interval
    excludes 0 is more than the luck of this window. Windows above `max_rows` are subsampled
    once (seeded): the interval then is a little wider than the full window's."""
    rng = np.random.default_rng(seed)
    y = np.asarray(y, dtype=int)
    p = np.clip(np.column_stack([model, baseline]).astype(float), EPS, 1 - EPS)
    if len(y) > max_rows:
        keep = rng.choice(len(y), max_rows, replace=False)
        y, p = y[keep], p[keep]
    if len(np.unique(y)) < 2:
        return {}
    loss = -(y[:, None] * np.log(p) + (1 - y[:, None]) * np.log(1 - p))
    auc, logloss = [], []
    chunk = max(1, 4_000_000 // len(y))  # draws x customers per block: bounded memory
    for done in range(0, resamples, chunk):
        rows = rng.integers(0, len(y), (min(chunk, resamples - done), len(y)))
        yy = y[rows]
        auc.append(auc_rows(yy, p[:, 0][rows]) - auc_rows(yy, p[:, 1][rows]))
        logloss.append(loss[:, 0][rows].mean(axis=1) - loss[:, 1][rows].mean(axis=1))
    auc, logloss = np.concatenate(auc), np.concatenate(logloss)
    logloss = logloss[np.isfinite(auc)]  # a draw with one class has no AUC: left out of both
    auc = auc[np.isfinite(auc)]
    point = {
        "roc_auc": roc_auc_score(y, p[:, 0]) - roc_auc_score(y, p[:, 1]),
        "log_loss": loss[:, 0].mean() - loss[:, 1].mean(),
    }
    return {
        name: (float(point[name]), *map(float, np.percentile(values, [2.5, 97.5])))
        for name, values in (("roc_auc", auc), ("log_loss", logloss))
    }
