"""Backtest windows: which cutoffs train, validate and test a target with horizon h.

The held-out test cutoff is as_of - h (its labels end at the as-of date) and the validation
cutoff h earlier (its labels end where the test window starts), so nothing that fits a model
looks into the test period. Training cutoffs come before the validation cutoff:

- `backtest` (enough history): h and more before it, `window_step_days` apart, so no training
  label looks into the validation period either;
- `overlapping` (a short log): closer together (a step shorter than the horizon), up to the
  validation cutoff, their label windows overlapping. Validation then holds customers out
  instead of a later window of the same customers (`dataset.split`); the test window stays
  untouched, so the comparison with the baselines stays out of time and honest.

Cutoffs without `min_history_days` of history are dropped; the plan says so in `notes`. When not
even an overlapping window fits, `ShortHistory` says so: the target is scored by BG/NBD, which
needs no labels (`training.prediction.train.fit_unsupervised`).

After the comparison the chosen model is refitted on every labelled cutoff (`refit`): the
freshest labels (cutoff as_of - h) describe the customers as they are now.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from training.prediction.config import PredictionConfig

BACKTEST, OVERLAPPING, UNSUPERVISED = "backtest", "overlapping", "unsupervised"


@dataclass(frozen=True)
class WindowPlan:
    target: str
    horizon_days: int
    train: tuple[date, ...]  # oldest first
    valid: date | None
    test: date | None  # None: no held-out window at all (a log shorter than the horizon)
    notes: tuple[str, ...] = field(default=())
    mode: str = BACKTEST

    @property
    def cutoffs(self) -> tuple[date, ...]:
        return tuple(dict.fromkeys(d for d in (*self.train, self.valid, self.test) if d))

    def refit_between(self, most: int = 4) -> tuple[date, ...]:
        """Overlapping windows: up to `most` more labelled cutoffs evenly between validation and
        test, for the final refit only (their labels end by the as-of date; a short log has
        few windows, and the freshest are what the chosen model should learn from)."""
        if self.mode != OVERLAPPING or self.valid is None or self.test is None:
            return ()
        span = (self.test - self.valid).days
        return tuple(self.valid + timedelta(days=round(span * k / (most + 1)))
                     for k in range(1, most + 1))  # fmt: skip

    @property
    def refit(self) -> tuple[date, ...]:
        """The cutoffs the chosen model is finally fitted on: every labelled one, the freshest
        (the test cutoff, as_of - h) included."""
        return self.cutoffs


class ShortHistory(Exception):
    """Not enough history for even one training window (message says how much is needed)."""


class NoSignal(Exception):
    """A window's labels are all one class: nothing to learn or to score against."""


def horizon(target: str, cfg: PredictionConfig) -> int:
    """Days of the target's label window (`value`: the CLV horizon)."""
    return {"repurchase": cfg.repurchase_days, "value": cfg.clv_days}.get(target, cfg.churn_days)


def overlap_step(h: int, cfg: PredictionConfig) -> int:
    """Days between overlapping training cutoffs: shorter than the horizon, at least a week."""
    return max(7, min(cfg.window_step_days, h // 6))


def plan(target: str, as_of: date, first_order: date, cfg: PredictionConfig) -> WindowPlan:
    h = horizon(target, cfg)
    test = as_of - timedelta(days=h)
    valid = test - timedelta(days=h)
    earliest = first_order + timedelta(days=cfg.min_history_days)

    def cutoffs(first_gap: int, step: int) -> list[date]:
        wanted = [valid - timedelta(days=first_gap + i * step) for i in range(cfg.train_windows)]
        return sorted(d for d in wanted if d >= earliest)

    mode, step = BACKTEST, cfg.window_step_days
    train = cutoffs(h, step)
    if not train:
        mode, step = OVERLAPPING, overlap_step(h, cfg)
        # the shortest log with validation and test windows: the validation cutoff alone,
        # its customers split by `dataset.split` into training and validation
        train = cutoffs(step, step) or ([valid] if valid >= earliest else [])
    if not train:
        need = 2 * h + step + cfg.min_history_days
        raise ShortHistory(
            f"{target}: the data runs from {first_order} to {as_of} ({(as_of - first_order).days} "
            f"days); labelled training windows for a {h}-day horizon need at least {need} days "
            f"(validation and test windows of {h} days after {cfg.min_history_days} days of "
            "history)"
        )
    notes = []
    if mode == OVERLAPPING:
        notes.append(
            f"{target}: history is short for separate {h}-day windows, so {len(train) + 1} "
            f"cutoffs {step} days apart with overlapping labels, validated on customers held out "
            "(the test window stays held out)"
        )
    elif len(train) < cfg.train_windows:
        notes.append(
            f"{target}: history is short, so {len(train)} training window(s) instead of "
            f"{cfg.train_windows} (earliest usable cutoff {earliest})"
        )
    return WindowPlan(target, h, tuple(train), valid, test, tuple(notes), mode)


def unsupervised(target: str, as_of: date, first_order: date, cfg: PredictionConfig, why: str):
    """The plan of a target scored by BG/NBD alone: no training windows; a test window when the
    log is longer than the horizon (BG/NBD fitted on the history before it, scored on it)."""
    h = horizon(target, cfg)
    test = as_of - timedelta(days=h)
    held_out = test if test > first_order else None
    return WindowPlan(target, h, (), None, held_out, (why,), UNSUPERVISED)
