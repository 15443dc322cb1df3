"""Figures of the value model: the CLV distribution, predicted vs actual spend by decile of the
held-out window, and the classic BTYD check of predicted vs actual orders by past frequency."""

from __future__ import annotations

import numpy as np
import pandas as pd

from training.segmentation.plots import plt  # Agg backend and fonts, set up once


def distribution(clv: np.ndarray, horizon_days: int):
    """Histogram of CLV on a log scale (values spread over orders of magnitude)."""
    fig, ax = plt.subplots(figsize=(6, 4))
    positive = np.asarray(clv, float)
    positive = positive[np.isfinite(positive) & (positive > 0)]
    if len(positive):
        bins = np.logspace(np.log10(positive.min()), np.log10(positive.max()) + 1e-9, 40)
        ax.hist(positive, bins=bins)
        ax.set_xscale("log")
    ax.set_xlabel(f"predicted CLV over {horizon_days} days (log scale)")
    ax.set_ylabel("customers")
    ax.set_title("CLV distribution")
    fig.tight_layout()
    return fig


def deciles(table: pd.DataFrame):
    """Mean predicted and actual spend per decile of the prediction (1 = highest)."""
    fig, ax = plt.subplots(figsize=(6, 4))
    x = np.arange(len(table))
    ax.bar(x - 0.2, table["predicted"], width=0.4, label="predicted")
    ax.bar(x + 0.2, table["actual"], width=0.4, label="actual")
    ax.set_xticks(x, [str(d) for d in table.index])
    ax.set_xlabel("decile of predicted spend (1 = highest)")
    ax.set_ylabel("mean spend per customer")
    ax.set_title("held-out window: predicted vs actual spend")
    ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


def orders(table: pd.DataFrame):
    """Mean predicted vs actual orders by repeat orders before the window (7 = 7 or more)."""
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(table.index, table["predicted"], marker="o", label="predicted (BG/NBD)")
    ax.plot(table.index, table["actual"], marker="o", label="actual")
    ax.set_xlabel("repeat orders before the window (7 = 7 or more)")
    ax.set_ylabel("mean orders in the window")
    ax.set_title("held-out window: orders by past frequency")
    ax.legend(fontsize="small")
    fig.tight_layout()
    return fig
