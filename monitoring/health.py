"""Segment health index (0-100): the seed documents' 「动态细分健康度指数」, evaluated monthly,
"below 60, start the optimisation procedure", made computable.

The index is a weighted mean of five parts, each scored 0-100 on its own and shown with its raw
measurements, so a low index says *what* is wrong, not only that something is:

- data_quality: key-field missing rates and rows lost in cleaning (the cleaning audit);
- freshness: days between the scheme's as-of date and the current data's;
- stability: share of the same customers who changed segment (with the transition matrix);
- separation: silhouette of the current segments in the common RFM space vs the reference;
- business_signal: movement of per-segment revenue shares and repurchase rates;
- business_response: share of the segments whose strategy measurably worked in the scheme's
  latest evaluated campaign (`custseg campaign evaluate`: a significant Holm-corrected uplift
  against the control group), the seeds' "效果跟踪" fed back into the index.

Every part falls linearly from 100 at a "good" level to 0 at a "bad" level (`HealthConfig`). A
part that cannot be measured (no audit, no shared customers, no feature columns, ...) is None,
says why, and drops out of the mean: the other weights are renormalised rather than counting the
unknown as 0 or as 100.

    health = segment_health(reference, current, segment="segment",
                            reference_as_of=date(2026, 1, 31), current_as_of=date(2026, 6, 30),
                            audit=clean_result.audit)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from datetime import date, datetime

import numpy as np
import pandas as pd

from core.errors import ConfigError, CustsegError, InputError, check_keys
from monitoring.drift import DRIFT_SHARE
from training.segmentation.base import numeric, require_numbers
from training.segmentation.clustering import separation
from training.segmentation.quality import COMMON_SPACE, common_space, eval_rows

PARTS = (
    "data_quality",
    "freshness",
    "stability",
    "separation",
    "business_signal",
    "business_response",
)

# Cleaning drops that lose no information: a merged duplicate id lives on as its group's id, an
# exact copy repeats a kept row, a test account is not a customer. They are reported, not scored.
NOT_LOST = frozenset({"duplicate_customer", "duplicate_transaction", "test_account"})

_SHARES = (
    "missing_limit",
    "missing_bad",
    "dropped_limit",
    "dropped_bad",
    "max_changed_share",
    "max_revenue_shift",
    "drift_share",
    "max_repurchase_shift",
    "min_response_share",
)
_SPANS = (  # the level at which a part reaches 0: at 0 any change at all would score 0
    "max_changed_share",
    "separation_drop",
    "max_revenue_shift",
    "max_repurchase_shift",
    "min_response_share",
)
_PAIRS = (  # (good, bad): the line from 100 to 0 needs good < bad
    ("fresh_days", "stale_days"),
    ("missing_limit", "missing_bad"),
    ("dropped_limit", "dropped_bad"),
)


@dataclass(frozen=True)
class HealthConfig:
    """Weights and thresholds: the `[monitoring]` slice of the config file. Each part scores 100
    at or below its good level and 0 at or above its bad level, linearly between."""

    threshold: float = 60.0  # seed documents: below 60 start the optimisation procedure
    weight_data_quality: float = 1.0
    weight_freshness: float = 1.0
    weight_stability: float = 1.0
    weight_separation: float = 1.0
    weight_business_signal: float = 1.0
    weight_business_response: float = 1.0
    missing_limit: float = 0.05  # seed documents' 5% limit for key fields
    missing_bad: float = 0.30
    dropped_limit: float = 0.02
    dropped_bad: float = 0.20  # the share at which cleaning calls a column unreadable
    fresh_days: float = 30.0
    stale_days: float = 180.0
    max_changed_share: float = 0.5
    separation_drop: float = 0.2  # silhouette points below the reference
    separation_sample: int = 5000  # rows per side: silhouette is quadratic in rows
    max_revenue_shift: float = 0.3  # total-variation distance of revenue shares
    max_repurchase_shift: float = 0.2  # mean absolute change of per-segment repurchase rate
    # full marks when at least this share of a campaign's measured segments responded
    min_response_share: float = 0.5
    # re-evaluation triggers besides health < threshold (used by monitoring.job)
    drift_share: float = DRIFT_SHARE  # share of drifted features (also on Evidently's pages)
    repurchase_days: int = 30  # label horizon of the repurchase rates per segment
    reevaluate_trials: int = 20  # Optuna trials when a clustering scheme is refitted

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(f"monitoring.{f.name} = {value!r}: not a number")
            if not math.isfinite(value) or value < 0:
                raise ConfigError(f"monitoring.{f.name} = {value!r}: must be a number >= 0")
        if not isinstance(self.separation_sample, int) or self.separation_sample < 3:
            raise ConfigError(
                f"monitoring.separation_sample = {self.separation_sample!r}: a whole number >= 3"
            )
        for name in ("repurchase_days", "reevaluate_trials"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ConfigError(
                    f"monitoring.{name} = {getattr(self, name)!r}: a whole number >= 1"
                )
        if self.threshold > 100:
            raise ConfigError(f"monitoring.threshold = {self.threshold!r}: must be in [0, 100]")
        for name in _SHARES:
            if getattr(self, name) > 1:
                raise ConfigError(f"monitoring.{name} = {getattr(self, name)!r}: a share in [0, 1]")
        for name in _SPANS:
            if getattr(self, name) == 0:
                raise ConfigError(f"monitoring.{name} = 0: must be > 0")
        for good, bad in _PAIRS:
            if getattr(self, good) >= getattr(self, bad):
                raise ConfigError(
                    f"monitoring.{good} = {getattr(self, good)!r} must be below "
                    f"monitoring.{bad} = {getattr(self, bad)!r}"
                )
        if not any(self.weight(p) for p in PARTS):
            raise ConfigError(
                "monitoring: all weights are 0 "
                f"({', '.join(f'weight_{p}' for p in PARTS)}); at least one must be > 0"
            )

    def weight(self, part: str) -> float:
        return getattr(self, f"weight_{part}")

    @classmethod
    def from_dict(cls, data: dict) -> HealthConfig:
        """From the parsed `[monitoring]` table; a ConfigError names any bad key or value."""
        check_keys("monitoring", data, cls)
        return cls(**data)


@dataclass(frozen=True)
class HealthPart:
    name: str
    score: float | None  # None: could not be measured, left out of the index
    weight: float  # as configured
    detail: dict  # the raw measurements behind the score
    explanation: str  # one line, English


@dataclass
class Health:
    parts: list[HealthPart]
    score: float
    healthy: bool
    threshold: float
    transitions: pd.DataFrame  # counts; index reference segment, columns current segment
    segments: pd.DataFrame  # per segment, reference vs current: customer/revenue share, repurchase

    def part(self, name: str) -> HealthPart:
        return {p.name: p for p in self.parts}[name]

    def to_dict(self) -> dict:
        """JSON-ready (NaN becomes null); `weight_share` is each part's share of the index."""
        total = sum(p.weight for p in self.parts if p.score is not None)
        return _jsonable(
            {
                "score": self.score,
                "healthy": self.healthy,
                "threshold": self.threshold,
                "parts": [
                    {
                        "name": p.name,
                        "score": p.score,
                        "weight": p.weight,
                        "weight_share": p.weight / total if p.score is not None and total else 0.0,
                        "explanation": p.explanation,
                        "detail": p.detail,
                    }
                    for p in self.parts
                ],
                "transitions": self.transitions.to_dict(orient="index"),
                "segments": self.segments.reset_index().to_dict(orient="records"),
            }
        )


def linear(value: float, good: float, bad: float) -> float:
    """100 at or below `good`, 0 at or above `bad`, a straight line between."""
    if value <= good:
        return 100.0
    if value >= bad:
        return 0.0
    return 100.0 * (bad - value) / (bad - good)


def segment_health(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    segment: str,
    revenue: str = "monetary",
    repurchased: str | None = None,
    reference_as_of: date,
    current_as_of: date,
    audit: dict | None = None,
    features_reference: pd.DataFrame | None = None,
    features_current: pd.DataFrame | None = None,
    current_cohort: pd.DataFrame | None = None,
    campaign: pd.DataFrame | None = None,
    config: HealthConfig = HealthConfig(),  # noqa: B008 - frozen, so a shared default is safe
    seed: int = 0,
) -> Health:
    """The health index of a segmentation `reference` (the scheme's own assignments at its as-of
    date) now that the same scheme assigns `current` customers.

    `reference`/`current`: customer_id, the `segment` label, the `revenue` column and optionally
    the 0/1 `repurchased` label. `features_*`: feature tables (customer_id + recency_days,
    frequency_orders, monetary) for separation; by default the assignment tables themselves.
    `current_cohort` (customer_id, `segment`, `repurchased`): the newest cohort whose labels are
    known, segmented as of its own cutoff; when given, the current repurchase rates come from it
    (today's customers cannot have a label yet, and the reference's labels look forward too).
    `campaign`: the scheme's rows of its latest evaluated campaign (training.campaigns.effects:
    segment, responded, plan_id, ...) for the business-response part; None: not measured.
    Raises InputError (a CustsegError) for an empty table, missing columns, duplicated or
    missing ids or labels, and a current as-of date before the reference one.
    """
    ref = _assignments(reference, "reference", segment, revenue, repurchased)
    cur = _assignments(current, "current", segment, revenue, repurchased)
    ref_day = _day(reference_as_of, "reference_as_of")
    cur_day = _day(current_as_of, "current_as_of")
    if cur_day < ref_day:
        raise InputError(
            f"current_as_of {cur_day} is before reference_as_of {ref_day}: "
            "the reference must be the older assignment (arguments swapped?)"
        )
    cohort = None
    if current_cohort is not None and repurchased is not None:
        cohort = _assignments(
            current_cohort.assign(_revenue=0.0), "current cohort", segment, "_revenue", repurchased
        )
    labels = sorted(set(ref["segment"]) | set(cur["segment"]))
    stability, transitions = _stability(ref, cur, labels, config)
    labelled = (
        repurchased is not None
        and repurchased in reference
        and (cohort is not None or repurchased in current)
    )
    business, segments = _business_signal(ref, cur, labels, labelled, config, cohort)
    parts = [
        _data_quality(audit, config),
        _freshness((cur_day - ref_day).days, config),
        stability,
        _separation(
            (ref, reference if features_reference is None else features_reference),
            (cur, current if features_current is None else features_current),
            config,
            seed,
        ),
        business,
        _business_response(campaign, set(cur["segment"]), config),
    ]
    available = [p for p in parts if p.score is not None and p.weight > 0]
    total = sum(p.weight for p in available)
    if total == 0:
        raise CustsegError(
            "segment health: no part with a weight > 0 could be measured: "
            + "; ".join(f"{p.name}: {p.explanation}" for p in parts)
        )
    score = sum(p.score * p.weight for p in available) / total
    return Health(
        parts=parts,
        score=score,
        healthy=score >= config.threshold,
        threshold=config.threshold,
        transitions=transitions,
        segments=segments,
    )


def _day(value: object, name: str) -> date:
    if isinstance(value, datetime):  # also pd.Timestamp
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise InputError(f"{name} = {value!r}: expected a date (YYYY-MM-DD)")


def _assignments(
    frame: pd.DataFrame, where: str, segment: str, revenue: str, repurchased: str | None
) -> pd.DataFrame:
    """customer_id (str), segment (str), revenue and repurchased (float, NaN when absent):
    one customer per row, checked, under fixed internal names."""
    missing = [c for c in ("customer_id", segment, revenue) if c not in frame.columns]
    if missing:
        raise InputError(
            f"segment health: {where} lacks column(s) {', '.join(missing)}; "
            f"found: {', '.join(map(str, frame.columns))}"
        )
    if len(frame) == 0:
        raise InputError(f"segment health: {where} has no rows (no customers assigned)")
    for column in ("customer_id", segment):
        empty = int(frame[column].isna().sum())
        if empty:
            raise InputError(f"segment health: {where}.{column} is empty in {empty} row(s)")
    ids = frame["customer_id"].astype(str)
    twice = ids.duplicated()
    if twice.any():
        raise InputError(
            f"segment health: {where} has {int(twice.sum())} repeated customer_id(s) "
            f"(e.g. {ids[twice].iloc[0]!r}); one segment per customer"
        )
    require_numbers(frame, [revenue], f"segment health: {where}")
    out = pd.DataFrame(
        {
            "customer_id": ids.to_numpy(),
            "segment": frame[segment].astype(str).to_numpy(),
            "revenue": numeric(frame, revenue),
            "repurchased": np.nan,
        }
    )
    if repurchased is not None and repurchased in frame.columns:
        if not pd.api.types.is_bool_dtype(frame[repurchased]):
            require_numbers(frame, [repurchased], f"segment health: {where}")
        flags = numeric(frame, repurchased)
        odd = ~np.isnan(flags) & (flags != 0) & (flags != 1)
        if odd.any():
            raise InputError(
                f"segment health: {where}.{repurchased} must be 0/1; "
                f"{int(odd.sum())} row(s) hold other values (e.g. {flags[odd][0]!r})"
            )
        out["repurchased"] = flags
    return out


def _data_quality(audit: dict | None, cfg: HealthConfig) -> HealthPart:
    """Worst key-field missing rate and worst share of rows lost in cleaning, the worse of the
    two scores: either alone makes segments built on the data unreliable."""
    weight = cfg.weight("data_quality")
    if audit is None:
        return HealthPart("data_quality", None, weight, {}, "not available: no cleaning audit")
    tables, rates = audit.get("tables"), audit.get("missing_rates")
    if not isinstance(tables, dict) or not isinstance(rates, dict):
        raise InputError("segment health: audit is not a cleaning audit (no tables/missing_rates)")
    # key fields: required ones (missing -> row dropped, so output is 0: the input rate counts)
    # and profile key fields (invalid values become missing: the output rate can be higher)
    missing = {
        f"{table}.{column}": max(r.get("input") or 0.0, r.get("output") or 0.0)
        for table, columns in rates.items()
        for column, r in columns.items()
        if r.get("key")
    }
    dropped, lost = {}, {}
    for table, t in tables.items():
        n_in = max(t.get("input_rows") or 0, 1)
        by_rule = t.get("dropped_by_rule", {})
        dropped[table] = t.get("dropped_rows", sum(by_rule.values())) / n_in
        lost[table] = sum(n for r, n in by_rule.items() if r not in NOT_LOST) / n_in
    worst_field = max(missing, key=missing.get, default=None)
    worst_missing = missing.get(worst_field, 0.0)
    worst_lost = max(lost.values(), default=0.0)
    score = min(
        linear(worst_missing, cfg.missing_limit, cfg.missing_bad),
        linear(worst_lost, cfg.dropped_limit, cfg.dropped_bad),
    )
    over = sorted(k for k, v in missing.items() if v > cfg.missing_limit)
    unbalanced = sorted(k for k, t in tables.items() if t.get("balanced") is False)
    detail = {
        "key_missing_rates": missing,
        "worst_missing_field": worst_field,
        "worst_missing_rate": worst_missing,
        "fields_over_limit": over,
        "dropped_share": dropped,
        "lost_share": lost,
        "worst_lost_share": worst_lost,
        "unbalanced_tables": unbalanced,
    }
    field_text = (
        f"worst key field {worst_field} {worst_missing:.1%} missing"
        if worst_field
        else "no key-field missing rates"
    )
    text = (
        f"{field_text} (limit {cfg.missing_limit:.0%}, {len(over)} over); "
        f"{worst_lost:.1%} of rows lost in cleaning (ok up to {cfg.dropped_limit:.0%}, "
        f"0 at {cfg.dropped_bad:.0%})"
    )
    if unbalanced:
        text += f"; audit does not balance for {', '.join(unbalanced)}"
    return HealthPart("data_quality", score, weight, detail, text)


def _freshness(age_days: int, cfg: HealthConfig) -> HealthPart:
    """Behaviour drifts with time even when no metric notices yet: an old scheme is suspect."""
    score = linear(age_days, cfg.fresh_days, cfg.stale_days)
    text = (
        f"scheme is {age_days} days old (fresh up to {cfg.fresh_days:g}, "
        f"stale at {cfg.stale_days:g})"
    )
    return HealthPart("freshness", score, cfg.weight("freshness"), {"age_days": age_days}, text)


def migration(ref: pd.DataFrame, cur: pd.DataFrame) -> pd.DataFrame:
    """customer_id, segment_ref, segment_cur of the customers on both sides (customer_id,
    segment frames): what stability is measured on, here and when re-evaluating."""
    return ref[["customer_id", "segment"]].merge(
        cur[["customer_id", "segment"]], on="customer_id", suffixes=("_ref", "_cur")
    )


def _stability(
    ref: pd.DataFrame, cur: pd.DataFrame, labels: list[str], cfg: HealthConfig
) -> tuple[HealthPart, pd.DataFrame]:
    """Migration of the customers present on both sides: a scheme whose segments churn their
    members cannot carry a strategy per segment."""
    both = migration(ref, cur)
    counts = pd.crosstab(both["segment_ref"], both["segment_cur"]).reindex(
        index=labels, columns=labels, fill_value=0
    )
    counts.index.name, counts.columns.name = "reference", "current"
    detail = {
        "customers_in_both": len(both),
        "new_customers": len(cur) - len(both),
        "gone_customers": len(ref) - len(both),
    }
    flow = f"{detail['new_customers']} new, {detail['gone_customers']} gone"
    if not len(both):
        text = f"not available: no customer is in both reference and current ({flow})"
        return HealthPart("stability", None, cfg.weight("stability"), detail, text), counts
    changed = float((both["segment_ref"] != both["segment_cur"]).mean())
    rows = counts.sum(axis=1)
    shares = counts[rows > 0].div(rows[rows > 0], axis=0)
    detail.update(changed_share=changed, row_shares=shares.to_dict(orient="index"))
    text = (
        f"{changed:.1%} of {len(both)} customers in both changed segment "
        f"(0 at {cfg.max_changed_share:.0%}); {flow}"
    )
    score = linear(changed, 0.0, cfg.max_changed_share)
    return HealthPart("stability", score, cfg.weight("stability"), detail, text), counts


def silhouette(
    assign: pd.DataFrame, features: pd.DataFrame, where: str, cfg: HealthConfig, seed: int
) -> tuple[float | None, str]:
    """Silhouette of `assign`'s segments (customer_id, segment) in the common RFM space on a
    seeded sample, or None and why not: the separation here and when re-evaluating."""
    absent = [c for c in COMMON_SPACE if c not in features.columns]
    if absent:
        return None, f"{where} features lack {', '.join(absent)}"
    if "customer_id" not in features.columns:
        raise InputError(f"segment health: {where} feature table lacks column customer_id")
    feats = features[list(COMMON_SPACE)].assign(customer_id=features["customer_id"].astype(str))
    if feats["customer_id"].duplicated().any():
        raise InputError(f"segment health: {where} feature table repeats customer_id(s)")
    frame = assign[["customer_id", "segment"]].merge(feats, on="customer_id")
    rows = eval_rows(len(frame), cfg.separation_sample, seed)
    labels = frame["segment"].to_numpy()
    k = len(np.unique(labels[rows]))
    if k < 2:
        return None, f"fewer than 2 {where} segments"
    if k >= len(rows):  # silhouette needs a segment with 2 customers
        return None, f"too few {where} customers with features ({len(rows)})"
    value = separation(common_space(frame, rows), labels[rows])["silhouette"]
    return (value, "") if math.isfinite(value) else (None, f"{where} silhouette undefined")


def _separation(
    reference: tuple[pd.DataFrame, pd.DataFrame],
    current: tuple[pd.DataFrame, pd.DataFrame],
    cfg: HealthConfig,
    seed: int,
) -> HealthPart:
    """Segments that blur into each other no longer mean what their names say; measured against
    the reference's own silhouette, since what is 'good' depends on the scheme."""
    weight = cfg.weight("separation")
    ref_value, ref_why = silhouette(*reference, "reference", cfg, seed)
    cur_value, cur_why = silhouette(*current, "current", cfg, seed)
    detail = {
        "reference_silhouette": ref_value,
        "current_silhouette": cur_value,
        "sample": cfg.separation_sample,
    }
    if ref_value is None or cur_value is None:
        why = "; ".join(w for w in (ref_why, cur_why) if w)
        return HealthPart("separation", None, weight, detail, f"not available: {why}")
    drop = ref_value - cur_value
    detail["drop"] = drop
    text = (
        f"silhouette {cur_value:.3f} now vs {ref_value:.3f} at reference "
        f"(0 at a drop of {cfg.separation_drop:g})"
    )
    return HealthPart("separation", linear(drop, 0.0, cfg.separation_drop), weight, detail, text)


def _per_segment(frame: pd.DataFrame, labels: list[str]) -> pd.DataFrame:
    """Customer share, revenue share (negative net spend counts as 0) and repurchase rate."""
    g = (
        frame.assign(revenue=frame["revenue"].clip(lower=0))
        .groupby("segment")
        .agg(n=("customer_id", "size"), revenue=("revenue", "sum"), rate=("repurchased", "mean"))
        .reindex(labels)
    )
    total = g["revenue"].sum()
    return pd.DataFrame(
        {
            "share": g["n"].fillna(0) / len(frame),
            "revenue_share": g["revenue"].fillna(0) / total if total > 0 else np.nan,
            "repurchase_rate": g["rate"],
        }
    )


def _business_signal(
    ref: pd.DataFrame,
    cur: pd.DataFrame,
    labels: list[str],
    labelled: bool,
    cfg: HealthConfig,
    cohort: pd.DataFrame | None = None,
) -> tuple[HealthPart, pd.DataFrame]:
    """Where revenue sits and how segments repurchase is what strategies were set on; when that
    moves, the strategy table no longer fits (the seed documents' 策略匹配度)."""
    a, b = _per_segment(ref, labels), _per_segment(cur, labels)
    if cohort is not None:
        b["repurchase_rate"] = _per_segment(cohort, labels)["repurchase_rate"]
    segments = pd.concat([a.add_prefix("reference_"), b.add_prefix("current_")], axis=1)
    segments.index.name = "segment"
    order = [f"{side}_{m}" for m in a.columns for side in ("reference", "current")]
    segments = segments[order]
    detail, scores, texts = {}, [], []
    if a["revenue_share"].notna().all() and b["revenue_share"].notna().all():
        shift = float(0.5 * (a["revenue_share"] - b["revenue_share"]).abs().sum())
        detail["revenue_shift"] = shift
        scores.append(linear(shift, 0.0, cfg.max_revenue_shift))
        texts.append(
            f"revenue shares moved {shift:.3f} (total variation; 0 at {cfg.max_revenue_shift:g})"
        )
    else:
        texts.append("no revenue shift (a side has no positive revenue)")
    if labelled:
        change = (a["repurchase_rate"] - b["repurchase_rate"]).abs().dropna()
        if len(change):
            shift = float(change.mean())
            detail["repurchase_shift"] = shift
            detail["repurchase_segments"] = len(change)
            scores.append(linear(shift, 0.0, cfg.max_repurchase_shift))
            texts.append(
                f"repurchase rates moved {shift:.3f} on average over {len(change)} segment(s) "
                f"(0 at {cfg.max_repurchase_shift:g})"
            )
        else:
            texts.append("no repurchase shift (no segment has rates on both sides)")
    else:
        texts.append("no repurchase label on both sides")
    score = float(np.mean(scores)) if scores else None
    text = "; ".join(texts) if scores else "not available: " + "; ".join(texts)
    part = HealthPart("business_signal", score, cfg.weight("business_signal"), detail, text)
    return part, segments


def _business_response(
    campaign: pd.DataFrame | None, current: set, cfg: HealthConfig
) -> HealthPart:
    """Strategies that no longer move their segment are the plainest sign the scheme needs
    revisiting; only segments the scheme still assigns count (a renamed segment's old result
    says nothing about the new one)."""
    name, weight = "business_response", cfg.weight("business_response")
    if campaign is None or campaign.empty:
        why = "not available: no evaluated campaign for this scheme (custseg campaign evaluate)"
        return HealthPart(name, None, weight, {}, why)
    segment = campaign["segment"].astype(str)
    rows = campaign[segment.isin(current)]
    gone = sorted(set(segment) - current)
    if rows.empty:
        why = f"not available: the campaign's segments ({', '.join(gone)}) are no longer assigned"
        return HealthPart(name, None, weight, {"gone": gone}, why)
    responded = rows["responded"].astype(bool)
    share = float(responded.mean())
    lost = (
        sorted(rows.loc[rows["incremental_roi"] < 0, "segment"].astype(str))
        if "incremental_roi" in rows
        else []
    )
    plan = str(rows["plan_id"].iloc[0]) if "plan_id" in rows else "?"
    detail = {
        "plan_id": plan,
        "measured": len(rows),
        "responded": int(responded.sum()),
        "share": share,
        "no_response": sorted(rows.loc[~responded, "segment"].astype(str)),
        "did_not_pay": lost,
        "gone": gone,
    }
    text = (
        f"{int(responded.sum())} of {len(rows)} segment(s) responded to campaign {plan} "
        f"(full marks at {cfg.min_response_share:.0%})"
    )
    if detail["no_response"]:
        text += f"; no measurable effect: {', '.join(detail['no_response'])}"
    score = 100.0 * min(1.0, share / cfg.min_response_share)
    return HealthPart(name, score, weight, detail, text)


def _jsonable(value: object) -> object:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
