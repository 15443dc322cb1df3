"""What a campaign cost (costs.toml) and the segmentation-benefit questionnaire
([segmentation_benefit] of the config file), both checked on load.

costs.toml:

    per_contact = 0.8        # cost of one treated (contacted) customer
    margin = 1.0             # share of revenue that is profit (1: compare revenue with cost)
    [fixed]                  # fixed costs of the campaign, any names (labour, technology, ...)
    labour = 2000
    technology = 500
    [per_contact_segments]   # optional per-segment contact cost, by segment key
    champions = 2.5
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import ConfigError

COST_KEYS = ("per_contact", "margin", "fixed", "per_contact_segments")


@dataclass(frozen=True)
class Costs:
    per_contact: float = 0.0
    margin: float = 1.0
    fixed: dict[str, float] = field(default_factory=dict)
    per_contact_segments: dict[str, float] = field(default_factory=dict)

    @property
    def fixed_total(self) -> float:
        return float(sum(self.fixed.values()))


def _number(where: str, key: str, value, lo: float = 0.0, hi: float = float("inf")) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
        raise ConfigError(f"{where}: {key} = {value!r}: expected a number in [{lo}, {hi}]")
    return float(value)


def _numbers(where: str, key: str, table) -> dict[str, float]:
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: [{key}] must be a table of name = number")
    return {str(k): _number(where, f"{key}.{k}", v) for k, v in table.items()}


def load_costs(path: str | Path | None) -> Costs:
    """costs.toml as Costs (no file: no costs, ROI not measured)."""
    if path is None:
        return Costs()
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such costs file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read it as a UTF-8 text file ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    unknown = sorted(set(data) - set(COST_KEYS))
    if unknown:
        raise ConfigError(
            f"{path}: unknown key(s) {', '.join(unknown)}; known: {', '.join(COST_KEYS)}"
        )
    w = str(path)
    return Costs(
        per_contact=_number(w, "per_contact", data.get("per_contact", 0.0)),
        margin=_number(w, "margin", data.get("margin", 1.0), 0.0, 1.0),
        fixed=_numbers(w, "fixed", data.get("fixed", {})),
        per_contact_segments=_numbers(
            w, "per_contact_segments", data.get("per_contact_segments", {})
        ),
    )


# seed 004: 细分效益评估矩阵, each dimension 1-5; below the threshold segmenting no longer pays
DIMENSIONS = ("market_maturity", "product_standardisation", "decision_cycle", "segmentation_roi")
DIMENSION_LABELS = {
    "market_maturity": "market maturity (市场成熟度)",
    "product_standardisation": "product standardisation (产品标准化程度)",
    "decision_cycle": "decision cycle (决策周期)",
    "segmentation_roi": "segmentation ROI (细分投入产出比)",
}


@dataclass(frozen=True)
class Benefit:
    """The segmentation-benefit questionnaire: scores 1-5, weights, the threshold."""

    scores: dict[str, float]
    weights: dict[str, float]
    threshold: float = 3.5

    @property
    def score(self) -> float:
        total = sum(self.weights.values())
        return sum(self.scores[d] * self.weights[d] for d in DIMENSIONS) / total

    @property
    def advice(self) -> str:
        if self.score >= self.threshold:
            return (
                f"score {self.score:.2f} >= {self.threshold:g}: segmenting is worth its cost; "
                "keep a strategy per segment"
            )
        return (
            f"score {self.score:.2f} < {self.threshold:g}: the seeds' advice is to pause "
            "segmenting (one strategy for all) until the market or the product changes"
        )

    @classmethod
    def from_dict(cls, data: dict) -> Benefit | None:
        """None for an empty table (the questionnaire is optional)."""
        if not data:
            return None
        known = {*DIMENSIONS, "weights", "threshold"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(
                f"[segmentation_benefit]: unknown key(s) {', '.join(unknown)}; "
                f"known: {', '.join(sorted(known))}"
            )
        w = "[segmentation_benefit]"
        missing = [d for d in DIMENSIONS if d not in data]
        if missing:
            raise ConfigError(f"{w}: missing score(s) {', '.join(missing)} (each 1-5)")
        scores = {d: _number(w, d, data[d], 1, 5) for d in DIMENSIONS}
        raw = data.get("weights", {})
        weights = {d: 1.0 for d in DIMENSIONS} | _numbers(w, "weights", raw)
        if set(weights) - set(DIMENSIONS):
            extra = ", ".join(sorted(set(weights) - set(DIMENSIONS)))
            raise ConfigError(f"{w}: weights for unknown dimension(s) {extra}")
        if sum(weights.values()) <= 0:
            raise ConfigError(f"{w}: the weights sum to 0")
        threshold = _number(w, "threshold", data.get("threshold", 3.5), 1, 5)
        return cls(scores, weights, threshold)
