"""Realistic sample data with known ground truth: `custseg sample`.

Customers come from latent behaviour groups (loyal high value, new promising, occasional
price-sensitive, dormant, one-off) with seasonality, gamma-distributed repurchase cycles and
known churn dates, Chinese regions and industries. Dirt is injected at known rates into disjoint
rows, and each injected row is recorded, so tests can check that cleaning finds exactly it.
Everything is vectorised (numpy + pyarrow compute): 1M customers / ~10M orders in seconds.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from features import regions

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
INDUSTRIES = ("零售", "制造", "金融", "教育", "医疗", "互联网", "餐饮", "物流", "房地产", "政府机构")
GROUPS = (
    Group("loyal_high_value", 0.10, 16, 3.0, 420, 0.45, 0.05, 0.55, 38, (.25, .25, .1, .2, .15, .05)),
    Group("new_promising", 0.15, 22, 2.0, 260, 0.55, 0.10, 0.75, 28, (.3, .3, .1, .15, .05, .1)),
    Group("occasional_price_sensitive", 0.30, 55, 1.5, 70, 0.55, 0.25, 0.65, 45, (.15, .1, .4, .05, .2, .1)),
    Group("dormant", 0.25, 30, 2.0, 150, 0.6, 1.0, 0.5, 41, (.2, .15, .25, .15, .15, .1)),
    Group("one_off", 0.20, 0, 1.0, 120, 0.8, 1.0, 0.6, 34, (.2, .2, .2, .2, .1, .1)),
)
# month -> relative order intensity (双11, 618, 春节 / year end)
SEASON = np.array([1.3, 1.1, 0.9, 0.9, 0.95, 1.2, 0.9, 0.9, 0.95, 1.0, 1.6, 1.25])


@dataclass(frozen=True)
class DirtRates:
    """Share of customers (c_) or order rows (t_) that get each kind of dirt."""

    c_duplicate: float = 0.02  # extra ids sharing a phone or e-mail with a real customer
    c_chain: float = 0.25  # of those, share that get a third id linked by the second's e-mail
    c_test: float = 0.005
    c_invalid_age: float = 0.005
    c_one_missing: float = 0.03  # one profile field empty
    c_to_complete: float = 0.01  # three profile fields empty
    c_signup_after_first_order: float = 0.003
    c_bad_region: float = 0.002
    c_bad_signup_date: float = 0.002
    t_bad_date: float = 0.002
    t_missing_amount: float = 0.001
    t_missing_customer: float = 0.0005
    t_negative_amount: float = 0.003
    t_future_date: float = 0.001
    t_outlier: float = 0.001
    t_unknown_customer: float = 0.001
    t_duplicate_row: float = 0.002
    t_refund: float = 0.01


@dataclass
class SampleConfig:
    customers: int = 5000
    seed: int = 42
    end_date: date = date(2026, 6, 30)
    history_days: int = 3 * 365
    orders_scale: float = 1.0  # multiplies order intensity (about 10 orders per customer at 1.0)
    dirt: DirtRates = field(default_factory=DirtRates)


def _ids(prefix: str, numbers: np.ndarray, width: int = 7) -> pa.Array:
    digits = pc.utf8_lpad(pc.cast(pa.array(numbers, pa.int64()), pa.string()), width, "0")
    return pc.binary_join_element_wise(prefix, digits, "")


def _fmt_dates(days: np.ndarray, rng: np.random.Generator, shares=(.7, .15, .1, .05)) -> pa.Array:
    """Dates written the way exports mix them: 2024-01-05, 2024/01/05, 20240105, 2024年01月05日.

    Built from the ISO text with plain string kernels (strftime is ~20x slower at 10M rows).
    """
    iso = pc.cast(pa.array(days.astype("datetime64[D]")), pa.string())
    year, month, day = (pc.utf8_slice_codeunits(iso, a, b) for a, b in ((0, 4), (5, 7), (8, 10)))
    variants = (
        iso,
        pc.replace_substring(iso, "-", "/"),
        pc.replace_substring(iso, "-", ""),
        pc.binary_join_element_wise(year, "年", month, "月", day, "日", ""),
    )
    which = pa.array(rng.choice(len(variants), len(days), p=shares).astype(np.int8))
    return pc.choose(which, *variants)


def _text(values) -> np.ndarray:
    """Arrow strings -> numpy object array (what pandas columns hold)."""
    return np.asarray(values.to_numpy(zero_copy_only=False), dtype=object)


def _join(*parts) -> np.ndarray:
    """Element-wise string concatenation in Arrow (no Python loop)."""
    arrays = [p if isinstance(p, str) else pa.array(p, pa.string()) for p in parts]
    return _text(pc.binary_join_element_wise(*arrays, ""))


def _unique_ints(rng: np.random.Generator, low: int, high: int, n: int) -> np.ndarray:
    """n distinct random integers in [low, high), in random order."""
    out = np.unique(rng.integers(low, high, int(n * 1.05) + 16))
    while len(out) < n:
        out = np.unique(np.concatenate([out, rng.integers(low, high, n)]))
    return rng.permutation(out)[:n]


def _pick(rng: np.random.Generator, pool: np.ndarray, rate: float, taken: np.ndarray) -> np.ndarray:
    """`rate` x len(pool) members of pool not yet taken (disjoint dirt); marks them taken."""
    free = pool[~taken[pool]]
    n = min(int(round(rate * len(pool))), len(free))
    chosen = rng.choice(free, n, replace=False) if n else np.array([], dtype=np.int64)
    taken[chosen] = True
    return np.sort(chosen)


def _regions(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(canonical 省-市, a spelling of it as people type it)."""
    provs = regions.provinces()
    rows = [(p, c, 5.0 if len(regions.cities_of(p)) == 1 else (3.0 if i == 0 else 1.0))
            for p in provs for i, c in enumerate(regions.cities_of(p))]
    abbr = {p: regions._tables()[0] for p in provs}  # noqa: SLF001 - reuse the alias table
    alias_of = {}
    for spelling, short in abbr[provs[0]].items():
        if len(spelling) == 1:
            alias_of.setdefault(short, spelling)
    canon, spellings = [], []
    for p, c, _ in rows:
        muni = len(regions.cities_of(p)) == 1
        city_only_ok = c not in provs
        variants = [f"{p}-{c}", f"{p}市" if muni else f"{p}{'' if p in ('内蒙古', '广西', '西藏', '宁夏', '新疆') else '省'}{c}市",
                    f"{alias_of.get(p, p)}-{c}", f"{c}市" if city_only_ok else f"{p}-{c}", f"{p} {c}"]
        canon.append(f"{p}-{c}")
        spellings.append(variants)
    w = np.array([r[2] for r in rows])
    pick = rng.choice(len(rows), n, p=w / w.sum())
    variant = rng.choice(5, n, p=[.4, .25, .1, .15, .1])
    canon_arr = np.array(canon, dtype=object)[pick]
    spell_arr = np.array(spellings, dtype=object)[pick, variant]
    return canon_arr, spell_arr


def generate(cfg: SampleConfig) -> dict[str, pd.DataFrame | dict]:
    """Returns customers, transactions (as written) and the ground truth tables."""
    rng = np.random.default_rng(cfg.seed)
    d = cfg.dirt
    n = cfg.customers
    end = np.datetime64(cfg.end_date, "D")
    start = end - cfg.history_days * DAY
    g_idx = rng.choice(len(GROUPS), n, p=[g.share for g in GROUPS])
    G = {f: np.array([getattr(g, f) for g in GROUPS]) for f in
         ("mean_gap_days", "gap_shape", "median_amount", "amount_sigma", "churn_prob", "p_online", "age_mean")}
    is_new = g_idx == 1
    signup = np.where(
        is_new, end - rng.integers(15, 150, n) * DAY,
        start + rng.integers(-240, cfg.history_days - 200, n) * DAY,
    )
    # customers who joined before the window are mid-cycle when it opens
    lead_in = np.where(signup < start, rng.uniform(0, np.maximum(G["mean_gap_days"][g_idx], 60)),
                       np.minimum(rng.exponential(12, n), 60)).astype(int)
    first = np.maximum(signup, start) + lead_in * DAY
    first = np.minimum(first, end)
    churned = rng.random(n) < G["churn_prob"][g_idx]
    span = (end - first) / DAY
    churn_at = first + (rng.uniform(0.05, 0.9, n) * span).astype(int) * DAY
    dormant = g_idx == 3
    churn_at[dormant] = first[dormant] + (rng.uniform(0, 1, dormant.sum()) *
                                          np.maximum(span[dormant] - 200, 1)).astype(int) * DAY
    one_off = g_idx == 4
    churn_at[one_off] = first[one_off]
    active_end = np.where(churned, churn_at, end)

    # repurchase cycles: gamma gaps, cumulated per customer without a Python loop
    mean_gap = G["mean_gap_days"][g_idx] / cfg.orders_scale
    shape = G["gap_shape"][g_idx]
    active_days = (active_end - first) / DAY
    n_gaps = np.where(one_off, 0, np.ceil(active_days / np.maximum(mean_gap, 1) * 1.6 + 3)).astype(np.int64)
    owner = np.repeat(np.arange(n), n_gaps)
    gaps = rng.gamma(shape[owner], mean_gap[owner] / shape[owner])
    cum = np.cumsum(gaps)
    seg_start = np.repeat(np.cumsum(n_gaps) - n_gaps, n_gaps)
    cum = cum - np.concatenate([[0.0], cum])[seg_start]
    order_owner = np.concatenate([np.arange(n), owner])
    order_day = np.concatenate([first, first[owner] + cum.astype(np.int64) * DAY])
    keep = order_day <= active_end[order_owner]
    month = (order_day.astype("datetime64[M]").astype(int) % 12)
    accept = rng.random(len(order_day)) < SEASON[month] / SEASON.max()
    accept[:n] = True  # everyone has a first order
    keep &= accept
    owner, day = order_owner[keep], order_day[keep]
    m = len(owner)
    month = day.astype("datetime64[M]").astype(int) % 12
    amount = rng.lognormal(np.log(G["median_amount"][g_idx[owner]]), G["amount_sigma"][g_idx[owner]])
    amount *= 0.85 + 0.15 * SEASON[month]
    base_mean = float(amount.mean())
    amount = np.round(np.minimum(amount, 5 * base_mean), 2)
    cat_cdf = np.cumsum(np.array([g.categories for g in GROUPS]), axis=1)
    category = (rng.random(m)[:, None] > cat_cdf[g_idx[owner]]).sum(1)
    online = rng.random(m) < G["p_online"][g_idx[owner]]

    # ---------- customers and their dirt ----------
    canon_region, region_text = _regions(rng, n)
    age = np.clip(rng.normal(G["age_mean"][g_idx], 9), 18, 80).round()
    gender = rng.choice(2, n)
    industry = rng.choice(len(INDUSTRIES), n)
    phone_num = _unique_ints(rng, 13_000_000_000, 19_000_000_000, n)
    role = np.zeros(n, bool)
    everyone = np.arange(n)
    dup_src = _pick(rng, everyone, d.c_duplicate, role)
    bad_age = _pick(rng, everyone, d.c_invalid_age, role)
    one_missing = _pick(rng, everyone, d.c_one_missing, role)
    to_complete = _pick(rng, everyone, d.c_to_complete, role)
    obs = _pick(rng, everyone, d.c_signup_after_first_order, role)
    bad_region = _pick(rng, everyone, d.c_bad_region, role)
    bad_signup = _pick(rng, everyone, d.c_bad_signup_date, role)
    signup[obs] = first[obs] + rng.integers(10, 100, len(obs)) * DAY

    # duplicates: id n+i shares a phone (re-formatted) or e-mail (re-cased) with dup_src[i];
    # a share of them get a third id that shares the second's e-mail (a transitive chain)
    k = len(dup_src)
    chain = dup_src[: int(round(d.c_chain * k))]
    extra_src = np.concatenate([dup_src, chain])  # original customer of each extra id
    n_extra = len(extra_src)
    share_phone = np.concatenate([rng.random(k) < 0.5, np.ones(len(chain), bool)])
    share_phone[k:] = False  # chain ids share the previous dup's e-mail
    share_phone[: len(chain)] = True  # ... which therefore must have its own e-mail
    n_test = int(round(d.c_test * n))
    total = n + n_extra + n_test
    ids = _ids("C", np.arange(total) + 1).to_numpy(zero_copy_only=False).astype(object)
    test_by_id = np.arange(n_test) % 2 == 0
    ids[n + n_extra:][test_by_id] = _ids("TEST", np.arange(test_by_id.sum()) + 1, 5).to_numpy(
        zero_copy_only=False)
    cust = pd.DataFrame({
        "customer_id": ids[:n],
        "signup_day": signup,
        "age": age,
        "gender": np.array(["男", "女"], dtype=object)[gender],
        "region": region_text,
        "industry": np.array(INDUSTRIES, dtype=object)[industry],
        "phone_num": phone_num,
        "email": _join("u", _text(pc.utf8_lower(pa.array(ids[:n], pa.string()))), "@example.com"),
        "is_test": "0",
    })
    extra = cust.iloc[extra_src].copy()
    extra["customer_id"] = ids[n:n + n_extra]
    extra["signup_day"] = extra["signup_day"] + rng.integers(5, 90, n_extra) * DAY
    extra["email"] = np.where(share_phone, _join("x", extra["customer_id"].to_numpy(), "@example.net"),
                              _text(pc.utf8_upper(pa.array(extra["email"].to_numpy(), pa.string()))))
    extra.loc[~share_phone, "phone_num"] = _unique_ints(rng, 19_000_000_000, 19_500_000_000,
                                                        int((~share_phone).sum()))
    # chain ids: share the e-mail of the first len(chain) dups, with a fresh phone
    extra.iloc[k:, extra.columns.get_loc("email")] = extra["email"].iloc[: len(chain)].to_numpy()
    canonical_of_extra = cust["customer_id"].to_numpy()[extra_src]
    tests = pd.DataFrame({
        "customer_id": ids[n + n_extra:],
        "signup_day": start + rng.integers(0, cfg.history_days, n_test) * DAY,
        "age": 30.0, "gender": "男", "region": "北京-北京", "industry": "互联网",
        "phone_num": _unique_ints(rng, 19_500_000_000, 19_999_999_999, n_test),
        "email": _join("qa+", ids[n + n_extra:], "@example.org"),
        "is_test": np.where(test_by_id, "", "1"),
    })
    customers = pd.concat([cust, extra, tests], ignore_index=True)
    c_dirt = np.full(len(customers), "", dtype=object)
    c_dirt[bad_age], c_dirt[one_missing], c_dirt[to_complete] = "invalid_age", "one_missing", "to_complete"
    c_dirt[obs], c_dirt[bad_region], c_dirt[bad_signup] = "signup_after_first_order", "bad_region", "bad_signup_date"
    c_dirt[n:n + n_extra] = "duplicate_customer"
    c_dirt[n + n_extra:] = "test_account"
    customers.loc[bad_age, "age"] = rng.choice([0.0, 200.0, -1.0, 150.0], len(bad_age))
    true_signup = customers["signup_day"].to_numpy().copy()
    profile = ["signup_day", "age", "gender", "region", "industry"]
    which = rng.choice(len(profile), len(one_missing))
    for j, col in enumerate(profile):
        customers.loc[one_missing[which == j], col] = None
    for col in ("gender", "region", "industry"):
        customers.loc[to_complete, col] = None
    customers.loc[bad_region, "region"] = rng.choice(["火星-基地", "未知地区", "N1-X9", "海外"], len(bad_region))

    # ---------- orders: dup ids take some of their original's orders ----------
    tx_owner_id = cust["customer_id"].to_numpy()[owner]
    true_id = tx_owner_id.copy()
    src_to_extra = pd.Series(np.arange(n_extra), index=extra_src)
    first_extra = src_to_extra[~src_to_extra.index.duplicated()]
    has_dup = np.isin(owner, extra_src)
    move = has_dup & (rng.random(m) < 0.5)
    moved_to = extra["customer_id"].to_numpy()[first_extra.reindex(owner[move]).to_numpy().astype(int)]
    chain_set = set(chain.tolist())
    chain_extra = pd.Series(np.arange(k, n_extra), index=chain)
    in_chain = np.isin(owner[move], list(chain_set)) & (rng.random(move.sum()) < 0.5)
    moved_to[in_chain] = extra["customer_id"].to_numpy()[chain_extra.reindex(owner[move][in_chain]).to_numpy()]
    tx_owner_id[move] = moved_to
    order_no = rng.permutation(m) + 1
    tx = pd.DataFrame({
        "order_id": _ids("O", order_no, 9).to_numpy(zero_copy_only=False),
        "customer_id": tx_owner_id,
        "day": day,
        "amount": amount,
        "quantity": 1 + rng.poisson(0.4, m),
        "category": np.array(CATEGORIES, dtype=object)[category],
        "channel": np.where(online, rng.choice(["online", "线上", "APP"], m, p=[.7, .2, .1]),
                            rng.choice(["offline", "门店", "线下"], m, p=[.7, .2, .1])),
        "true_customer_id": true_id,
        "dirt": "",
    })
    tx["product"] = _join(tx["category"].to_numpy(), "-",
                          _text(pc.utf8_lpad(pc.cast(pa.array(rng.integers(1, 60, m)), pa.string()), 3, "0")))

    # ---------- transaction dirt, on disjoint rows ----------
    taken = np.zeros(m, bool)
    rows = np.arange(m)
    blocks = {name: _pick(rng, rows, getattr(d, f"t_{name}"), taken) for name in
              ("bad_date", "missing_amount", "missing_customer", "negative_amount", "future_date",
               "outlier", "unknown_customer", "duplicate_row", "refund")}
    tx.loc[blocks["missing_amount"], "amount"] = np.nan
    tx.loc[blocks["missing_customer"], "customer_id"] = None
    neg = blocks["negative_amount"]
    tx.loc[neg, "amount"] = np.where(rng.random(len(neg)) < 0.8, -tx.loc[neg, "amount"], 0.0)
    tx.loc[blocks["outlier"], "amount"] = np.round(base_mean * rng.uniform(20, 60, len(blocks["outlier"])), 2)
    tx.loc[blocks["unknown_customer"], "customer_id"] = _ids(
        "C", 9_000_000 + np.arange(len(blocks["unknown_customer"]))).to_numpy(zero_copy_only=False)
    for name in ("bad_date", "missing_amount", "missing_customer", "negative_amount", "future_date",
                 "outlier", "unknown_customer"):
        tx.loc[blocks[name], "dirt"] = name
    refunds = tx.iloc[blocks["refund"]].copy()
    refunds["day"] = refunds["day"] + rng.integers(0, 15, len(refunds)) * DAY
    refunds["day"] = np.minimum(refunds["day"].to_numpy(), end)
    refunds["amount"] = -np.round(refunds["amount"] * rng.choice([1.0, 0.5, 0.3], len(refunds)), 2)
    refunds["dirt"] = "refund"
    copies = tx.iloc[blocks["duplicate_row"]].copy()
    copies["dirt"] = "duplicate_row"
    test_rows = pd.DataFrame({
        "order_id": _ids("T", np.arange(n_test * 3) + 1, 9).to_numpy(zero_copy_only=False),
        "customer_id": np.repeat(tests["customer_id"].to_numpy(), 3),
        "day": end - rng.integers(1, 300, n_test * 3) * DAY,
        "amount": np.round(rng.uniform(1, 100, n_test * 3), 2), "quantity": 1,
        "category": "数码", "channel": "online", "product": "数码-001",
        "true_customer_id": np.repeat(tests["customer_id"].to_numpy(), 3), "dirt": "test_account",
    })
    tx = pd.concat([tx, refunds, copies, test_rows], ignore_index=True)
    tx = tx.sort_values("day", kind="stable").reset_index(drop=True)

    # ---------- render as an export would write it ----------
    date_text = _fmt_dates(tx["day"].to_numpy().astype("datetime64[D]"), rng)
    dates = pd.Series(_text(date_text), dtype=object)
    bad = (tx["dirt"] == "bad_date").to_numpy()
    dates[bad] = rng.choice(["unknown", "2024-13-45", "0000-00-00", "32/13/2024", "昨天"], bad.sum())
    fut = (tx["dirt"] == "future_date").to_numpy()
    year = tx.loc[fut, "day"].dt.year.astype(str)
    swapped = year.str[:2] + year.str[3] + year.str[2]  # 2025 -> 2052: a typo into the future
    dates[fut] = (swapped + tx.loc[fut, "day"].dt.strftime("-%m-")
                  + tx.loc[fut, "day"].dt.day.clip(upper=28).astype(str).str.zfill(2)).to_numpy()
    transactions = pd.DataFrame({
        "order_id": tx["order_id"], "customer_id": tx["customer_id"], "order_date": dates,
        "amount": tx["amount"], "quantity": tx["quantity"], "product": tx["product"],
        "category": tx["category"], "channel": tx["channel"],
    })
    signup_text = pd.Series(_fmt_dates(customers["signup_day"].fillna(start).to_numpy().astype("datetime64[D]"), rng)
                            .to_numpy(zero_copy_only=False), dtype=object)
    signup_text[customers["signup_day"].isna().to_numpy()] = None
    bs = np.asarray(bad_signup)
    signup_text[bs] = rng.choice(["2023-02-30", "unknown", "00/00/0000"], len(bs))
    phone_fmt = rng.choice(3, len(customers))
    p = pc.cast(pa.array(customers["phone_num"].to_numpy(np.int64)), pa.string())
    a, b, c = (pc.utf8_slice_codeunits(p, i, j) for i, j in ((0, 3), (3, 7), (7, 11)))
    phone = _text(pc.choose(pa.array(phone_fmt.astype(np.int8)), p,
                            pc.binary_join_element_wise("+86 ", a, "-", b, "-", c, ""),
                            pc.binary_join_element_wise(a, " ", b, " ", c, "")))
    customers_out = pd.DataFrame({
        "customer_id": customers["customer_id"], "signup_date": signup_text,
        "age": customers["age"].astype("Int64"),
        "gender": customers["gender"].where(rng.random(len(customers)) < 0.7,
                                            customers["gender"].map({"男": "M", "女": "F"})),
        "region": customers["region"], "industry": customers["industry"],
        "phone": phone, "email": customers["email"], "is_test": customers["is_test"],
    })
    truth_customers = pd.DataFrame({
        "customer_id": customers["customer_id"],
        "true_customer_id": np.concatenate([cust["customer_id"], canonical_of_extra, tests["customer_id"]]),
        "latent_group": np.concatenate([np.array([g.name for g in GROUPS], dtype=object)[g_idx],
                                        np.array([g.name for g in GROUPS], dtype=object)[g_idx[extra_src]],
                                        np.full(n_test, "test", dtype=object)]),
        "churn_date": np.concatenate([np.where(churned, churn_at, np.datetime64("NaT")),
                                      np.where(churned, churn_at, np.datetime64("NaT"))[extra_src],
                                      np.full(n_test, np.datetime64("NaT"), "datetime64[D]")]).astype("datetime64[ns]"),
        "signup_date": true_signup,
        "region": np.concatenate([canon_region, canon_region[extra_src], np.full(n_test, "北京-北京", dtype=object)]),
        "dirt": c_dirt,
    })
    truth_customers.loc[bad_region, "region"] = None
    truth_tx = pd.DataFrame({"source_row": np.arange(len(tx)), "dirt": tx["dirt"],
                             "true_customer_id": tx["true_customer_id"], "order_date": tx["day"]})
    summary = {
        "config": {**asdict(cfg), "end_date": str(cfg.end_date)},
        "customers": {"real": n, "rows": len(customers_out)},
        "transactions": {"rows": len(transactions)},
        "customer_dirt": pd.Series(c_dirt[c_dirt != ""]).value_counts().to_dict(),
        "transaction_dirt": tx["dirt"][tx["dirt"] != ""].value_counts().to_dict(),
        "base_mean_amount": round(base_mean, 2),
    }
    return {"customers": customers_out, "transactions": transactions,
            "truth_customers": truth_customers, "truth_transactions": truth_tx, "summary": summary}


def write(data: dict, out_dir: str | Path, fmt: str = "csv") -> dict[str, Path]:
    """customers.<fmt>, transactions.<fmt>, and truth/ with the ground truth."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    out = Path(out_dir)
    (out / "truth").mkdir(parents=True, exist_ok=True)
    paths = {}
    for name in ("customers", "transactions"):
        table = pa.Table.from_pandas(data[name], preserve_index=False)
        path = out / f"{name}.{fmt}"
        if fmt == "csv":
            pacsv.write_csv(table, path)
        else:
            pq.write_table(table, path)
        paths[name] = path
    for name in ("truth_customers", "truth_transactions"):
        path = out / "truth" / f"{name.removeprefix('truth_')}.parquet"
        data[name].to_parquet(path, index=False)
        paths[name] = path
    paths["summary"] = out / "truth" / "summary.json"
    paths["summary"].write_text(json.dumps(data["summary"], indent=2, ensure_ascii=False, default=str), "utf-8")
    return paths
