"""Realistic sample data with known ground truth: `custseg sample`.

Customers come from latent behaviour groups (loyal high value, new promising, occasional
price-sensitive, dormant, one-off) with seasonality, gamma-distributed repurchase cycles and
known churn dates, Chinese regions and industries. A row is an order line: a share of the orders
has several lines sharing the order id. Dirt is injected at known rates into disjoint rows, and
each injected row is recorded, so tests can check that cleaning finds exactly it. Refunds either
repeat their order's id or come on cancellation invoices (order ids matching CANCEL_ID_PATTERN:
clean them with `cancel_id_pattern` set to it, as `custseg run` on the sample does).
Vectorised throughout (numpy + Arrow string kernels): 1M customers / ~10M orders in seconds.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from core import catalog
from custseg.sample import customers, orders
from custseg.sample.orders import CANCEL_ID_PATTERN
from custseg.sample.population import CATEGORIES, DAY, GROUPS, SEASON, draw_orders, draw_population

__all__ = [
    "CANCEL_ID_PATTERN",
    "CATEGORIES",
    "GROUPS",
    "SEASON",
    "DirtRates",
    "SampleConfig",
    "generate",
    "write",
]


@dataclass(frozen=True)
class DirtRates:
    """Share of real customers (c_) or real order rows (t_) that get each kind of dirt."""

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
    t_refund: float = 0.01  # negative lines refunding an order (see SampleConfig.cancel_share)


@dataclass
class SampleConfig:
    customers: int = 5000
    seed: int = 42
    end_date: date = date(2026, 6, 30)
    history_days: int = 3 * 365
    orders_scale: float = 1.0  # multiplies order intensity (about 8 orders per customer at 1.0)
    multi_line_share: float = 0.2  # clean orders written as 2-4 lines (a product each)
    cancel_share: float = 0.5  # refunds on a cancellation invoice (C...), not their order's id
    dirt: DirtRates = field(default_factory=DirtRates)
    # added to every customer number (C..., TEST...) and, times ORDERS_PER_ID, to every order
    # number, and where the unknown customers' numbers start: blocks of one large log
    # (`custseg.sample.blocks`) get disjoint ids this way
    id_offset: int = 0
    unknown_id_start: int = 9_000_000


def generate(cfg: SampleConfig) -> dict:
    """customers and transactions (as an export writes them) and their ground truth."""
    rng = np.random.default_rng(cfg.seed)
    end = np.datetime64(cfg.end_date, "D")
    pop = draw_population(rng, cfg.customers, end, cfg.history_days)
    o = draw_orders(rng, pop, cfg.orders_scale)
    cust = customers.build(
        rng, pop, cfg.dirt, end - cfg.history_days * DAY, cfg.history_days, cfg.id_offset
    )
    transactions, truth_tx, counts = orders.build(
        rng,
        o,
        cust,
        cfg.dirt,
        end,
        cfg.multi_line_share,
        cfg.cancel_share,
        order_offset=cfg.id_offset * orders.ORDERS_PER_ID,
        unknown_start=cfg.unknown_id_start,
    )
    c_dirt, t_dirt = cust.truth["dirt"], truth_tx["dirt"]
    summary = {
        "config": {**asdict(cfg), "end_date": str(cfg.end_date)},
        "customers": {"real": cfg.customers, "rows": len(cust.frame)},
        "transactions": {"rows": len(transactions), "orders": len(o.owner), **counts},
        "customer_dirt": c_dirt[c_dirt != ""].value_counts().to_dict(),
        "transaction_dirt": t_dirt[t_dirt != ""].value_counts().to_dict(),
        "base_mean_amount": round(o.base_mean, 2),
    }
    return {
        "customers": cust.frame,
        "transactions": transactions,
        "truth_customers": cust.truth,
        "truth_transactions": truth_tx,
        "summary": summary,
    }


def write(data: dict, out_dir: str | Path, fmt: str = "csv") -> dict[str, Path]:
    """customers.<fmt>, transactions.<fmt>, and truth/ with the ground truth."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    out = Path(out_dir)
    (out / catalog.SAMPLE_TRUTH).mkdir(parents=True, exist_ok=True)
    paths = {}
    for name in ("customers", "transactions"):
        table = pa.Table.from_pandas(data[name], preserve_index=False)
        path = out / catalog.sample_file(name, fmt)
        pacsv.write_csv(table, path) if fmt == "csv" else pq.write_table(table, path)
        paths[name] = path
    for name in ("truth_customers", "truth_transactions"):
        path = (
            out / catalog.SAMPLE_TRUTH / catalog.sample_file(name.removeprefix("truth_"), "parquet")
        )
        pd.DataFrame(data[name]).to_parquet(path, index=False)
        paths[name] = path
    paths["summary"] = out / catalog.SAMPLE_TRUTH / "summary.json"
    text = json.dumps(data["summary"], indent=2, ensure_ascii=False, default=str)
    paths["summary"].write_text(text, "utf-8")
    return paths
