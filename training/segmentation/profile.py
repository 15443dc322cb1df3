"""Segment profiles: size, revenue share, median R/F/M and key features against everyone."""

from __future__ import annotations

import numpy as np
import pandas as pd

from training.segmentation.base import FittedScheme, Strategy, numeric

KEY_FEATURES = (
    "recency_days",
    "frequency_orders",
    "monetary",
    "avg_order_value",
    "tenure_days",
    "interpurchase_mean_days",
    "online_share",
    "orders_trend_90d",
    "spend_180d",
)


def profile(
    features: pd.DataFrame,
    labels: np.ndarray,
    scheme: FittedScheme,
    strategies: dict[str, Strategy],
) -> pd.DataFrame:
    """One row per non-empty segment (in the scheme's display order), then `all`.

    Columns: segment, name, name_zh, definition (what puts a customer there, `definitions`),
    customers, customer_share, revenue_share, the median of each key feature and
    `<feature>_vs_all` (segment median / overall median), strategy columns.
    """
    from training.segmentation.definitions import definitions

    present = [c for c in KEY_FEATURES if c in features]
    data = pd.DataFrame({c: numeric(features, c) for c in present})
    data["segment"] = labels
    revenue = (
        np.nan_to_num(numeric(features, "monetary"))
        if "monetary" in features
        else np.zeros(len(features))
    )
    data["_revenue"] = revenue
    g = data.groupby("segment", sort=False)
    out = pd.DataFrame({"customers": g.size(), "_revenue": g["_revenue"].sum()})
    medians = g[present].median()
    overall = data[present].median()
    out = out.join(medians)
    order = [s.key for s in scheme.segments if s.key in out.index]
    out = out.loc[order]
    total_rev = revenue.sum()
    out["customer_share"] = out["customers"] / max(len(features), 1)
    out["revenue_share"] = out["_revenue"] / total_rev if total_rev > 0 else 0.0
    for c in present:
        out[f"{c}_vs_all"] = out[c] / overall[c] if overall[c] else np.nan
    segs = {s.key: s for s in scheme.segments}
    out.insert(0, "name", [segs[k].name for k in out.index])
    out.insert(1, "name_zh", [segs[k].name_zh for k in out.index])
    defined = definitions(scheme.assigner, features, labels, list(out.index))
    out.insert(2, "definition", [defined.get(k, "") for k in out.index])
    for col in ("direction", "direction_zh", "actions", "actions_zh", "owner"):
        out[f"strategy_{col}"] = [getattr(strategies[segs[k].strategy], col) for k in out.index]
    out["strategy"] = [segs[k].strategy for k in out.index]
    all_row = {
        "name": "all customers",
        "name_zh": "全部客户",
        "definition": "",
        "customers": len(features),
        "customer_share": 1.0,
        "revenue_share": 1.0,
        **overall.to_dict(),
    }
    out = pd.concat([out.drop(columns="_revenue"), pd.DataFrame([all_row], index=["all"])])
    out.index.name = "segment"
    cols = [
        "name",
        "name_zh",
        "definition",
        "customers",
        "customer_share",
        "revenue_share",
        *present,
    ]
    cols += (
        [f"{c}_vs_all" for c in present]
        + ["strategy"]
        + [c for c in out if c.startswith("strategy_")]
    )
    return out[cols].reset_index()


def rounded(table: pd.DataFrame) -> pd.DataFrame:
    """A profile table (or several, stacked) as profiles.csv holds it: shares to 4 decimals,
    money to 2, counts (customers, and medians of whole-number features) as whole numbers,
    other numbers and `_vs_all` ratios to 2 decimals: what a reader compares, not float noise."""
    from features.registry import describe

    units = {f.name: f for f in describe(list(table.columns))}
    out = table.copy()
    for column in out.columns:
        if not pd.api.types.is_numeric_dtype(out[column]) or column == "segment":
            continue
        feature = units.get(column)
        if column == "customers" or (feature and feature.whole):
            out[column] = out[column].round().astype("Int64")
        elif column.endswith("_share") or (feature and feature.unit == "share"):
            out[column] = out[column].round(4)
        else:  # money, days between orders, ratios
            out[column] = out[column].round(2)
    return out
