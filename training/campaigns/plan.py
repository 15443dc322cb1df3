"""The holdout design: a seeded random control group in every segment of a scheme, the power
of the test each segment allows, and the balance of the groups on pre-period behaviour."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from core.errors import InputError
from training.campaigns import stats

GROUPS = ("treatment", "control")
PLAN_COLUMNS = ("customer_id", "scheme", "segment", "segment_name", "strategy", "group")
PRE_FEATURES = ("recency_days", "frequency", "monetary")
# names the segments/features file may carry them under
FEATURE_ALIASES = {
    "recency_days": ("recency_days", "recency"),
    "frequency": ("frequency", "frequency_180d", "orders"),
    "monetary": ("monetary", "monetary_180d", "revenue"),
}
SMD_LIMIT = 0.1


@dataclass
class Plan:
    table: pd.DataFrame  # one row per customer: PLAN_COLUMNS, plan_date (and clv when known)
    summary: dict
    segments: pd.DataFrame  # one row per segment: sizes, baseline, MDE, needed, SMDs
    warnings: list[str] = field(default_factory=list)


def read_segments(path: Path) -> pd.DataFrame:
    """scores.csv or segments.parquet (or any CSV/Parquet with customer_id and
    segment_<scheme> columns)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    try:
        if path.suffix.lower() == ".parquet":
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_csv(path, encoding="utf-8-sig", dtype={"customer_id": str})
    except (ValueError, OSError) as exc:
        raise InputError(f"{path}: cannot read it as CSV or Parquet ({exc})") from None
    if "customer_id" not in frame:
        raise InputError(f"{path}: no customer_id column")
    frame["customer_id"] = frame["customer_id"].astype(str)
    return frame


def schemes_in(frame: pd.DataFrame) -> list[str]:
    suffixes = ("_name", "_name_zh", "_strategy")
    return [
        c.removeprefix("segment_")
        for c in frame.columns
        if c.startswith("segment_") and not c.endswith(suffixes)
    ]


def history_features(log: pd.DataFrame, as_of: date, window_days: int) -> pd.DataFrame:
    """Per customer of the log, up to `as_of`: recency_days, frequency (orders), monetary (net
    spend) and whether they ordered in the last `window_days` (the baseline conversion)."""
    log = log[log["order_date"].dt.date <= as_of]
    ts = pd.Timestamp(as_of)
    orders = log["order_id"] if "order_id" in log else log["order_date"]
    g = log.assign(_o=orders).groupby("customer_id")
    out = pd.DataFrame(
        {
            "recency_days": (ts - g["order_date"].max()).dt.days,
            "frequency": g["_o"].nunique(),
            "monetary": g["amount"].sum(),
        }
    )
    recent = log[log["order_date"] > ts - pd.Timedelta(days=window_days)]
    out["converted_before"] = out.index.isin(recent["customer_id"].unique())
    out.index = out.index.astype(str)
    return out


def draw(
    frame: pd.DataFrame,
    scheme: str,
    control_share: float,
    seed: int,
    segments: list[str] | None = None,
) -> pd.DataFrame:
    """The plan rows: every customer with a segment of `scheme` (of `segments` when given),
    `control_share` of each segment drawn at random for control. The draw depends only on the
    customers, their segments and the seed, not on the file's row order."""
    column = f"segment_{scheme}"
    if column not in frame:
        known = ", ".join(schemes_in(frame)) or "none"
        raise InputError(f"no column {column} in the segments file; schemes there: {known}")
    if frame["customer_id"].duplicated().any():
        dup = frame.loc[frame["customer_id"].duplicated(), "customer_id"].iloc[0]
        raise InputError(f"the segments file lists customer {dup!r} more than once")
    rows = frame[frame[column].notna()].copy()
    rows["segment"] = rows[column].astype(str)
    if segments:
        unknown = sorted(set(segments) - set(rows["segment"]))
        if unknown:
            known = ", ".join(sorted(rows["segment"].unique()))
            raise InputError(f"--segment {', '.join(unknown)}: not a segment of {scheme} ({known})")
        rows = rows[rows["segment"].isin(segments)]
    if rows.empty:
        raise InputError(f"no customer has a segment of scheme {scheme}")
    rows = rows.sort_values("customer_id", kind="stable").reset_index(drop=True)
    u = np.random.default_rng(seed).random(len(rows))
    rank = pd.Series(u).groupby(rows["segment"].to_numpy()).rank(method="first").to_numpy()
    size = rows.groupby("segment")["segment"].transform("size").to_numpy()
    n_control = np.floor(control_share * size + 0.5)
    rows["group"] = np.where(rank <= n_control, "control", "treatment")
    rows["scheme"] = scheme
    rows["segment_name"] = rows.get(f"{column}_name", rows["segment"]).fillna("")
    rows["strategy"] = rows.get(f"{column}_strategy", pd.Series("", index=rows.index)).fillna("")
    keep = [*PLAN_COLUMNS] + [c for c in ("clv",) if c in rows]
    return rows[keep]


def pre_features(frame: pd.DataFrame, history: pd.DataFrame | None) -> pd.DataFrame:
    """recency_days, frequency, monetary per customer_id: from the log when given, else the
    columns of the segments file that carry them (an empty frame when there are none)."""
    if history is not None:
        return history[list(PRE_FEATURES)]
    found = {}
    for name, aliases in FEATURE_ALIASES.items():
        col = next((a for a in aliases if a in frame), None)
        if col is not None:
            found[name] = pd.to_numeric(frame[col], errors="coerce").to_numpy()
    return pd.DataFrame(found, index=frame["customer_id"].astype(str))


def segment_table(
    plan: pd.DataFrame,
    features: pd.DataFrame,
    baseline: pd.Series | float | None,
    mde_wanted: float | None,
    control_share: float,
) -> tuple[pd.DataFrame, list[str]]:
    """One row per segment: sizes, baseline conversion, the MDE of the drawn groups, the control
    size a requested MDE needs, and the standardised mean differences of the pre-period
    features between the groups; warnings for unbalanced or underpowered segments."""
    g = plan.groupby("segment", sort=True)
    seg = pd.DataFrame(
        {
            "name": g["segment_name"].first(),
            "customers": g.size(),
            "treatment": g["group"].apply(lambda s: int((s == "treatment").sum())),
            "control": g["group"].apply(lambda s: int((s == "control").sum())),
        }
    )
    if isinstance(baseline, pd.Series):
        seg["baseline"] = baseline.reindex(seg.index)
    else:
        seg["baseline"] = np.nan if baseline is None else float(baseline)
    seg["mde"] = stats.mde(seg["baseline"], seg["treatment"], seg["control"])
    seg["mde_relative"] = seg["mde"] / seg["baseline"].where(seg["baseline"] > 0)
    if mde_wanted is not None:
        ratio = (1 - control_share) / control_share if control_share > 0 else np.inf
        seg["control_needed"] = stats.control_needed(seg["baseline"], mde_wanted, ratio)
    warnings = []
    cols = [c for c in PRE_FEATURES if c in features]
    if cols:
        joined = plan[["customer_id", "segment", "group"]].join(features[cols], on="customer_id")
        smd = stats.smd(joined, "segment", joined["group"] == "treatment", cols)
        for c in cols:
            seg[f"smd_{c}"] = smd[c].reindex(seg.index)
        worst = seg[[f"smd_{c}" for c in cols]].abs().max(axis=1)
        for key, value in worst[worst > SMD_LIMIT].items():
            warnings.append(
                f"segment {key}: treatment and control differ before the campaign "
                f"(largest standardised mean difference {value:.2f} > {SMD_LIMIT}); "
                "a small segment or an unlucky draw: try another --seed or a larger control"
            )
    if "control_needed" in seg:
        short = seg[seg["control"] < seg["control_needed"]]
        for key, r in short.iterrows():
            warnings.append(
                f"segment {key}: {r['control']:.0f} in control, {r['control_needed']:.0f} "
                f"needed to detect +{mde_wanted:.1%} conversion"
            )
    return seg, warnings


def plan_id(plan: pd.DataFrame) -> str:
    """A short content hash of the assignment: who is in which group of which segment."""
    text = plan[["customer_id", "segment", "group"]].to_csv(index=False)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def make_plan(
    frame: pd.DataFrame,
    scheme: str,
    *,
    control_share: float,
    seed: int,
    segments: list[str] | None = None,
    log: pd.DataFrame | None = None,
    plan_date: date | None = None,
    window_days: int = 30,
    baseline_rate: float | None = None,
    mde_wanted: float | None = None,
) -> Plan:
    """The plan of a campaign on `scheme`'s segments (see `draw` and `segment_table`)."""
    if not 0 < control_share < 1:
        raise InputError(f"--control-share {control_share}: expected a share in (0, 1)")
    table = draw(frame, scheme, control_share, seed, segments)
    history = None
    if log is not None:
        # orders dated after the plan date (or after today: future-dated errors) are not history
        cap = pd.Timestamp(plan_date or date.today()) + pd.Timedelta(days=0 if plan_date else 1)
        log = log[log["order_date"] < cap]
    if log is not None and not log.empty:
        last = log["order_date"].max().date()
        plan_date = plan_date or last + timedelta(days=1)
        history = history_features(log, plan_date - timedelta(days=1), window_days)
    plan_date = plan_date or date.today()
    if history is not None and baseline_rate is None:
        conv = table["customer_id"].isin(history.index[history["converted_before"]])
        baseline = conv.groupby(table["segment"]).mean()
        source = f"share of the segment's customers with an order in the {window_days} days "
        source += "before the plan date (from the transaction log)"
    else:
        baseline = baseline_rate
        source = "--baseline-rate" if baseline_rate is not None else "none given"
    features = pre_features(frame, history)
    seg, warnings = segment_table(table, features, baseline, mde_wanted, control_share)
    table = table.assign(plan_date=plan_date.isoformat())
    summary = {
        "plan_id": plan_id(table),
        "scheme": scheme,
        "plan_date": plan_date.isoformat(),
        "control_share": control_share,
        "seed": seed,
        "customers": int(len(table)),
        "treatment": int((table["group"] == "treatment").sum()),
        "control": int((table["group"] == "control").sum()),
        "baseline_source": source,
        "window_days": window_days,
        "alpha": stats.ALPHA,
        "power": stats.POWER,
        "mde_requested": mde_wanted,
        "balance_features": [c for c in PRE_FEATURES if c in features],
        "segments": [{"key": k, **{c: _plain(v) for c, v in r.items()}} for k, r in seg.iterrows()],
        "warnings": warnings,
    }
    if baseline_rate is None and history is None:
        warnings.append(
            "no baseline conversion: give the transaction log (-t) or --baseline-rate for the "
            "minimum detectable effect"
        )
    return Plan(table, summary, seg, warnings)


def _plain(v):
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not np.isfinite(v):
        return None
    return v
