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
        f(
            "online_share",
            "share of orders placed online (null where the log has no channel)",
            "share",
            upper=1.0,
            optional=True,  # a real log without a channel column: no share for anyone
        ),
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


CATEGORY_PREFIX = "category_share__"
_HEX = frozenset("0123456789ABCDEFabcdef")
_ESCAPE = re.compile(r"_([0-9A-Fa-f]{2})")


def _escape(ch: str) -> str:
    return "".join(f"_{b:02X}" for b in ch.encode())


def _plain(value: str) -> str:
    """Letters and digits (any script) kept, every other character as `_XX` per UTF-8 byte;
    `_` itself kept, unless two hex digits follow it (then it would read as an escape)."""
    out = []
    for i, ch in enumerate(value):
        hex_next = len(value) > i + 2 and {value[i + 1], value[i + 2]} <= _HEX
        out.append(ch if ch.isalnum() or (ch == "_" and not hex_next) else _escape(ch))
    return "".join(out)


_LOWER = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")


def _strict(value: str) -> str:
    """Only a-z and 0-9 kept, everything else escaped: for names that differ in case alone."""
    return "".join(ch if ch in _LOWER else _escape(ch) for ch in value)


def category_columns(categories) -> dict[str, str]:
    """Category value -> the name of its share column, `category_share__<value>` spelt in safe
    characters only (letters and digits of any script, `_`): a data value may hold anything
    (`Books, Music "x"`), and LightGBM refuses JSON characters in a feature name, Spark dots.

    Names are deterministic and unique for a set of values, also when letter case is ignored
    (DuckDB and Spark read `X` and `x` as one column), and say their value back
    (`category_value`): other characters are written `_XX` per UTF-8 byte, like %XX in a URL
    (`Books, Music` -> `Books_2C_20Music`); a value already safe keeps its name. Values whose
    names would differ in letter case alone are spelt in lower-case letters and escapes only.
    """
    values = list(dict.fromkeys(categories))
    names = {v: _plain(v) for v in values}
    while True:
        groups: dict[str, list[str]] = {}
        for v in values:
            groups.setdefault(names[v].casefold(), []).append(v)
        clash = [v for group in groups.values() if len(group) > 1 for v in group]
        if not clash:
            break
        for v in clash:  # strict names never clash: each round leaves fewer plain ones
            names[v] = _strict(v)
    return {v: CATEGORY_PREFIX + names[v] for v in values}


def category_value(column: str) -> str:
    """The category value a share column (`category_columns`) stands for."""
    name = column.removeprefix(CATEGORY_PREFIX)
    out, i = bytearray(), 0
    while i < len(name):
        m = _ESCAPE.match(name, i)
        if m:
            out.append(int(m.group(1), 16))
            i = m.end()
        else:
            out += name[i].encode()
            i += 1
    return out.decode("utf-8", errors="replace")


def category_values(columns) -> list[str]:
    """The category values of the share columns among `columns`, in their order (what a feature
    table was built with: `build_features(..., categories=category_values(table.columns))`)."""
    return [category_value(c) for c in columns if c.startswith(CATEGORY_PREFIX)]


def category_feature(category: str, column: str | None = None) -> Feature:
    """The share feature of one category value (`column`: its name among the set's)."""
    return Feature(
        column or category_columns([category])[category],
        f"share of spend in category {category}",
        "share",
        optional=True,  # no spend at all (zero-amount orders): no share
        upper=1.0,
    )


TAG_PREFIX = "tag_"  # features.definitions.TagConfig.column


def tag_feature(column: str) -> Feature:
    """The score of one dynamic tag (`[features.tags.<name>]`): its qualifying events, each
    weighted alpha ** (whole periods before the cutoff)."""
    name = column.removeprefix(TAG_PREFIX)
    return Feature(
        column,
        f"dynamic tag {name}: qualifying events weighted by alpha^age (age in periods before "
        "the cutoff); active at the tag's threshold",
        "decayed events",
    )


def tag_names(columns) -> list[str]:
    """The dynamic tags among a table's columns, in their order."""
    return [c.removeprefix(TAG_PREFIX) for c in columns if c.startswith(TAG_PREFIX)]


def describe(names: list[str]) -> list[Feature]:
    """Registry entries for the columns of a feature table, in registry order (behaviour,
    then category shares in the order given, then attributes). A category share's description
    names its category value as the data spell it."""
    windows = tuple(sorted({int(m.group(1)) for n in names if (m := _WINDOWED.match(n))}))
    cats = [category_feature(category_value(n), n) for n in names if n.startswith(CATEGORY_PREFIX)]
    tags = [tag_feature(n) for n in names if n.startswith(TAG_PREFIX)]
    present = set(names)
    return [f for f in core(windows) + cats + tags + ATTRIBUTES if f.name in present]


def table(names: list[str]) -> list[Feature]:
    """Every column but `customer_id` of a feature table that holds `names`: the behaviour
    features of its windows (the default ones when `names` have none), its category shares,
    and the customer attributes when it has one. Serving accepts these in a feature row where
    the models read fewer: a row of `custseg features`' table is sent as it is."""
    windows = tuple(sorted({int(m.group(1)) for n in names if (m := _WINDOWED.match(n))}))
    cats = [category_feature(category_value(n), n) for n in names if n.startswith(CATEGORY_PREFIX)]
    tags = [tag_feature(n) for n in names if n.startswith(TAG_PREFIX)]
    attributes = ATTRIBUTES if {f.name for f in ATTRIBUTES} & set(names) else []
    return core(windows or WINDOWS) + cats + tags + attributes


_WINDOWED = re.compile(r"^(?:orders|order_days|spend|avg_order_value|max_order_value)_(\d+)d$")
