"""Cleaning rules, their policies and thresholds: the `[cleaning]` slice of the config file."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal

from core.errors import ConfigError, check_keys
from features.parsing import DATE_RANGE, TIMESTAMP_RANGE

Policy = Literal["drop", "cap", "flag", "null", "fill", "fix"]


@dataclass(frozen=True)
class Rule:
    name: str
    table: str
    policies: tuple[str, ...]  # allowed; the first is the default
    why: str


# Every rule that can drop, change or flag a row. The audit reports each one, even at 0 rows.
RULES: dict[str, Rule] = {
    r.name: r
    for r in (
        Rule(
            "missing_key_field",
            "both",
            ("drop",),
            "a required field (customer_id; order_date, amount) is empty",
        ),
        Rule(
            "unreadable_value",
            "both",
            ("drop", "null"),
            "a date, number or flag that cannot be read, a date outside min_date..max_date or a "
            "number that is not finite (inf, NaN): required fields drop the row, others become "
            "missing",
        ),
        Rule(
            "amount_computed",
            "transactions",
            ("fill",),
            "amount empty, quantity and unit_price given: amount = quantity x unit_price (a log "
            "without an amount column has it computed on every row, noted once, not logged)",
        ),
        Rule(
            "amount_mismatch",
            "transactions",
            ("flag", "fix"),
            "amount differs from quantity x unit_price by more than 0.01 + 1e-6 x |amount|: "
            "flag keeps the given amount, fix replaces it by quantity x unit_price",
        ),
        Rule(
            "test_account",
            "both",
            ("drop",),
            "test account (is_test set, or id matching test_id_pattern) and its orders",
        ),
        Rule(
            "duplicate_customer",
            "both",
            ("drop",),
            "same customer under another id (shared phone, e-mail or id): merged into one id",
        ),
        Rule(
            "duplicate_transaction",
            "transactions",
            ("drop", "flag"),
            "an exact copy of an earlier row, all columns equal (only when order_id is given: "
            "without it, two equal purchases on one day are legitimate)",
        ),
        Rule(
            "future_date", "transactions", ("drop", "flag"), "order dated after the reference date"
        ),
        Rule(
            "nonpositive_amount",
            "transactions",
            ("drop", "flag"),
            "amount <= 0 that is not a refund: a refund reverses an earlier purchase of the same "
            "customer (same order_id, or an order_id matching cancel_id_pattern after a purchase) "
            "within what was paid",
        ),
        Rule(
            "non_product_line",
            "transactions",
            ("drop", "flag"),
            "a line that sells no product (postage, fees, bank charges, manual adjustments): "
            "its product or category matches non_product_pattern",
        ),
        Rule(
            "extreme_amount",
            "transactions",
            ("flag", "cap", "drop"),
            "amount above extreme_factor x the mean amount",
        ),
        Rule(
            "order_before_signup",
            "transactions",
            ("flag", "drop"),
            "order dated before the customer's signup date",
        ),
        Rule(
            "unknown_customer",
            "transactions",
            ("flag", "drop"),
            "customer id not in the customer table",
        ),
        Rule("invalid_age", "customers", ("null", "flag", "drop"), "age <= 0 or > 120"),
        Rule(
            "region_unrecognized",
            "both",
            ("null", "flag"),
            "region names no known province or city and no place outside China (火星, N1-X9, "
            "Unspecified)",
        ),
        Rule(
            "region_foreign",
            "both",
            ("flag", "null"),
            "region names a place outside China (letters, no Chinese characters: United "
            "Kingdom, EIRE): kept as written, province = the name, city empty; when most of the "
            "column is such names it is a country column: one warning, counted, not logged per row",
        ),
        Rule(
            "gender_unrecognized",
            "customers",
            ("null",),
            "gender spelling that is not male/female (男/女, M/F, ...): becomes missing",
        ),
        Rule(
            "to_complete",
            "customers",
            ("flag",),
            "more than to_complete_share of the profile key fields missing: marked, not dropped",
        ),
    )
}


_NUMBERS = (
    "extreme_factor",
    "missing_rate_warn",
    "to_complete_share",
    "max_invalid_share",
    "min_age",
    "max_age",
)


def _check_pattern(name: str, value: object, optional: bool) -> None:
    if value is None and optional:
        return
    if not isinstance(value, str):
        raise ConfigError(f"cleaning.{name} = {value!r}: a regular expression text")
    try:
        re.compile(value)
    except re.error as exc:
        raise ConfigError(
            f"cleaning.{name} = {value!r}: not a valid regular expression ({exc})"
        ) from None


@dataclass(frozen=True)
class CleaningConfig:
    """Thresholds and per-rule policies. Defaults follow the seed documents (5%, 30%, 10x)."""

    extreme_factor: float = 10.0
    # the extreme_amount threshold itself, instead of extreme_factor x the mean (the
    # out-of-core path, `clean_parquet`, sets the whole log's when it cleans part by part)
    extreme_threshold: float | None = None
    missing_rate_warn: float = 0.05
    to_complete_share: float = 0.30
    max_invalid_share: float = 0.20
    min_age: float = 1
    max_age: float = 120
    test_id_pattern: str = r"(?i)^test"
    # order ids of cancellation invoices (e.g. "^C" for C536379): their negative lines refund
    # earlier purchases of the customer; None: only refunds repeating their order's id
    cancel_id_pattern: str | None = None
    # product codes or categories of lines that sell no product (e.g. "^(POST|DOT|M|BANK
    # CHARGES)$"); None: every line is a product
    non_product_pattern: str | None = None
    profile_key_fields: tuple[str, ...] = ("signup_date", "age", "gender", "region", "industry")
    reference_date: date | None = None  # "future" means after this; default: today
    # dates outside are unreadable values (a year 9999 or 0001 is a placeholder, not a date)
    min_date: date = DATE_RANGE[0]
    max_date: date = DATE_RANGE[1]
    policies: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in _NUMBERS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(f"cleaning.{name} = {value!r}: not a number")
            if not math.isfinite(value):
                raise ConfigError(f"cleaning.{name} = {value!r}: must be a finite number")
        lo, hi = TIMESTAMP_RANGE
        for name in ("min_date", "max_date"):
            value = getattr(self, name)
            if not isinstance(value, date) or isinstance(value, datetime):
                raise ConfigError(f"cleaning.{name} = {value!r}: a date, YYYY-MM-DD")
            if not lo <= value <= hi:
                raise ConfigError(
                    f"cleaning.{name} = {value}: must lie within {lo}..{hi} (what a timestamp "
                    "holds)"
                )
        if self.min_date >= self.max_date:
            raise ConfigError(
                f"cleaning.min_date = {self.min_date} must be before max_date = {self.max_date}"
            )
        if self.min_age >= self.max_age:
            raise ConfigError(
                f"cleaning.min_age = {self.min_age!r} must be below max_age = {self.max_age!r}"
            )
        for name in ("test_id_pattern", "cancel_id_pattern", "non_product_pattern"):
            _check_pattern(name, getattr(self, name), optional=name != "test_id_pattern")
        if not isinstance(self.policies, dict):
            raise ConfigError(
                f"cleaning.policies = {self.policies!r}: a table of rule = policy, e.g. "
                '[cleaning.policies] extreme_amount = "cap"'
            )
        for rule, policy in self.policies.items():
            if rule not in RULES:
                raise ConfigError(
                    f"cleaning.policies: unknown rule {rule!r}; rules: {', '.join(RULES)}"
                )
            if policy not in RULES[rule].policies:
                raise ConfigError(
                    f"cleaning.policies.{rule} = {policy!r}: "
                    f"allowed {', '.join(RULES[rule].policies)}"
                )
        if self.extreme_factor <= 1:
            raise ConfigError(f"cleaning.extreme_factor = {self.extreme_factor}: must be > 1")
        t = self.extreme_threshold
        if t is not None and (isinstance(t, bool) or not isinstance(t, int | float) or t <= 0):
            raise ConfigError(f"cleaning.extreme_threshold = {t!r}: a positive amount")
        for name in ("missing_rate_warn", "to_complete_share", "max_invalid_share"):
            if not 0 <= getattr(self, name) <= 1:
                raise ConfigError(f"cleaning.{name} = {getattr(self, name)}: must be in [0, 1]")

    def policy(self, rule: str) -> str:
        return self.policies.get(rule, RULES[rule].policies[0])

    @property
    def today(self) -> date:
        return self.reference_date or date.today()

    @classmethod
    def from_dict(cls, data: dict) -> CleaningConfig:
        check_keys("cleaning", data, cls)
        data = dict(data)
        if "profile_key_fields" in data:
            keys = data["profile_key_fields"]
            if not (isinstance(keys, list | tuple) and all(isinstance(k, str) for k in keys)):
                raise ConfigError(
                    f"cleaning.profile_key_fields = {keys!r}: a list of customer field names"
                )
            data["profile_key_fields"] = tuple(keys)
        for key in ("reference_date", "min_date", "max_date"):
            if isinstance(data.get(key), str):
                try:
                    data[key] = date.fromisoformat(data[key])
                except ValueError:
                    raise ConfigError(f"cleaning.{key} = {data[key]!r}: not YYYY-MM-DD") from None
        try:
            return cls(**data)
        except TypeError as exc:
            raise ConfigError(f"[cleaning]: {exc}") from None
