"""The statistics of a holdout test, vectorised over segments: power of a two-proportion test,
two-proportion and Welch intervals, Holm's correction, standardised mean differences."""

from __future__ import annotations

import numpy as np
from scipy import stats

ALPHA, POWER = 0.05, 0.8


def _z(alpha: float = ALPHA, power: float = POWER) -> float:
    return float(stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power))


def mde(p0, n_treat, n_control, alpha: float = ALPHA, power: float = POWER) -> np.ndarray:
    """Smallest absolute change of a conversion rate `p0` that a two-sided two-proportion test
    at `alpha` detects with `power` on groups of these sizes (variance taken at the baseline).
    NaN (shown "n/a") when a group is empty or the baseline is 0% or 100%: with no variance at
    the baseline the formula says 0, which would read as "detects any change"."""
    p0, nt, nc = (np.asarray(x, dtype=float) for x in (p0, n_treat, n_control))
    with np.errstate(divide="ignore", invalid="ignore"):
        out = _z(alpha, power) * np.sqrt(p0 * (1 - p0) * (1 / nt + 1 / nc))
    return np.where((nt > 0) & (nc > 0) & (p0 > 0) & (p0 < 1), out, np.nan)


def control_needed(p0, effect, ratio, alpha: float = ALPHA, power: float = POWER) -> np.ndarray:
    """Control size a two-proportion test needs to detect `p0` -> `p0 + effect` with `power`,
    with `ratio` treated customers per control customer."""
    p0, d, k = (np.asarray(x, dtype=float) for x in (p0, effect, ratio))
    p1 = np.clip(p0 + d, 0, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        n = _z(alpha, power) ** 2 * (p0 * (1 - p0) + p1 * (1 - p1) / k) / d**2
    return np.ceil(n)


def two_proportions(x_t, n_t, x_c, n_c, level: float = 0.95):
    """Difference of rates (treatment - control), its Wald interval (unpooled) and the two-sided
    p-value of the pooled z test. Arrays over segments."""
    x_t, n_t, x_c, n_c = (np.asarray(v, dtype=float) for v in (x_t, n_t, x_c, n_c))
    with np.errstate(divide="ignore", invalid="ignore"):
        pt, pc = x_t / n_t, x_c / n_c
        diff = pt - pc
        se = np.sqrt(pt * (1 - pt) / n_t + pc * (1 - pc) / n_c)
        pooled = (x_t + x_c) / (n_t + n_c)
        se0 = np.sqrt(pooled * (1 - pooled) * (1 / n_t + 1 / n_c))
        z = np.where(se0 > 0, diff / se0, 0.0)
    half = stats.norm.ppf(0.5 + level / 2) * se
    return diff, diff - half, diff + half, 2 * stats.norm.sf(np.abs(z))


def welch(mean_t, var_t, n_t, mean_c, var_c, n_c, level: float = 0.95):
    """Difference of means (treatment - control), its Welch interval and two-sided p-value."""
    mt, vt, nt, mc, vc, nc = (
        np.asarray(v, dtype=float) for v in (mean_t, var_t, n_t, mean_c, var_c, n_c)
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        a, b = vt / nt, vc / nc
        se = np.sqrt(a + b)
        df = (a + b) ** 2 / (a**2 / (nt - 1) + b**2 / (nc - 1))
        diff = mt - mc
        t = np.where(se > 0, diff / se, 0.0)
    df = np.where(np.isfinite(df) & (df > 0), df, 1.0)
    half = stats.t.ppf(0.5 + level / 2, df) * se
    return diff, diff - half, diff + half, 2 * stats.t.sf(np.abs(t), df)


def holm(p) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (family-wise error rate), NaN left as NaN."""
    p = np.asarray(p, dtype=float)
    out = np.full_like(p, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    m = len(ok)
    if m == 0:
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    adjusted = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out[order] = np.minimum(adjusted, 1.0)
    return out


def smd(frame, by: str, treated, columns: list[str]):
    """Standardised mean difference (treatment - control over the pooled standard deviation) of
    each of `columns` per value of `by`: a frame indexed by `by` with one column per feature."""
    import pandas as pd

    g = frame.assign(_t=np.asarray(treated, dtype=bool)).groupby([by, "_t"], observed=True)
    mean, var = g[columns].mean(), g[columns].var()
    t, c = (mean.xs(v, level="_t") for v in (True, False))
    vt, vc = (var.xs(v, level="_t") for v in (True, False))
    pooled = np.sqrt((vt + vc) / 2)
    out = (t - c) / pooled.where(pooled > 0)
    return out.fillna(0.0).reindex(pd.Index(frame[by].unique(), name=by)).fillna(0.0)
