"""RFM rule thresholds: ordered segments with feature bounds; the first match wins."""

from __future__ import annotations

import operator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.errors import ConfigError
from training.segmentation.base import Segment, numeric
from training.segmentation.spec import Options, SchemeSpec, check_strategy

BOUNDS = {"min": operator.ge, "max": operator.le, "above": operator.gt, "below": operator.lt}
SEGMENT_KEYS = {"key", "en", "zh", "strategy"}


@dataclass(frozen=True)
class Condition:
    column: str
    bound: str  # min | max | above | below
    value: float
    missing: bool = False  # a missing value satisfies it (`missing = true` in the scheme file)

    def holds(self, features: pd.DataFrame) -> np.ndarray:
        """Missing values satisfy a bound only when the condition says so (`missing = true`:
        learned rules place a missing value where the tree did, at the training median)."""
        values = numeric(features, self.column)
        with np.errstate(invalid="ignore"):
            held = BOUNDS[self.bound](values, self.value)
        return held | np.isnan(values) if self.missing else held


@dataclass(frozen=True)
class Rule:
    segment: Segment
    conditions: tuple[Condition, ...]


@dataclass(frozen=True)
class RuleAssigner:
    rules: tuple[Rule, ...]
    default: Segment

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(c.column for r in self.rules for c in r.conditions))

    def assign(self, features: pd.DataFrame) -> np.ndarray:
        n = len(features)
        matches = [
            np.logical_and.reduce([c.holds(features) for c in r.conditions] or [np.ones(n, bool)])
            for r in self.rules
        ]
        if not self.rules:
            return np.full(n, self.default.key, dtype=object)
        keys = [r.segment.key for r in self.rules]
        return np.select(matches, keys, self.default.key).astype(object)


@dataclass(frozen=True)
class RulesScheme:
    assigner: RuleAssigner

    @property
    def columns(self) -> tuple[str, ...]:
        return self.assigner.columns

    @classmethod
    def parse(cls, spec: SchemeSpec, strategies, where: str) -> RulesScheme:
        opts = Options(where, spec.options)
        default = _segment(where + " default", opts.get("default", dict, required=True), strategies)
        rules = []
        for i, entry in enumerate(opts.get("segments", list, required=True)):
            w = f"{where} segments[{i}]"
            if not isinstance(entry, dict):
                raise ConfigError(f"{w}: expected a table with key, en, zh, strategy and bounds")
            seg = _segment(w, {k: v for k, v in entry.items() if k in SEGMENT_KEYS}, strategies)
            conds = []
            for column, bounds in entry.items():
                if column in SEGMENT_KEYS:
                    continue
                if not isinstance(bounds, dict) or not bounds:
                    raise ConfigError(
                        f"{w} ({seg.key}): {column} = {bounds!r}: expected bounds like "
                        "{ min = 5 } or { min = 500, below = 2000 }"
                    )
                missing = bounds.get("missing", False)
                if not isinstance(missing, bool) or set(bounds) == {"missing"}:
                    raise ConfigError(
                        f"{w} ({seg.key}): {column}.missing = {missing!r}: expected true or "
                        "false, next to at least one bound"
                    )
                for bound, value in bounds.items():
                    if bound == "missing":
                        continue
                    if bound not in BOUNDS:
                        raise ConfigError(
                            f"{w} ({seg.key}): {column}.{bound}: unknown bound; use "
                            f"{', '.join(BOUNDS)} (and missing = true)"
                        )
                    if isinstance(value, bool) or not isinstance(value, int | float):
                        raise ConfigError(
                            f"{w} ({seg.key}): {column}.{bound} = {value!r}: expected a number"
                        )
                    conds.append(Condition(column, bound, float(value), missing))
            rules.append(Rule(seg, tuple(conds)))
        keys = [r.segment.key for r in rules] + [default.key]
        dup = sorted({k for k in keys if keys.count(k) > 1})
        if dup:
            raise ConfigError(f"{where}: segment key(s) used twice: {', '.join(dup)}")
        opts.done()
        return cls(RuleAssigner(tuple(rules), default))

    learns = False  # fixed thresholds: refitting cannot move anyone (no stability to measure)

    def fit(self, features: pd.DataFrame, seed: int = 0) -> RuleAssigner:
        """Fixed thresholds: nothing is learned from the data."""
        return self.assigner

    def describe(self, assigner: RuleAssigner, features: pd.DataFrame) -> list[Segment]:
        return [r.segment for r in assigner.rules] + [assigner.default]


RESERVED = {"all"}  # the profile's overall row


def _segment(where: str, entry: dict, strategies, extra: frozenset = frozenset()) -> Segment:
    """A Segment from {key, en, zh, strategy} (+ `extra` keys the caller reads itself); shared
    by every kind with configured names."""
    unknown = sorted(set(entry) - SEGMENT_KEYS - extra)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}")
    for k in ("key", "en", "zh"):
        if not isinstance(entry.get(k), str) or not entry[k]:
            raise ConfigError(f"{where}: needs a text {k!r} (key, en, zh, strategy)")
    if entry["key"] in RESERVED:
        raise ConfigError(f"{where}: key {entry['key']!r} is reserved; choose another")
    return Segment(
        entry["key"],
        entry["en"],
        entry["zh"],
        check_strategy(where, entry.get("strategy"), strategies),
    )
