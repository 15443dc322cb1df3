"""Backtest windows: which cutoffs train, validate and test a target with horizon h.

Out of time and never overlapping: the held-out test cutoff is as_of - h (its labels end at the
as-of date), the validation cutoff is h earlier (its labels end where the test window starts),
and the training cutoffs are h and more earlier still, `window_step_days` apart, so no training
label looks into the validation or test period. Cutoffs without `min_history_days` of history
are dropped; the plan says so in `notes`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from training.prediction.config import PredictionConfig


@dataclass(frozen=True)
class WindowPlan:
    target: str
    horizon_days: int
    train: tuple[date, ...]  # oldest first
    valid: date
    test: date
    notes: tuple[str, ...] = field(default=())

    @property
    def cutoffs(self) -> tuple[date, ...]:
        return (*self.train, self.valid, self.test)


class ShortHistory(Exception):
    """Not enough history for even one training window (message says how much is needed)."""


class NoSignal(Exception):
    """A window's labels are all one class: nothing to learn or to score against."""


def horizon(target: str, cfg: PredictionConfig) -> int:
    return cfg.repurchase_days if target == "repurchase" else cfg.churn_days


def plan(target: str, as_of: date, first_order: date, cfg: PredictionConfig) -> WindowPlan:
    h = horizon(target, cfg)
    test = as_of - timedelta(days=h)
    valid = test - timedelta(days=h)
    wanted = [
        valid - timedelta(days=h + i * cfg.window_step_days) for i in range(cfg.train_windows)
    ]
    earliest = first_order + timedelta(days=cfg.min_history_days)
    train = sorted(d for d in wanted if d >= earliest)
    if not train:
        need = 3 * h + cfg.min_history_days
        raise ShortHistory(
            f"{target}: the data runs from {first_order} to {as_of} ({(as_of - first_order).days} "
            f"days); a {h}-day horizon needs at least {need} days (train, validation and test "
            f"windows of {h} days after {cfg.min_history_days} days of history)"
        )
    notes = []
    if len(train) < cfg.train_windows:
        notes.append(
            f"{target}: history is short, so {len(train)} training window(s) instead of "
            f"{cfg.train_windows} (earliest usable cutoff {earliest})"
        )
    return WindowPlan(target, h, tuple(train), valid, test, tuple(notes))
