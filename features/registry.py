"""The feature registry: every feature's name, one-line description and unit.

Reports, the serving schema and drift monitoring read names and descriptions from here, so a
feature is documented once. Window and category features are expanded from templates.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

WINDOWS = (30, 90, 180, 365)


@dataclass(frozen=True)
class Feature:
    name: str
    description: str
    unit: str
    kind: str = "number"  # number | category
    optional: bool = False  # may be missing (e.g. the gap of a one-order customer): null allowed
    signed: bool = False  # may be negative (trends, net amounts); other numbers are >= 0
    whole: bool = False  # a count of orders or days: an integer column
    upper: float | None = None  # largest possible value (shares: 1)
    levels: tuple[str, ...] | None = None  # the only values a category takes (None: open)


def core(windows: tuple[int, ...] = WINDOWS) -> list[Feature]:
    """The behavioural features, with the window features for `windows`."""
    f = Feature
    out = [
        f("recency_days", "days since the last order, as of the cutoff", "days", whole=True),
        f(
            "frequency_orders",
            "orders on or before the cutoff (refunds excluded)",
            "orders",
            whole=True,
        ),
        f("frequency_days", "distinct days with an order", "days", whole=True),
        f("monetary", "total spend (refunds excluded)", "currency"),
        f("net_monetary", "total spend minus refunds", "currency", signed=True),
        f("avg_order_value", "mean order value", "currency"),
        f("max_order_value", "largest single order", "currency"),
        f("tenure_days", "days since the first order", "days", whole=True),
        f("interpurchase_mean_days", "mean gap between distinct order days", "days", optional=True),
        f(
            "interpurchase_std_days",
            "standard deviation of the gaps between order days",
            "days",
            optional=True,
        ),
        f(
            "overdue_ratio",
            "recency / mean gap: above 1 means later than usual",
            "ratio",
            optional=True,
        ),
        f(
            "orders_trend_90d",
            "orders in the last 90 days minus the 90 before",
            "orders",
            signed=True,
            whole=True,
        ),
        f(
            "spend_trend_90d",
            "spend in the last 90 days minus the 90 before",
            "currency",
            signed=True,
        ),
        f("online_share", "share of orders placed online", "share", upper=1.0),
        f("refund_rate", "refunds per order", "ratio"),
        f("refund_amount", "total refunded", "currency"),
        f(
            "lifecycle_stage",
            "new / active / at_risk / lost by recency and tenure",
            "stage",
            "category",
            levels=("new", "active", "at_risk", "lost"),
        ),
    ]
    for w in windows:
        out += [
            f(f"orders_{w}d", f"orders in the last {w} days", "orders", whole=True),
            f(
                f"order_days_{w}d",
                f"distinct order days in the last {w} days",
                "days",
                whole=True,
            ),
            f(f"spend_{w}d", f"spend in the last {w} days", "currency"),
            f(
                f"avg_order_value_{w}d",
                f"mean order value in the last {w} days",
                "currency",
                optional=True,
            ),
            f(
                f"max_order_value_{w}d",
                f"largest order in the last {w} days",
                "currency",
                optional=True,
            ),
        ]
    return out


ATTRIBUTES = [  # from the customer table: any of them may be unknown
    Feature(
        "signup_tenure_days", "days since signup (customer table)", "days", "number", True, True
    ),
    Feature("age", "age in years (customer table)", "years", "number", True, upper=120),
    Feature("age_band", "age band: 18-24, 25-34, 35-44, 45-54, 55+", "band", "category", True),
    Feature("gender", "male / female", "category", "category", True, levels=("male", "female")),
    Feature("province", "province of the customer's region", "category", "category", True),
    Feature("region", "省-市", "category", "category", True),
    Feature("industry", "industry", "category", "category", True),
]
CORE = core()


def category_feature(category: str) -> Feature:
    return Feature(
        f"category_share__{category}",
        f"share of spend in category {category}",
        "share",
        optional=True,  # no spend at all (zero-amount orders): no share
        upper=1.0,
    )


def describe(names: list[str]) -> list[Feature]:
    """Registry entries for the columns of a feature table, in registry order (behaviour,
    then category shares in the order given, then attributes)."""
    windows = tuple(sorted({int(m.group(1)) for n in names if (m := _WINDOWED.match(n))}))
    cats = [
        category_feature(n.removeprefix("category_share__"))
        for n in names
        if n.startswith("category_share__")
    ]
    present = set(names)
    return [f for f in core(windows) + cats + ATTRIBUTES if f.name in present]


_WINDOWED = re.compile(r"^(?:orders|order_days|spend|avg_order_value|max_order_value)_(\d+)d$")
