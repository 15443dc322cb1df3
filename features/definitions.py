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

from dataclasses import dataclass, field

import narwhals as nw

from core.errors import ConfigError, check_keys
from features import registry
from features.registry import WINDOWS

c = nw.col
# An engine may add this integer column (DuckDB: a 64-bit hash of customer_id): its window
# sorts integers about twice as fast as text. The output then carries it, so the caller can
# check it was one-to-one on the customers (`features.build`); grouping stays by customer_id.
KEY = "customer_key"
ORDER_TOTAL = "order_total"  # with order lines: an order's total on its first line, else null


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

    @classmethod
    def from_dict(cls, data: dict) -> FeatureConfig:
        """The `[features]` table, every value checked (a ConfigError names the key)."""
        check_keys("features", data, cls)
        data = dict(data)
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
) -> nw.LazyFrame:
    """One row per customer with an order on or before the cutoff in column `as_of`."""
    names = tx.collect_schema().names()
    by = KEY if KEY in names else "customer_id"
    tx = tx.filter(c("day") <= c("as_of"))
    # gap to the customer's previous order: 0 for a second order on the same day, so the
    # positive gaps are exactly the gaps between distinct order days (one window, no extra
    # group-by over customer-days). The window carries only the columns used after it.
    carried = ["customer_id", KEY, "day", "amount", "online", "category", "as_of", ORDER_TOTAL]
    orders = (
        tx.filter(~c("is_refund"))
        .select(*[n for n in carried if n in names])
        .with_columns(gap=c("day").diff().over(by, order_by="day"))
        .with_columns(age=c("as_of") - c("day"))
    )
    new_day = c("gap").is_null() | (c("gap") > 0)
    day_gap = nw.when(c("gap") > 0).then(c("gap"))
    t = cfg.trend_days
    # orders and spend over the windows and over the trend's t and 2t days, each once: the
    # trend (last t days vs the t before) is 2 * (last t) - (last 2t)
    spans = sorted({*cfg.windows, t, 2 * t})
    hidden = [f"{kind}_{s}d" for s in spans if s not in cfg.windows for kind in ("orders", "spend")]

    # order lines (an order_total column: the order's total on its first line) count and
    # value orders; without it every row is an order
    lines = ORDER_TOTAL in names
    is_order = ~c(ORDER_TOTAL).is_null() if lines else None
    value = c(ORDER_TOTAL) if lines else c("amount")

    def orders_where(cond: nw.Expr | None = None) -> nw.Expr:
        if cond is None:
            return _count_if(is_order) if lines else nw.len()
        return _count_if(cond & is_order) if lines else _count_if(cond)

    order_aggs = [
        c("as_of").max().alias("as_of"),
        orders_where().alias("frequency_orders"),
        _count_if(new_day).alias("frequency_days"),
        c("day").max().alias("last_day"),
        c("day").min().alias("first_day"),
        day_gap.mean().alias("interpurchase_mean_days"),
        day_gap.std(ddof=1).alias("interpurchase_std_days"),
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
            order_aggs += [
                _count_if(cond & new_day).alias(f"order_days_{s}d"),
                nw.when(cond).then(value).max().alias(f"max_order_value_{s}d"),
            ]
    # share columns are named from data values: safe characters only, unique (registry)
    share = registry.category_columns(categories)
    order_aggs += [
        _sum_if(c("category") == code, c("amount")).alias(share[cat])
        for cat, code in categories.items()
    ]
    if by == KEY:
        order_aggs.append(c(KEY).min().alias(KEY))
    per_customer = orders.group_by("customer_id").agg(*order_aggs)
    refunds = (
        tx.filter(c("is_refund"))
        .group_by("customer_id")
        .agg(orders_where().alias("refunds"), (-c("amount")).sum().alias("refund_amount"))
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
    ).drop("last_day", "first_day", "refunds", *hidden)
    if customers is not None:
        out = out.join(_attributes(customers, cfg), on="customer_id", how="left")
        if "signup_day" in customers.collect_schema().names():
            out = out.with_columns(signup_tenure_days=c("as_of") - c("signup_day"))
    return out.drop(*[n for n in ("as_of", "signup_day") if n in out.collect_schema().names()])


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
