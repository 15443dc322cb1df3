"""Latent behaviour: who the customers are, when they join, buy and churn. Pure numpy."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DAY = np.timedelta64(1, "D")


@dataclass(frozen=True)
class Group:
    name: str
    share: float
    mean_gap_days: float  # mean days between orders while active (0: a single order)
    gap_shape: float  # gamma shape: higher = more regular repurchase cycle
    median_amount: float
    amount_sigma: float
    churn_prob: float
    p_online: float
    age_mean: float
    categories: tuple[float, ...]  # preference over CATEGORIES


CATEGORIES = ("服装", "美妆", "食品", "数码", "家居", "母婴")
GROUPS = (
    Group(
        "loyal_high_value",
        0.10,
        16,
        3.0,
        420,
        0.45,
        0.05,
        0.55,
        38,
        (0.25, 0.25, 0.1, 0.2, 0.15, 0.05),
    ),
    Group(
        "new_promising", 0.15, 22, 2.0, 260, 0.55, 0.10, 0.75, 28, (0.3, 0.3, 0.1, 0.15, 0.05, 0.1)
    ),
    Group(
        "occasional_price_sensitive",
        0.30,
        55,
        1.5,
        70,
        0.55,
        0.25,
        0.65,
        45,
        (0.15, 0.1, 0.4, 0.05, 0.2, 0.1),
    ),
    Group("dormant", 0.25, 30, 2.0, 150, 0.6, 1.0, 0.5, 41, (0.2, 0.15, 0.25, 0.15, 0.15, 0.1)),
    Group("one_off", 0.20, 0, 1.0, 120, 0.8, 1.0, 0.6, 34, (0.2, 0.2, 0.2, 0.2, 0.1, 0.1)),
)
NEW, DORMANT, ONE_OFF = 1, 3, 4
# month -> relative order intensity (春节 / year start, 618, 双11, year end)
SEASON = np.array([1.3, 1.1, 0.9, 0.9, 0.95, 1.2, 0.9, 0.9, 0.95, 1.0, 1.6, 1.25])


def _param(name: str) -> np.ndarray:
    return np.array([getattr(g, name) for g in GROUPS])


@dataclass
class Population:
    group: np.ndarray  # index into GROUPS
    signup: np.ndarray  # datetime64[D]
    first: np.ndarray  # first order in the window
    churned: np.ndarray
    churn_at: np.ndarray  # last day active, for churned customers
    active_end: np.ndarray


@dataclass
class Orders:
    owner: np.ndarray  # index of the customer
    day: np.ndarray
    amount: np.ndarray
    category: np.ndarray
    online: np.ndarray
    base_mean: float  # mean amount before outliers: the scale outliers are drawn against


def draw_population(
    rng: np.random.Generator, n: int, end: np.datetime64, history_days: int
) -> Population:
    start = end - history_days * DAY
    group = rng.choice(len(GROUPS), n, p=_param("share"))
    signup = np.where(
        group == NEW,
        end - rng.integers(15, 150, n) * DAY,
        start + rng.integers(-240, history_days - 200, n) * DAY,
    )
    # customers who joined before the window are mid-cycle when it opens
    lead_in = np.where(
        signup < start,
        rng.uniform(0, np.maximum(_param("mean_gap_days")[group], 60)),
        np.minimum(rng.exponential(12, n), 60),
    ).astype(int)
    first = np.minimum(np.maximum(signup, start) + lead_in * DAY, end)
    churned = rng.random(n) < _param("churn_prob")[group]
    span = (end - first) / DAY
    churn_at = first + (rng.uniform(0.05, 0.9, n) * span).astype(int) * DAY
    dormant = group == DORMANT  # lapsed at least 200 days before the end
    slack = np.maximum(span[dormant] - 200, 1)
    churn_at[dormant] = (
        first[dormant] + (rng.uniform(0, 1, dormant.sum()) * slack).astype(int) * DAY
    )
    one_off = group == ONE_OFF
    churn_at[one_off] = first[one_off]
    return Population(group, signup, first, churned, churn_at, np.where(churned, churn_at, end))


def draw_orders(rng: np.random.Generator, pop: Population, orders_scale: float) -> Orders:
    """Gamma repurchase gaps cumulated per customer (segment cumsum, no loop), thinned by season."""
    n = len(pop.group)
    g = pop.group
    mean_gap = _param("mean_gap_days")[g] / orders_scale
    shape = _param("gap_shape")[g]
    active_days = (pop.active_end - pop.first) / DAY
    n_gaps = np.where(g == ONE_OFF, 0, np.ceil(active_days / np.maximum(mean_gap, 1) * 1.6 + 3))
    n_gaps = n_gaps.astype(np.int64)
    owner = np.repeat(np.arange(n), n_gaps)
    cum = np.cumsum(rng.gamma(shape[owner], mean_gap[owner] / shape[owner]))
    seg_start = np.repeat(np.cumsum(n_gaps) - n_gaps, n_gaps)
    cum -= np.concatenate([[0.0], cum])[seg_start]
    owner = np.concatenate([np.arange(n), owner])
    day = np.concatenate([pop.first, pop.first[owner[n:]] + cum.astype(np.int64) * DAY])
    month = day.astype("datetime64[M]").astype(int) % 12
    keep = (day <= pop.active_end[owner]) & (rng.random(len(day)) < SEASON[month] / SEASON.max())
    keep[:n] = True  # everyone has a first order
    owner, day, month = owner[keep], day[keep], month[keep]
    m = len(owner)
    amount = rng.lognormal(
        np.log(_param("median_amount")[g[owner]]), _param("amount_sigma")[g[owner]]
    )
    amount *= 0.85 + 0.15 * SEASON[month]
    base_mean = float(amount.mean())
    amount = np.round(np.minimum(amount, 5 * base_mean), 2)  # natural orders stay below 5x mean
    cat_cdf = np.cumsum(np.array([grp.categories for grp in GROUPS]), axis=1)
    category = (rng.random(m)[:, None] > cat_cdf[g[owner]]).sum(1).astype(np.int8)
    online = rng.random(m) < _param("p_online")[g[owner]]
    return Orders(owner, day, amount, category, online, base_mean)


def age_mean(group: np.ndarray) -> np.ndarray:
    return _param("age_mean")[group]
