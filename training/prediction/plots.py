"""Figures for a prediction target: calibration curves, top drivers, cumulative gains."""

from __future__ import annotations

import numpy as np
import pandas as pd

from training.segmentation.plots import plt  # Agg backend and fonts, set up once


def calibration(curves: dict[str, pd.DataFrame], target: str):
    fig, ax = plt.subplots(figsize=(6, 5))
    ax.plot([0, 1], [0, 1], color="grey", ls="--", lw=0.8, label="perfect")
    for name, table in curves.items():
        ax.plot(
            table["predicted"],
            table["observed"],
            marker="o",
            lw=2 if name == "model" else 1,
            label="LightGBM (calibrated)" if name == "model" else name,
        )
    ax.set_xlabel("mean predicted probability")
    ax.set_ylabel("observed rate")
    ax.set_title(f"{target}: calibration on the held-out window")
    ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


def drivers(importance: pd.Series, target: str, top: int = 15):
    s = importance.head(top).iloc[::-1]
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(s) + 1.2))
    ax.barh(s.index, s.to_numpy())
    ax.set_xlabel("mean |contribution| (log-odds)")
    ax.set_title(f"{target}: top drivers")
    fig.tight_layout()
    return fig


def gains(y: np.ndarray, scores: dict[str, np.ndarray], target: str):
    """Cumulative share of positives captured against share of customers contacted."""
    fig, ax = plt.subplots(figsize=(6, 5))
    n = len(y)
    for name, p in scores.items():
        order = np.argsort(-p, kind="stable")
        captured = np.cumsum(y[order]) / max(y.sum(), 1)
        ax.plot(np.arange(1, n + 1) / n, captured, label=name)
    ax.plot([0, 1], [0, 1], color="grey", ls="--", lw=0.8, label="random")
    ax.set_xlabel("share of customers, highest score first")
    ax.set_ylabel("share of positives captured")
    ax.set_title(f"{target}: cumulative gains")
    ax.legend(fontsize="small")
    fig.tight_layout()
    return fig
