"""Golden feature values: what each version of the feature definitions computes on one small
fixed log (`definitions.VERSION`). The definition hash names the version, not the source text,
so a change that keeps every value (a speed-up, a refactor) keeps serving the models trained
before it; `tests/test_definition_version.py` fails when the values move and the version did
not. Record a new version's values with `python -m tests.golden.record` (it never overwrites a
version's file)."""

from __future__ import annotations

import json
import math
from datetime import date
from pathlib import Path

import pandas as pd

HERE = Path(__file__).parent
AS_OF = date(2026, 6, 30)
# the log as written, with the customer table; the same without order ids or customer table;
# the log as written under a custom [features] config (CUSTOM)
SHAPES = ("order-lines", "row-per-order", "custom-config")
CUSTOM = {
    "windows": [14, 60],  # the trend's 45 and 90 days are then hidden spans
    "trend_days": 45,
    "top_categories": 3,
    "age_bands": [30, 50],
    "tags": {
        "steady": {"alpha": 1.0, "period_days": 30, "threshold": 3},
        "small_online": {"channel": "online", "max_amount": 50, "min_amount": 5},
        "category_fan": {"category": ["服装", "类目3"], "days": "weekday", "alpha": 0.5},
        "big_refunder": {"refund": True, "min_amount": 20, "threshold": 1},
        "category_refunder": {"refund": True, "category": "@top", "threshold": 1},
    },
}
CUTOFFS = [date(2026, 3, 31), date(2026, 5, 31)]  # labels: repurchase in 30 days, churn in 90


def values_path(version: int) -> Path:
    return HERE / f"features_v{version}.json"


def fixture() -> tuple[pd.DataFrame, pd.DataFrame]:
    """(clean transactions, clean customers) of the fixed log."""
    return (
        pd.read_parquet(HERE / "transactions.parquet"),
        pd.read_parquet(HERE / "customers.parquet"),
    )


def features(shape: str, engine: str) -> pd.DataFrame:
    """The feature table of the fixed log in `shape` on `engine`."""
    from features.build import build_features
    from features.definitions import FeatureConfig

    tx, customers = fixture()
    if shape == "row-per-order":
        return build_features(tx.drop(columns="order_id"), None, AS_OF, engine=engine)
    cfg = FeatureConfig.from_dict(CUSTOM) if shape == "custom-config" else None
    return build_features(tx, customers, AS_OF, cfg, engine=engine)


def labels(engine: str) -> pd.DataFrame:
    """The targets of the fixed log at CUTOFFS (`definitions.labels`)."""
    from features.build import build_labels

    return build_labels(fixture()[0], CUTOFFS, engine=engine)


def as_records(table: pd.DataFrame) -> list[dict]:
    """One JSON-ready dict a row: missing values as None, numbers as Python numbers at full
    precision, dates as text."""
    out = table.copy()
    for name in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[name]):
            out[name] = out[name].dt.strftime("%Y-%m-%d")
    out = out.astype(object)
    return out.where(out.notna(), None).to_dict("records")


def recorded(version: int) -> dict[str, list[dict]]:
    """shape -> the recorded records of `version` (as `as_records` gives them)."""
    doc = json.loads(values_path(version).read_text(encoding="utf-8"))
    return {
        shape: [dict(zip(t["columns"], row, strict=True)) for row in t["rows"]]
        for shape, t in doc["tables"].items()
    }


def same(a, b, rtol: float = 1e-9) -> bool:
    if a is None or b is None:
        return a is b
    if isinstance(a, float) or isinstance(b, float):
        return math.isclose(float(a), float(b), rel_tol=rtol, abs_tol=1e-12)
    return a == b
