"""Scheme-level comparison metrics, computed the same way for every kind so schemes compare:
sizes, revenue concentration, separation in one common space, bootstrap stability."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from sklearn.metrics import adjusted_rand_score

from training.sampling import sample_rows
from training.segmentation.base import Assigner, numeric
from training.segmentation.clustering import preprocessor, separation

COMMON_SPACE = ("recency_days", "frequency_orders", "monetary")


def sizes(labels: np.ndarray, revenue: np.ndarray) -> dict[str, float]:
    """Segment count, largest/smallest customer share, top revenue share and revenue HHI."""
    frame = pd.DataFrame({"s": labels, "r": np.nan_to_num(revenue).clip(min=0)})
    g = frame.groupby("s")["r"].agg(["size", "sum"])
    share = g["size"] / max(len(frame), 1)
    rev = g["sum"] / g["sum"].sum() if g["sum"].sum() > 0 else g["sum"] * 0
    return {
        "segments": float(len(g)),
        "largest_share": float(share.max()) if len(g) else 0.0,
        "smallest_share": float(share.min()) if len(g) else 0.0,
        "revenue_top_share": float(rev.max()) if len(g) else 0.0,
        "revenue_hhi": float((rev**2).sum()),
    }


def common_space(features: pd.DataFrame, rows: np.ndarray) -> np.ndarray | None:
    """Log-standardised recency, frequency and monetary of `rows` (None if a column is absent)."""
    if any(c not in features for c in COMMON_SPACE):
        return None
    x = np.column_stack([numeric(features, c)[rows] for c in COMMON_SPACE])
    return preprocessor("log_standard").fit_transform(x)


def eval_rows(n: int, size: int, seed: int) -> np.ndarray:
    return sample_rows(np.random.default_rng(seed), n, size)


def rfm_separation(
    features: pd.DataFrame, labels: np.ndarray, rows: np.ndarray
) -> dict[str, float]:
    """Separation of any scheme's segments in the common RFM space, on a sample of rows."""
    z = common_space(features, rows)
    if z is None:
        return {}
    return {f"rfm_{k}": v for k, v in separation(z, labels[rows]).items()}


def stability(
    refit: Callable[[pd.DataFrame, int], Assigner],
    features: pd.DataFrame,
    reference: np.ndarray,
    rows: np.ndarray,
    refits: int,
    sample: int,
    seed: int,
) -> float:
    """Mean adjusted Rand index between the fitted segments and those of `refits` refits on
    bootstrap samples, compared on `rows`. 1.0 = refitting never moves a customer."""
    if refits == 0 or len(features) < 2:
        return float("nan")
    rng = np.random.default_rng(seed + 1000)
    probe = features.iloc[rows]
    scores = []
    for b in range(refits):
        boot = features.iloc[rng.integers(0, len(features), min(len(features), sample))]
        scores.append(adjusted_rand_score(reference[rows], refit(boot, seed + b + 1).assign(probe)))
    return float(np.mean(scores))
