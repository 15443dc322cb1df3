"""Simulate a campaign's outcome for a plan of `custseg campaign plan`: the orders of the
campaign window and the e-mail events, with a planted conversion uplift per segment for the
treated customers. For the README's walk-through and for trying `custseg campaign evaluate`;
not part of the product (a real campaign's orders come from the shop).

    python benchmarks/simulate_campaign.py --plan plan.csv -t transactions.csv --out campaign \
        --uplift high_value=0.10 --uplift general=0.05 --days 30 --seed 1

Each customer orders in the window with the probability of their own recent pace (orders in the
180 days before the plan date, spread over the window), plus the segment's uplift when treated;
an order is worth the customer's mean order value with lognormal noise. Treated customers are
sent the e-mail; opens and clicks follow fixed rates, higher for those the campaign converts.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd


def simulate(
    plan: pd.DataFrame,
    history: pd.DataFrame,
    uplift: dict[str, float],
    days: int = 30,
    seed: int = 1,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(orders, events) of the campaign window after the plan date."""
    rng = np.random.default_rng(seed)
    start = pd.Timestamp(plan["plan_date"].iloc[0])
    h = history[history["order_date"] < start]
    recent = h[h["order_date"] >= start - pd.Timedelta(days=180)]
    key = recent["order_id"] if "order_id" in recent else recent["order_date"]
    pace = recent.assign(_o=key).groupby("customer_id")["_o"].nunique() / 180
    value = h.groupby("customer_id")["amount"].sum() / h.groupby("customer_id").size()
    ids = plan["customer_id"].astype(str)
    base = 1 - np.exp(-pace.reindex(ids).fillna(0).to_numpy() * days)
    treated = (plan["group"] == "treatment").to_numpy()
    lift = plan["segment"].map(uplift).fillna(0.0).to_numpy() * treated
    p = np.clip(base + lift, 0, 1)
    converted = rng.random(len(plan)) < p
    typical = value.clip(lower=1).reindex(ids).fillna(value.median()).to_numpy()
    amount = typical * rng.lognormal(-0.125, 0.5, len(plan))
    day = rng.integers(0, days, len(plan))
    orders = pd.DataFrame(
        {
            "customer_id": ids[converted].to_numpy(),
            "order_id": [f"S{i:07d}" for i in range(int(converted.sum()))],
            "order_date": (start + pd.to_timedelta(day[converted], unit="D")).strftime("%Y-%m-%d"),
            "amount": amount[converted].round(2),
        }
    )
    opened = treated & (rng.random(len(plan)) < np.where(converted, 0.6, 0.25))
    clicked = opened & (rng.random(len(plan)) < np.where(converted, 0.5, 0.15))
    events = pd.concat(
        [pd.DataFrame({"customer_id": ids[m].to_numpy(), "event": e}) for e, m in
         (("sent", treated), ("open", opened), ("click", clicked))],
        ignore_index=True,
    )  # fmt: skip
    return orders, events


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--plan", type=Path, required=True)
    ap.add_argument("-t", "--transactions", type=Path, required=True, help="history before")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--uplift", action="append", default=[], metavar="SEGMENT=POINTS")
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    plan = pd.read_csv(a.plan, encoding="utf-8-sig", dtype={"customer_id": str, "segment": str})
    read = pd.read_parquet if a.transactions.suffix == ".parquet" else pd.read_csv
    history = read(a.transactions)
    history["customer_id"] = history["customer_id"].astype(str)
    history["order_date"] = pd.to_datetime(history["order_date"], errors="coerce")
    history["amount"] = pd.to_numeric(history["amount"], errors="coerce").fillna(0)
    uplift = {k: float(v) for k, v in (u.split("=", 1) for u in a.uplift)}
    orders, events = simulate(plan, history, uplift, a.days, a.seed)
    a.out.mkdir(parents=True, exist_ok=True)
    orders.to_csv(a.out / "orders_after.csv", index=False)
    events.to_csv(a.out / "events.csv", index=False)
    print(f"{len(orders):,} orders, {len(events):,} events -> {a.out}")


if __name__ == "__main__":
    main()
