"""The `[baskets]` slice of the config file: thresholds of the association rules and the
settings of the next-best products."""

from __future__ import annotations

from dataclasses import dataclass, fields

from core.errors import ConfigError, check_keys

LEVELS = ("product", "category")


@dataclass(frozen=True)
class BasketConfig:
    level: str = "product"  # items of a basket: product or category
    min_support: float = 0.005  # share of baskets holding both X and Y
    min_confidence: float = 0.1  # share of the baskets with X that also hold Y
    min_lift: float = 1.0
    min_count: int = 5  # baskets holding both X and Y, at least (small segments)
    max_antecedent: int = 1  # 2: also X1, X2 -> Y (triples over the frequent pairs)
    top_k: int = 3  # next-best products per customer
    horizon_days: int = 90  # out-of-time check: history up to as_of - horizon, then compare
    repeat_after_days: int = 0  # 0: never offer what the customer bought; N: not in N days
    shrink: float = 10.0  # co-occurrence score n_xy / (n_x + shrink): rare X weigh less
    min_item_baskets: int = 2  # next-best model: items in fewer baskets are left out of it
    top_rules: int = 10  # rules per segment on the page and in the report
    alpha: float = 0.05  # distinctive rules: one-sided test, Bonferroni within a segment

    @classmethod
    def from_dict(cls, data: dict) -> BasketConfig:
        """The `[baskets]` table, every value checked: a ConfigError names the key."""
        check_keys("baskets", data, cls)
        for f in fields(cls):
            value = data.get(f.name)
            if value is None:
                continue
            where = f"baskets.{f.name} = {value!r}"
            if f.name == "level":
                if value not in LEVELS:
                    raise ConfigError(f"{where}: one of {', '.join(LEVELS)}")
            elif f.type == "int":
                low = 0 if f.name == "repeat_after_days" else 1
                if isinstance(value, bool) or not isinstance(value, int) or value < low:
                    raise ConfigError(f"{where}: a whole number >= {low}")
                if f.name == "max_antecedent" and value > 2:
                    raise ConfigError(f"{where}: 1 (X -> Y) or 2 (also X1, X2 -> Y)")
            elif isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(f"{where}: a number")
            elif f.name in ("min_support", "min_confidence", "alpha") and not 0 <= value <= 1:
                raise ConfigError(f"{where}: a share between 0 and 1")
            elif value < 0:
                raise ConfigError(f"{where}: a number >= 0")
        return cls(**data)
