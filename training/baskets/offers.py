"""The main job's part of the baskets: next-best products for scores.csv and "what to offer"
per segment of the served schemes for the report (the segment's most frequent next-best
products and its strongest rule)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from training.baskets.build import build_baskets
from training.baskets.config import BasketConfig
from training.baskets.model import NextBestModel
from training.baskets.nextbest import next_best, validate
from training.baskets.rules import rules

TOP = 3  # scores.csv: next_best_1..3


@dataclass
class Offers:
    next_best: pd.DataFrame  # customer_id, next_best_1..3
    by_scheme: list[dict] = field(default_factory=list)  # report rows per served scheme
    model: NextBestModel | None = None  # what scored next_best: registered as <project>-next-best
    validation: dict = field(default_factory=dict)  # its out-of-time check at k = TOP


def offers(tx: pd.DataFrame, as_of, cfg: BasketConfig, named: pd.DataFrame, schemes) -> Offers:
    """`named`: scores' customer_id + segment_<scheme>_name columns; `schemes`: fitted schemes
    (only served ones get a report section)."""
    b = build_baskets(tx, as_of, cfg.level)
    model = NextBestModel.fit(b, cfg)
    picks = next_best(b, cfg, TOP, model)
    for i in range(picks.shape[1] - 1, TOP):  # fewer items than TOP: empty columns
        picks[f"next_best_{i + 1}"] = None
    out = Offers(picks, model=model, validation=validate(b, cfg, k=TOP))
    label = dict(zip(b.items, b.labels, strict=True))
    joined = named.merge(picks, on="customer_id", how="left")
    for s in schemes:
        column = f"segment_{s.name}_name"
        if not s.serve or column not in joined:
            continue
        segments = joined.set_index("customer_id")[column]
        seg_rules = rules(b, replace(cfg, max_antecedent=1), segments)  # "X -> Y" in the report
        rows = []
        for name, group in joined.groupby(column, sort=True):
            products = group[[f"next_best_{i + 1}" for i in range(TOP)]].to_numpy().ravel()
            products = pd.Series(products[pd.notna(products)]).value_counts().head(TOP)
            best = seg_rules[seg_rules["segment"] == name].head(1).to_dict("records")
            rows.append(
                {
                    "segment": name,
                    "customers": len(group),
                    "products": [
                        (p, _label(label, p), n / max(len(group), 1)) for p, n in products.items()
                    ],
                    "rule": best[0] if best else None,
                }
            )
        out.by_scheme.append({"scheme": s.name, "rows": rows})
    return out


def _label(label: dict, item) -> str:
    text = label.get(item)
    return (
        ""
        if text is None or text == item or (isinstance(text, float) and np.isnan(text))
        else str(text)
    )
