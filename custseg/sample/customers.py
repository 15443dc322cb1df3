"""The customer table as a CRM would export it, with duplicate ids, test accounts and gaps."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from custseg.sample import text
from custseg.sample.population import DAY, GROUPS, Population, age_mean
from features.vector import to_pandas

INDUSTRIES = (
    "零售",
    "制造",
    "金融",
    "教育",
    "医疗",
    "互联网",
    "餐饮",
    "物流",
    "房地产",
    "政府机构",
)
PROFILE = ("signup", "age", "gender", "region", "industry")


def unique_ints(rng: np.random.Generator, low: int, high: int, n: int) -> np.ndarray:
    """n distinct random integers in [low, high), in random order."""
    out = np.unique(rng.integers(low, high, int(n * 1.05) + 16))
    while len(out) < n:
        out = np.unique(np.concatenate([out, rng.integers(low, high, n)]))
    return rng.permutation(out)[:n]


def pick(rng: np.random.Generator, size: int, rate: float, taken: np.ndarray) -> np.ndarray:
    """round(rate x size) rows not yet taken (so each row gets one kind of dirt); marks them."""
    free = np.flatnonzero(~taken[:size])
    k = min(int(round(rate * size)), len(free))
    chosen = np.sort(rng.choice(free, k, replace=False)) if k else np.array([], np.int64)
    taken[chosen] = True
    return chosen


@dataclass
class CustomerTable:
    frame: pd.DataFrame  # as written to customers.csv
    truth: pd.DataFrame
    ids: pa.Array  # every customer id: real, then extra (duplicate) ids, then test accounts
    n_real: int
    extra_src: np.ndarray  # real customer behind each extra id
    n_direct: int  # extra ids [0, n_direct) share with the real customer; the rest form chains
    test_start: int


def build(
    rng: np.random.Generator,
    pop: Population,
    rates,
    start: np.datetime64,
    history_days: int,
    id_offset: int = 0,
) -> CustomerTable:
    n = len(pop.group)
    taken = np.zeros(n, bool)
    dup_src = pick(rng, n, rates.c_duplicate, taken)
    roles = {
        name: pick(rng, n, getattr(rates, f"c_{name}"), taken)
        for name in (
            "invalid_age",
            "one_missing",
            "to_complete",
            "signup_after_first_order",
            "bad_region",
            "bad_signup_date",
        )
    }
    signup = pop.signup.copy()
    late = roles["signup_after_first_order"]
    signup[late] = pop.first[late] + rng.integers(10, 100, len(late)) * DAY

    # an extra id shares a phone (written differently) or an e-mail (re-cased) with a real
    # customer; a chain id shares the e-mail of an extra id that itself shares the phone
    k = len(dup_src)
    chain = dup_src[: int(round(rates.c_chain * k))]
    extra_src = np.concatenate([dup_src, chain])
    n_extra, n_test = len(extra_src), int(round(rates.c_test * n))
    total = n + n_extra + n_test
    share_phone = np.concatenate([rng.random(k) < 0.5, np.zeros(len(chain), bool)])
    share_phone[: len(chain)] = True  # chained extras keep their own e-mail to pass it on
    src = np.concatenate([np.arange(n), extra_src, np.full(n_test, -1)])  # real row behind each

    ids = text.ids("C", id_offset + np.arange(total) + 1)
    test_rows = n + n_extra + np.flatnonzero(np.arange(n_test) % 2 == 0)
    test_ids = text.ids("TEST", id_offset + np.arange(len(test_rows)) + 1, 5)
    ids = text.replace_at(ids, test_rows, test_ids)
    lower = pc.utf8_lower(ids)
    e_real = pc.binary_join_element_wise("u", lower.slice(0, n), "@example.com", "")
    own = pc.binary_join_element_wise("x", lower.slice(n, n_extra), "@example.net", "")
    shared = pc.utf8_upper(pc.take(e_real, pa.array(extra_src)))
    e_extra = pc.choose(pa.array(share_phone.astype(np.int8)), shared, own)
    hang_on = np.where(np.arange(n_extra) >= k, np.arange(n_extra) - k, np.arange(n_extra))
    e_extra = pc.take(e_extra, pa.array(hang_on))  # a chain id takes its extra id's e-mail
    e_test = pc.binary_join_element_wise("qa+", lower.slice(n + n_extra), "@example.org", "")
    email = pa.concat_arrays([e_real, e_extra, e_test])

    phone = np.empty(total, np.int64)
    phone[:n] = unique_ints(rng, 13_000_000_000, 19_000_000_000, n)
    phone[n : n + n_extra] = np.where(
        share_phone, phone[extra_src], unique_ints(rng, 19_000_000_000, 19_500_000_000, n_extra)
    )
    phone[n + n_extra :] = unique_ints(rng, 19_500_000_000, 19_999_999_999, n_test)
    style = rng.choice(3, total)
    style[n : n + n_extra][share_phone] = (
        1  # the shared phone of a duplicate is written differently
    )

    real = np.where(src >= 0, src, 0)
    canon_region, region_text = text.region_spellings(rng, n)
    day = np.concatenate(
        [
            signup,
            signup[extra_src] + rng.integers(5, 90, n_extra) * DAY,
            start + rng.integers(0, history_days, n_test) * DAY,
        ]
    )
    age = np.clip(rng.normal(age_mean(pop.group), 9), 18, 80).round()[real]
    gender = rng.choice(2, n)[real]
    industry = rng.choice(len(INDUSTRIES), n)[real]
    region = np.asarray(region_text, dtype=object)[real]
    is_test_row = src < 0
    age[is_test_row], gender[is_test_row], industry[is_test_row] = 30, 0, 5
    region[is_test_row] = "北京-北京"

    # profile dirt, on real customers only
    age[roles["invalid_age"]] = rng.choice([0.0, 200.0, -1.0, 150.0], len(roles["invalid_age"]))
    true_signup = day.copy()  # before any dirt
    missing = {f: np.zeros(total, bool) for f in PROFILE}
    which = rng.choice(len(PROFILE), len(roles["one_missing"]))
    for j, f in enumerate(PROFILE):
        missing[f][roles["one_missing"][which == j]] = True
    for f in ("gender", "region", "industry"):
        missing[f][roles["to_complete"]] = True
    region[roles["bad_region"]] = rng.choice(
        ["火星-基地", "未知地区", "N1-X9", "海外"], len(roles["bad_region"])
    )

    signup_text = text.dates(day, rng)
    signup_text = text.replace_at(
        signup_text,
        roles["bad_signup_date"],
        rng.choice(["2023-02-30", "unknown", "00/00/0000"], len(roles["bad_signup_date"])),
    )
    gender_text = np.where(rng.random(total) < 0.7, gender, gender + 2)  # 男/女 or M/F
    is_test = np.full(total, 0, np.int8)
    is_test[n + n_extra :] = 1
    is_test_text = text.pick(["0", "1", ""], np.where(is_test == 1, 1, 0))
    is_test_text = text.replace_at(is_test_text, test_rows, [""] * len(test_rows))  # by id only

    def blank(arr: pa.Array, field: str) -> pa.Array:
        return pc.if_else(pa.array(missing[field]), pa.scalar(None, arr.type), arr)

    table = pa.table(
        {
            "customer_id": ids,
            "signup_date": blank(signup_text, "signup"),
            "age": blank(pa.array(age.astype(np.int64)), "age"),
            "gender": blank(text.pick(["男", "女", "M", "F"], gender_text), "gender"),
            "region": blank(pa.array(region, pa.string()), "region"),
            "industry": blank(text.pick(INDUSTRIES, industry), "industry"),
            "phone": text.phones(phone, style),
            "email": email,
            "is_test": is_test_text,
        }
    )

    dirt = np.full(total, "", dtype=object)
    for name, rows in roles.items():
        dirt[rows] = name
    dirt[n : n + n_extra] = "duplicate_customer"
    dirt[n + n_extra :] = "test_account"
    names = np.array([g.name for g in GROUPS] + ["test"], dtype=object)
    churn = np.where(pop.churned, pop.churn_at, np.datetime64("NaT"))
    canon = np.asarray(canon_region, dtype=object)[real]
    canon[is_test_row] = "北京-北京"
    canon[roles["bad_region"]] = None
    true_ids = pc.take(ids, pa.array(np.where(src >= 0, src, np.arange(total))))
    truth = pd.DataFrame(
        {
            "customer_id": ids.to_pandas().astype("string[pyarrow]"),
            "true_customer_id": true_ids.to_pandas().astype("string[pyarrow]"),
            "latent_group": names[np.where(src >= 0, pop.group[real], len(GROUPS))],
            "churn_date": np.where(src >= 0, churn[real], np.datetime64("NaT")).astype(
                "datetime64[ns]"
            ),
            "signup_date": true_signup.astype("datetime64[ns]"),
            "region": canon,
            "dirt": dirt,
        }
    )
    return CustomerTable(to_pandas(table), truth, ids, n, extra_src, k, n + n_extra)
