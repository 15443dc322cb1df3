"""Feature and label definitions, written once in narwhals expressions.

They run unchanged on DuckDB (the embedded default for whole tables: no server, no JVM), on
Polars (the online path: milliseconds for a few customers) and on PySpark (for data that
outgrows one machine). Inputs are prepared by
`features.engines`: one row per transaction with integer `day` (days since 1970-01-01), so every
definition here is plain arithmetic that every backend evaluates the same way.

Input columns: customer_id, day, amount, is_refund, online (int8 1/0/missing: a one-byte
column through the gap window, measurably cheaper than a float), category (optional),
as_of (the cutoff as a day number: a column, not a constant, so a query can be built once and
run on new data and new cutoffs, as the online path does), customer_key (optional: an integer
standing for customer_id, which the gap window then partitions by; see `KEY`), order_total
(optional: with order ids a row is an order LINE, and this column holds each order's total on
its first line, null on the others; order counts, order values and the online share then count
orders, spend and category shares sum lines).
Categories arrive as integer codes (any type works: the definitions only compare them).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import narwhals as nw

from core.errors import ConfigError, check_keys
from features import registry
from features.registry import WINDOWS

# The version of what the definitions compute. The definition hash names it (with the config,
# categories and tags), so a change that keeps every value (a speed-up, a refactor, a comment)
# keeps serving the models trained before it. Bump it when any value (a feature or a label) may
# change for any log: tests/test_definition_version.py fails when the fixed log's values move
# and it did not.
VERSION = 1

c = nw.col
# An engine may add this integer column (DuckDB: a 64-bit hash of customer_id): its window
# sorts integers about twice as fast as text. The output then carries it, so the caller can
# check it was one-to-one on the customers (`features.build`); grouping stays by customer_id.
KEY = "customer_key"
ORDER_TOTAL = "order_total"  # with order lines: an order's total on its first line, else null


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_SETS = {"weekend": ("sat", "sun"), "weekday": ("mon", "tue", "wed", "thu", "fri")}
TOP_CATEGORY = "@top"  # in a tag's `category`: the log's top category by spend
_TAG_NAME = re.compile(r"^[a-z][a-z0-9_]{0,40}$")


@dataclass(frozen=True)
class TagConfig:
    """A dynamic tag (`[features.tags.<name>]`): an event condition over orders, and its decay.

    score = sum over qualifying events of alpha ** age, age = whole periods of `period_days`
    between the event and the cutoff (0: the `period_days` days ending on the cutoff); the tag
    is active when score >= threshold. An event is an order (with order lines: a whole order,
    its amount the order total), or an order line when the tag names categories. Conditions
    combine with AND; a tag without any counts every order.
    """

    name: str
    category: tuple[str, ...] = ()  # category in (TOP_CATEGORY: the log's top category)
    channel: str | None = None  # "online" | "offline"
    days: tuple[str, ...] = ()  # weekdays the order falls on (mon .. sun)
    refund: bool = False  # refunds / cancellations (negative amounts) instead of purchases
    min_amount: float | None = None  # order value (refunds: amount refunded) >= min_amount
    max_amount: float | None = None  # ... and < max_amount
    alpha: float = 0.85  # decay per period
    period_days: int = 7
    threshold: float = 7.0  # active when the score reaches it (decayed events)
    description: str = ""

    @property
    def column(self) -> str:
        return TAG_PREFIX + self.name

    @property
    def needs(self) -> tuple[str, ...]:
        """Input columns the condition reads beyond the contract's required ones."""
        return (("channel",) if self.channel else ()) + (("category",) if self.category else ())

    def explain(self) -> str:
        """The condition in words (registry descriptions, the README, the report)."""
        if self.description:
            return self.description
        what = ["refunds" if self.refund else ("order lines" if self.category else "orders")]
        if self.category:
            names = ["the top category" if x == TOP_CATEGORY else x for x in self.category]
            what.append(f"in {' / '.join(names)}")
        if self.channel:
            what.append(self.channel)
        if self.days:
            named = [k for k, v in DAY_SETS.items() if set(v) == set(self.days)]
            what.append(f"on {named[0] if named else ', '.join(self.days)}")
        if self.min_amount is not None:
            what.append(f"of {self.min_amount:g} or more")
        if self.max_amount is not None:
            what.append(f"under {self.max_amount:g}")
        return " ".join(what)

    @classmethod
    def from_dict(cls, name: str, data: dict) -> TagConfig:
        """One `[features.tags.<name>]` table, every value checked."""
        where = f"features.tags.{name}"
        if not isinstance(name, str) or not _TAG_NAME.match(name):
            raise ConfigError(
                f"[{where}]: a tag name is lower-case letters, digits and _ (a letter first, "
                "at most 41 characters): it becomes the column tag_<name>"
            )
        if not isinstance(data, dict):
            raise ConfigError(f"[{where}] must be a table of settings, not {data!r}")
        check_keys(where, {k: v for k, v in data.items() if k != "name"}, cls)
        if "name" in data:
            raise ConfigError(f"{where}.name: the name is the table's own ([features.tags.NAME])")
        out = dict(data)

        def texts(key: str) -> tuple[str, ...]:
            v = data[key]
            v = [v] if isinstance(v, str) else v
            if not (isinstance(v, list) and v and all(isinstance(x, str) and x for x in v)):
                raise ConfigError(f"{where}.{key} = {data[key]!r}: a text or a list of texts")
            return tuple(v)

        if "category" in data:
            out["category"] = texts("category")
        if "days" in data:
            days: list[str] = []
            for d in texts("days"):
                d = d.lower()
                if d in DAY_SETS:
                    days += DAY_SETS[d]
                elif d[:3] in WEEKDAYS:
                    days.append(d[:3])
                else:
                    raise ConfigError(
                        f"{where}.days = {data['days']!r}: weekday names (mon .. sun), "
                        '"weekend" or "weekday"'
                    )
            out["days"] = tuple(sorted(set(days), key=WEEKDAYS.index))
        if "channel" in data and data["channel"] not in ("online", "offline"):
            raise ConfigError(f'{where}.channel = {data["channel"]!r}: "online" or "offline"')
        if "refund" in data and not isinstance(data["refund"], bool):
            raise ConfigError(f"{where}.refund = {data['refund']!r}: true or false")
        for key in ("min_amount", "max_amount"):
            if key in data:
                v = data[key]
                if isinstance(v, bool) or not isinstance(v, int | float) or v < 0:
                    raise ConfigError(f"{where}.{key} = {v!r}: an amount >= 0")
                out[key] = float(v)
        lo, hi = out.get("min_amount"), out.get("max_amount")
        if lo is not None and hi is not None and hi <= lo:
            raise ConfigError(f"{where}: max_amount {hi:g} must be above min_amount {lo:g}")
        alpha = data.get("alpha", cls.alpha)
        if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0 < alpha <= 1:
            raise ConfigError(f"{where}.alpha = {alpha!r}: the decay per period, 0 < alpha <= 1")
        out["alpha"] = float(alpha)
        period = data.get("period_days", cls.period_days)
        if isinstance(period, bool) or not isinstance(period, int) or period < 1:
            raise ConfigError(f"{where}.period_days = {period!r}: a whole number of days >= 1")
        threshold = data.get("threshold", cls.threshold)
        if isinstance(threshold, bool) or not isinstance(threshold, int | float) or threshold <= 0:
            raise ConfigError(f"{where}.threshold = {threshold!r}: a number of decayed events > 0")
        out["threshold"] = float(threshold)
        if "description" in data and not isinstance(data["description"], str):
            raise ConfigError(f"{where}.description = {data['description']!r}: a text")
        return cls(name=name, **out)


TAG_PREFIX = "tag_"
DEFAULT_TAGS = (
    TagConfig("weekend_shopper", days=DAY_SETS["weekend"]),
    TagConfig("big_basket", min_amount=100.0),
    TagConfig("refunder", refund=True),
    TagConfig("online_fan", channel="online"),
    TagConfig("top_category_fan", category=(TOP_CATEGORY,)),
)


def applicable_tags(
    tags: tuple[TagConfig, ...], columns: set[str], categories: list[str]
) -> tuple[list[TagConfig], list[str]]:
    """(the tags this log can compute, a note per tag skipped): a tag reading a column the log
    does not have (channel, category), or the top category of a log without categories, is
    left out, not an error."""
    kept, notes = [], []
    for tag in tags:
        missing = [n for n in tag.needs if n not in columns]
        if not missing and TOP_CATEGORY in tag.category and not categories:
            missing = ["category values"]
        if missing:
            notes.append(f"tag {tag.name}: skipped, the log has no {' or '.join(missing)}")
        else:
            kept.append(tag)
    return kept, notes


@dataclass(frozen=True)
class FeatureConfig:
    """The `[features]` slice of the config file."""

    windows: tuple[int, ...] = WINDOWS
    trend_days: int = 90
    new_days: int = 30  # first order at most this many days ago: "new"
    active_days: int = 90  # last order at most this many days ago: "active"
    lost_days: int = 180  # last order more than this many days ago: "lost" (between: at_risk)
    top_categories: int = 10
    age_bands: tuple[int, ...] = field(default=(25, 35, 45, 55))
    # dynamic tags: `[features.tags.<name>]` tables add to (or, by name, replace) the defaults;
    # `default_tags = false` starts from none
    tags: tuple[TagConfig, ...] = DEFAULT_TAGS

    @classmethod
    def from_dict(cls, data: dict) -> FeatureConfig:
        """The `[features]` table, every value checked (a ConfigError names the key)."""
        data = dict(data)
        defaults = data.pop("default_tags", True)
        if not isinstance(defaults, bool):
            raise ConfigError(f"features.default_tags = {defaults!r}: true or false")
        check_keys("features", data, cls)
        given = data.pop("tags", {})
        if not isinstance(given, dict):
            raise ConfigError(
                f"features.tags = {given!r}: one table per tag, [features.tags.<name>]"
            )
        tags = {t.name: t for t in DEFAULT_TAGS} if defaults else {}
        tags.update({name: TagConfig.from_dict(name, v) for name, v in given.items()})
        data["tags"] = tuple(tags.values())
        for key in ("windows", "age_bands"):
            if key in data:
                values = data[key]
                if not (
                    isinstance(values, list)
                    and values
                    and all(isinstance(v, int) and v > 0 for v in values)
                ):
                    raise ConfigError(f"features.{key} = {values!r}: a list of positive whole days")
                data[key] = tuple(sorted(values))
        for key in ("trend_days", "new_days", "active_days", "lost_days", "top_categories"):
            if key in data and (not isinstance(data[key], int) or data[key] < 0):
                raise ConfigError(f"features.{key} = {data[key]!r}: a whole number >= 0")
        return cls(**data)


def _count_if(cond: nw.Expr) -> nw.Expr:
    # a count of non-missing values, as a signed 64-bit integer on every engine (a sum of 1/0
    # is 128-bit in DuckDB, slow to bring back; Polars counts are unsigned: trends subtract)
    return nw.when(cond).then(1).count().cast(nw.Int64)


def _sum_if(cond: nw.Expr, value: nw.Expr) -> nw.Expr:
    return nw.when(cond).then(value).otherwise(0.0).sum()


def _ratio(num: nw.Expr, den: nw.Expr) -> nw.Expr:
    """num / den, missing where den is 0 or missing."""
    return nw.when(den > 0).then(num / den)


def customer_features(
    tx: nw.LazyFrame,
    cfg: FeatureConfig,
    categories: dict[str, int],
    customers: nw.LazyFrame | None = None,
    tags: list[TagConfig] | tuple[TagConfig, ...] | None = None,
    tag_codes: dict[str, int] | None = None,
) -> nw.LazyFrame:
    """One row per customer with an order on or before the cutoff in column `as_of`.

    `categories`: share column categories -> code; `tags`: the tags to compute (default: all
    of `cfg.tags`; `applicable_tags` leaves out those the log cannot compute); `tag_codes`:
    codes of the other categories the tags name."""
    names = tx.collect_schema().names()
    by = KEY if KEY in names else "customer_id"
    tx = tx.filter(c("day") <= c("as_of"))
    # order lines (an order_total column: the order's total on its first line) count and
    # value orders; without it every row is an order
    lines = ORDER_TOTAL in names
    # the distinct order days come from a window over the customer's rows sorted by day
    # (`_with_gap`). A row per order: over the orders, in the one aggregation (a group-by over
    # customer-days first would cost more than it saves: 1M customers, 13M orders, the table
    # 3.3 -> 4.7 s). Order lines, dozens a day in a real log: over one row per customer-day,
    # aggregated apart and joined (Online Retail II x40, 16M lines: 3.0 -> 2.0 s). The online
    # path always has order totals, so it always takes the second way (same values). The
    # window carries only the columns used after it.
    carried = ["customer_id", KEY, "day", "amount", "online", "category", "as_of", ORDER_TOTAL]
    age = c("as_of") - c("day")
    orders = tx.filter(~c("is_refund")).select(*[n for n in carried if n in names])
    if lines:
        days = _with_gap(orders.group_by(by, "day").agg(c("as_of").max()), by)
    else:
        orders = _with_gap(orders, by)
    orders = orders.with_columns(age=age)
    tags = list(cfg.tags if tags is None else tags)
    codes = {**(tag_codes or {}), **categories}
    top = next(iter(categories.values()), -2)
    buys = [t for t in tags if not t.refund]
    if weights := _decay_weights(buys):
        orders = orders.with_columns(**weights)
    t = cfg.trend_days
    # orders and spend over the windows and over the trend's t and 2t days, each once: the
    # trend (last t days vs the t before) is 2 * (last t) - (last 2t)
    spans = sorted({*cfg.windows, t, 2 * t})
    hidden = [f"{kind}_{s}d" for s in spans if s not in cfg.windows for kind in ("orders", "spend")]

    is_order = ~c(ORDER_TOTAL).is_null() if lines else None
    value = c(ORDER_TOTAL) if lines else c("amount")

    def orders_where(cond: nw.Expr | None = None) -> nw.Expr:
        if cond is None:
            return _count_if(is_order) if lines else nw.len()
        return _count_if(cond & is_order) if lines else _count_if(cond)

    order_aggs = [
        c("as_of").max().alias("as_of"),
        orders_where().alias("frequency_orders"),
        c("day").max().alias("last_day"),
        c("day").min().alias("first_day"),
        c("amount").sum().alias("monetary"),
        value.max().alias("max_order_value"),
        (nw.when(is_order).then(c("online")) if lines else c("online"))
        .mean()
        .alias("online_share"),
    ]
    for s in spans:
        cond = c("age") < s
        order_aggs += [
            orders_where(cond).alias(f"orders_{s}d"),
            _sum_if(cond, c("amount")).alias(f"spend_{s}d"),
        ]
        if s in cfg.windows:
            order_aggs.append(nw.when(cond).then(value).max().alias(f"max_order_value_{s}d"))
    if not lines:
        order_aggs += _day_aggs(cfg.windows)
    # share columns are named from data values: safe characters only, unique (registry)
    share = registry.category_columns(categories)
    order_aggs += [
        _sum_if(c("category") == code, c("amount")).alias(share[cat])
        for cat, code in categories.items()
    ]
    order_aggs += [_tag_score(t, codes, top, is_order, value) for t in buys]
    if by == KEY:
        order_aggs.append(c(KEY).min().alias(KEY))
    # the mean and spread of the gaps between distinct order days without a per-row division
    # (stddev's update): n = days - 1 gaps that sum to last - first (they telescope), and their
    # sum of squares (whole days: exact far below 2**53) -> (n * squares - sum**2) / (n (n - 1)).
    # (Folding the refunds into this pass instead of their own scan measured slower: 2026-11-30)
    span = c("last_day") - c("first_day")
    n_gaps = c("frequency_days") - 1
    per_customer = orders.group_by("customer_id").agg(*order_aggs)
    if lines:
        per_day = days.with_columns(age=age).group_by(by).agg(*_day_aggs(cfg.windows))
        per_customer = per_customer.join(per_day, on=by, how="left")
    per_customer = per_customer.with_columns(
        interpurchase_mean_days=nw.when(n_gaps > 0).then(span / n_gaps),
        interpurchase_std_days=nw.when(n_gaps > 1).then(
            (
                (n_gaps * c("_gap_squares") - span.cast(nw.Float64) * span)
                / (n_gaps * (n_gaps - 1))
            ).sqrt()
        ),
    )
    backs = [t for t in tags if t.refund]
    refunds = tx.filter(c("is_refund"))
    if backs:
        refunds = refunds.with_columns(age=age)
    if weights := _decay_weights(backs):
        refunds = refunds.with_columns(**weights)
    refunds = refunds.group_by("customer_id").agg(
        orders_where().alias("refunds"),
        (-c("amount")).sum().alias("refund_amount"),
        *[_tag_score(t, codes, top, is_order, -value) for t in backs],
    )
    out = per_customer.join(refunds, on="customer_id", how="left")
    recency = c("as_of") - c("last_day")
    tenure = c("as_of") - c("first_day")
    stage = (
        nw.when(tenure <= cfg.new_days)
        .then(nw.lit("new"))
        .when(recency <= cfg.active_days)
        .then(nw.lit("active"))
        .when(recency <= cfg.lost_days)
        .then(nw.lit("at_risk"))
        .otherwise(nw.lit("lost"))
    )
    out = out.with_columns(
        recency_days=recency,
        tenure_days=tenure,
        orders_trend_90d=2 * c(f"orders_{t}d") - c(f"orders_{2 * t}d"),
        spend_trend_90d=2 * c(f"spend_{t}d") - c(f"spend_{2 * t}d"),
        avg_order_value=_ratio(c("monetary"), c("frequency_orders")),
        net_monetary=c("monetary") - c("refund_amount").fill_null(0.0),
        refund_amount=c("refund_amount").fill_null(0.0),
        refund_rate=c("refunds").fill_null(0) / c("frequency_orders"),
        overdue_ratio=_ratio(recency, c("interpurchase_mean_days")),
        lifecycle_stage=stage,
        **{
            f"avg_order_value_{w}d": _ratio(c(f"spend_{w}d"), c(f"orders_{w}d"))
            for w in cfg.windows
        },
        **{share[cat]: _ratio(c(share[cat]), c("monetary")) for cat in categories},
        **{t.column: c(t.column).fill_null(0.0) for t in backs},
    ).drop("last_day", "first_day", "refunds", "_gap_squares", *hidden)
    if customers is not None:
        out = out.join(_attributes(customers, cfg), on="customer_id", how="left")
        if "signup_day" in customers.collect_schema().names():
            out = out.with_columns(signup_tenure_days=c("as_of") - c("signup_day"))
    return out.drop(*[n for n in ("as_of", "signup_day") if n in out.collect_schema().names()])


def _with_gap(rows: nw.LazyFrame, by: str) -> nw.LazyFrame:
    """`gap`: days since the customer's previous row, 0 for a second row on the same day, so
    the positive gaps are exactly the gaps between its distinct order days."""
    return rows.with_columns(gap=c("day").diff().over(by, order_by="day"))


def _day_aggs(windows) -> list[nw.Expr]:
    """Over a customer's rows with `gap` and `age`: its distinct order days in all and within
    each window, and the sum of the squared gaps between consecutive ones."""
    new_day = c("gap").is_null() | (c("gap") > 0)
    return [
        _count_if(new_day).alias("frequency_days"),
        _sum_if(c("gap") > 0, c("gap").cast(nw.Float64) * c("gap")).alias("_gap_squares"),
        *[_count_if((c("age") < w) & new_day).alias(f"order_days_{w}d") for w in windows],
    ]


def _weight_column(tag: TagConfig) -> str:
    """A name per (period, alpha) in use: letters, digits and _ only (0.85 -> 0_85)."""
    return f"_decay_{tag.period_days}_" + re.sub(r"\W", "_", repr(tag.alpha))


def _decay_weights(tags: list[TagConfig]) -> dict[str, nw.Expr]:
    """alpha ** (whole periods before the cutoff) per row, once per (alpha, period) in use."""
    return {
        _weight_column(t): nw.lit(t.alpha) ** (c("age") // t.period_days)
        for t in tags
        if t.alpha != 1.0
    }


def _tag_score(
    tag: TagConfig, codes: dict[str, int], top: int, is_order: nw.Expr | None, value: nw.Expr
) -> nw.Expr:
    """The tag's decayed event count: sum of the rows' decay weights where its condition holds
    (rows of orders before the cutoff, or of refunds for a refund tag)."""
    conds = []
    if tag.category:  # line-level: each order line in the categories is an event
        wanted = sorted({top if x == TOP_CATEGORY else codes.get(x, -2) for x in tag.category})
        conds.append(c("category").is_in(wanted))
        value = c("amount").abs() if tag.refund else c("amount")
    elif is_order is not None:  # order lines: an order is an event on its first line
        conds.append(is_order)
    if tag.channel:
        conds.append(c("online") == (1 if tag.channel == "online" else 0))
    if tag.days:
        # day 0 (1970-01-01) was a Thursday: (day + 3) % 7 is 0 on Mondays
        conds.append(((c("day") + 3) % 7).is_in([WEEKDAYS.index(d) for d in tag.days]))
    if tag.min_amount is not None:
        conds.append(value >= tag.min_amount)
    if tag.max_amount is not None:
        conds.append(value < tag.max_amount)
    weight = nw.lit(1.0) if tag.alpha == 1.0 else c(_weight_column(tag))
    cond = c("age") >= 0  # every row: all are on or before the cutoff
    if conds:
        cond = conds[0]
        for more in conds[1:]:
            cond = cond & more
    return _sum_if(cond, weight).cast(nw.Float64).alias(tag.column)


def _attributes(customers: nw.LazyFrame, cfg: FeatureConfig) -> nw.LazyFrame:
    names = customers.collect_schema().names()
    cols = [c("customer_id")]
    if "signup_day" in names:
        cols.append(c("signup_day"))
    if "age" in names:
        lo, *rest = cfg.age_bands
        band = nw.when(c("age") < lo).then(nw.lit(f"<{lo}"))
        for a, b in zip(cfg.age_bands, rest, strict=False):
            band = band.when(c("age") < b).then(nw.lit(f"{a}-{b - 1}"))
        band = band.when(~c("age").is_null()).then(nw.lit(f"{cfg.age_bands[-1]}+"))
        cols += [c("age"), band.alias("age_band")]
    cols += [c(n) for n in ("gender", "province", "region", "industry") if n in names]
    return customers.select(*cols)


def labels(tx: nw.LazyFrame, cutoff: int, repurchase_days: int, churn_days: int) -> nw.LazyFrame:
    """Backtest labels at one cutoff, for customers with an order on or before it.

    repurchase = any order in (D, D + repurchase_days]; churn = no order in (D, D + churn_days].
    """
    orders = tx.filter(~c("is_refund"))
    after = c("day") - cutoff
    return (
        orders.filter(c("day") <= cutoff + max(repurchase_days, churn_days))
        .group_by("customer_id")
        .agg(
            _count_if(c("day") <= cutoff).alias("_before"),
            _count_if((after > 0) & (after <= repurchase_days)).alias("_repurchase"),
            _count_if((after > 0) & (after <= churn_days)).alias("_within_churn"),
        )
        .filter(c("_before") > 0)
        .select(
            c("customer_id"),
            nw.lit(cutoff).alias("cutoff_day"),
            (c("_repurchase") > 0).alias("repurchase"),
            (c("_within_churn") == 0).alias("churn"),
        )
    )
