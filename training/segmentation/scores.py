"""RFM quintile scores (1-5, recency reversed) and the named RFM segment map over (R, F)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.errors import ConfigError
from training.segmentation.base import Segment, numeric
from training.segmentation.rules import _segment
from training.segmentation.spec import Options, SchemeSpec

QUANTILES = (0.2, 0.4, 0.6, 0.8)


def score(values: np.ndarray, edges: np.ndarray, reverse: bool = False) -> np.ndarray:
    """1 + the number of edges strictly below each value (ties stay together); 5 - that when
    `reverse`. Missing values score lowest (1)."""
    s = 1 + np.searchsorted(edges, values, side="left")
    s = 6 - s if reverse else s
    return np.where(np.isnan(values), 1, s).astype(np.int8)


@dataclass(frozen=True)
class Cell:
    segment: Segment
    r: tuple[int, int]
    f: tuple[int, int]


@dataclass(frozen=True)
class ScoreAssigner:
    recency: str
    frequency: str
    monetary: str
    edges: dict[str, np.ndarray]  # quintile edges per column, learned at fit
    grid: np.ndarray  # 5 x 5 segment index by (R-1, F-1)
    keys: tuple[str, ...]

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.recency, self.frequency, self.monetary)

    def learned(self) -> dict:
        return {f"{k}_edges": [round(float(e), 4) for e in v] for k, v in self.edges.items()}

    def scores(self, features: pd.DataFrame) -> pd.DataFrame:
        """R, F and M scores per row (M is reported, the map uses R and F)."""
        return pd.DataFrame(
            {
                "r": score(numeric(features, self.recency), self.edges["r"], reverse=True),
                "f": score(numeric(features, self.frequency), self.edges["f"]),
                "m": score(numeric(features, self.monetary), self.edges["m"]),
            },
            index=features.index,
        )

    def assign(self, features: pd.DataFrame) -> np.ndarray:
        s = self.scores(features)
        idx = self.grid[s["r"].to_numpy() - 1, s["f"].to_numpy() - 1]
        return np.asarray(self.keys, dtype=object)[idx]


@dataclass(frozen=True)
class ScoresScheme:
    recency: str
    frequency: str
    monetary: str
    cells: tuple[Cell, ...]

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.recency, self.frequency, self.monetary)

    @classmethod
    def parse(cls, spec: SchemeSpec, strategies, where: str) -> ScoresScheme:
        opts = Options(where, spec.options)
        cols = {
            k: opts.get(k, str, d)
            for k, d in (
                ("recency", "recency_days"),
                ("frequency", "frequency_orders"),
                ("monetary", "monetary"),
            )
        }
        cells = []
        for i, entry in enumerate(opts.get("map", list, required=True)):
            w = f"{where} map[{i}]"
            if not isinstance(entry, dict):
                raise ConfigError(
                    f"{w}: expected {{ key, en, zh, r = [lo, hi], f = [lo, hi], strategy }}"
                )
            seg = _segment(w, entry, strategies, frozenset({"r", "f"}))
            cells.append(Cell(seg, _range(w, entry, "r"), _range(w, entry, "f")))
        opts.done()
        named: dict[str, Segment] = {}
        for cell in cells:
            if named.setdefault(cell.segment.key, cell.segment) != cell.segment:
                raise ConfigError(
                    f"{where}: map key {cell.segment.key!r} appears with different names or "
                    "strategies; repeat it with the same en, zh and strategy"
                )
        scheme = cls(cols["recency"], cols["frequency"], cols["monetary"], tuple(cells))
        grid = scheme._grid()
        missing = [f"R{r + 1}F{f + 1}" for r, f in zip(*np.nonzero(grid < 0), strict=True)]
        if missing:
            raise ConfigError(
                f"{where}: map leaves (R, F) cell(s) {', '.join(missing)} without a segment"
            )
        return scheme

    def _grid(self) -> np.ndarray:
        grid = np.full((5, 5), -1, dtype=np.int16)
        for i, cell in reversed(list(enumerate(self.cells))):  # earlier entries win
            grid[cell.r[0] - 1 : cell.r[1], cell.f[0] - 1 : cell.f[1]] = i
        return grid

    def fit(self, features: pd.DataFrame, seed: int = 0) -> ScoreAssigner:
        edges = {
            k: np.nanquantile(numeric(features, col), QUANTILES) if len(features) else np.zeros(4)
            for k, col in (("r", self.recency), ("f", self.frequency), ("m", self.monetary))
        }
        return ScoreAssigner(
            self.recency,
            self.frequency,
            self.monetary,
            edges,
            self._grid(),
            tuple(c.segment.key for c in self.cells),
        )

    def describe(self, assigner: ScoreAssigner, features: pd.DataFrame) -> list[Segment]:
        return list({c.segment.key: c.segment for c in self.cells}.values())  # first wins


def _range(where: str, entry: dict, key: str) -> tuple[int, int]:
    value = entry.get(key)
    if not (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 5 for v in value)
        and value[0] <= value[1]
    ):
        raise ConfigError(f"{where}: {key} = {value!r}: expected [lo, hi] scores within 1-5")
    return value[0], value[1]
