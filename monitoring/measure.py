"""One monitoring run: today's customers against the reference the serving champions were fitted
on — drift (Evidently), segment health per scheme, and whether to re-evaluate the schemes.

    result = measure(transactions, customers, as_of, models, reference, cleaning, features, cfg)

Labels look forward, so they exist only for cutoffs at least `repurchase_days` old: the
reference's customers get theirs from the new log when it covers (ref as-of, + H], and the
current side uses the newest labelled cohort (features as of as-of - H, segmented by the same
champions). Nothing here trains or promotes: see `monitoring.reevaluate`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, timedelta

import numpy as np
import pandas as pd

from core.errors import CustsegError
from features.contract import TypedTable
from monitoring.drift import DriftResult, detect_drift
from monitoring.health import Health, HealthConfig, segment_health
from monitoring.reference import Reference, oldest
from training.campaigns import effects
from training.prediction.clv import SEGMENT_INPUTS
from training.segmentation import outcomes

LABEL = "repurchased"
# id, the cutoff itself, 300+ cities (province carries it), and days-since-first-order / -signup:
# they grow by one a day for everyone, so they "drift" by construction as time passes; and the
# value champion's outputs (clv, ...): a model's answer, compared with the predictions
NOT_FEATURES = {
    "customer_id",
    "as_of",
    "region",
    "tenure_days",
    "signup_tenure_days",
    *SEGMENT_INPUTS,
}


@dataclass
class Monitored:
    """Everything one monitoring run measured (the summary is its JSON face)."""

    as_of: date
    references: dict[str, Reference]  # scheme -> the reference its champion was fitted on
    current: pd.DataFrame  # current feature table
    audit: dict  # cleaning audit of the current data
    drift: DriftResult  # against the oldest reference still served
    health: dict[str, Health]  # scheme -> health
    segments: dict[str, tuple[np.ndarray, np.ndarray]]  # scheme -> (reference, current) labels
    cohort: pd.DataFrame | None  # features as of as-of - H with the `repurchased` label, or None
    cohort_segments: dict[str, np.ndarray]  # scheme -> the champion's segments of the cohort
    reasons: list[str] = field(default_factory=list)  # why re-evaluation is needed (empty: not)
    notes: list[str] = field(default_factory=list)
    history: object = None  # training.segmentation.outcomes.History of the new log (refits)

    @property
    def needed(self) -> bool:
        return bool(self.reasons)

    @property
    def reference(self) -> Reference:
        """The oldest reference still served (drift compares with it)."""
        return oldest(self.references)


def feature_columns(table: pd.DataFrame) -> tuple[list[str], list[str]]:
    """(numeric, categorical) feature columns of a feature table, for drift."""
    numeric, categorical = [], []
    for c in table.columns:
        if c in NOT_FEATURES:
            continue
        dtype = table[c].dtype
        if pd.api.types.is_bool_dtype(dtype):
            categorical.append(c)
        elif pd.api.types.is_numeric_dtype(dtype):
            numeric.append(c)
        elif not pd.api.types.is_datetime64_any_dtype(dtype):
            categorical.append(c)
    return numeric, categorical


def labels_after(clean_tx: pd.DataFrame, cutoff: date, days: int) -> pd.Series:
    """customer_id -> 1.0 if the customer (active by `cutoff`) ordered in (cutoff, cutoff+days]."""
    from features.build import build_labels

    lab = build_labels(clean_tx, [cutoff], repurchase_days=days, churn_days=days)
    return pd.Series(
        lab["repurchase"].astype("float64").to_numpy(), index=lab["customer_id"].astype(str)
    )


def label_of(customer_ids: pd.Series, labels: pd.Series) -> np.ndarray:
    """Each customer's label from `labels` (indexed by customer id as text, as `labels_after`
    returns them); missing for customers without one."""
    return customer_ids.astype(str).map(labels).to_numpy()


def measure(
    transactions: TypedTable,
    customers: TypedTable | None,
    as_of: date,
    models,  # serving.models.ModelSet: the serving champions
    references: dict[str, Reference],
    cleaning=None,
    features_cfg=None,
    cfg: HealthConfig = HealthConfig(),  # noqa: B008 - frozen
) -> Monitored:
    from core.progress import stage
    from features.pipeline import features_as_of

    schemes = [s for s in references if s in models.segmenters]
    references = valued(references, models)
    base = oldest(references)
    newest = max(r.as_of for r in references.values())
    if as_of < newest:
        raise CustsegError(
            f"--as-of {as_of} is before the champions' reference date {newest}: "
            "monitoring compares newer data with the reference"
        )
    with stage(f"current features as of {as_of}"):
        current, result = features_as_of(
            transactions, customers, as_of, cleaning, features_cfg, categories=base.categories
        )
    if current.empty:
        raise CustsegError(f"no customer has an order on or before {as_of} in the new data")
    _check_coverage(result.transactions, as_of, base)
    wanted = base.definition_hash
    if wanted and wanted != current.attrs.get("definition_hash"):
        raise CustsegError(
            f"the current features have definition {current.attrs.get('definition_hash')}, the "
            f"reference {wanted}: use the feature config the champions were trained with"
        )
    if missing := [c for c in models.columns if c not in current.columns]:
        from features.registry import ATTRIBUTES

        hint = (
            ": they come from the customer table; pass it with --customers"
            if customers is None and set(missing) <= {f.name for f in ATTRIBUTES}
            else ""
        )
        raise CustsegError(
            f"the serving champions read feature(s) the current data lacks: "
            f"{', '.join(missing)}{hint}"
        )
    current = models.with_value(current, as_of)  # what value tiers and CLV x activity read
    notes = []
    h = cfg.repurchase_days
    labels = {  # reference as-of -> forward labels, where the new log covers them
        day: labels_after(result.transactions, day, h)
        for day in {r.as_of for r in references.values()}
        if day + timedelta(days=h) <= as_of
    }
    if len(labels) < len({r.as_of for r in references.values()}):
        notes.append(f"no repurchase labels yet for a reference less than {h} days old")
    cutoff = as_of - timedelta(days=h)
    cohort = None
    if cutoff > base.as_of and labels:
        with stage(f"labelled cohort as of {cutoff}"):
            cohort, _ = features_as_of(
                transactions,
                customers,
                cutoff,
                cleaning,
                features_cfg,
                categories=base.categories,
            )
            cohort = models.with_value(cohort, cutoff)
            cohort[LABEL] = label_of(
                cohort["customer_id"], labels_after(result.transactions, cutoff, h)
            )
    else:
        notes.append(f"no labelled cohort newer than the reference (as-of - {h} days = {cutoff})")

    segments = {
        s: (
            models.segmenters[s].assigner.assign(references[s].table),
            models.segmenters[s].assigner.assign(current),
        )
        for s in schemes
    }
    cohort_segments = (
        {} if cohort is None else {s: models.segmenters[s].assigner.assign(cohort) for s in schemes}
    )
    drift = _drift(base, current, models, segments, labels, cohort, cfg.drift_share)
    health = {}
    campaigns = effects.latest(effects.read())  # measured strategy effects, where evaluated
    with stage("segment health"):
        for s in schemes:
            health[s] = _health(
                references[s],
                current,
                segments[s],
                labels,
                cohort,
                cohort_segments.get(s),
                as_of,
                result.audit,
                cfg,
                campaigns[campaigns["scheme"] == s] if len(campaigns) else None,
            )
    reasons = _population(base, current, customers is not None)
    if drift.share_drifted > cfg.drift_share:
        reasons.append(
            f"drifted feature share {drift.share_drifted:.2f} > {cfg.drift_share:g} "
            f"({', '.join(drift.drifted_features()[:5])})"
        )
    for s, hl in health.items():
        if not hl.healthy:
            worst = min(
                (p for p in hl.parts if p.score is not None and p.weight > 0),
                key=lambda p: p.score,
            )
            reasons.append(
                f"{s} health {hl.score:.0f} < {cfg.threshold:g} (weakest: {worst.name} "
                f"{worst.score:.0f}: {worst.explanation})"
            )
    return Monitored(
        as_of,
        references,
        current,
        result.audit,
        drift,
        health,
        segments,
        cohort,
        cohort_segments,
        reasons,
        notes,
        outcomes.from_log(
            transactions,
            customers,
            result.transactions,
            as_of,
            cleaning,
            features_cfg,
            base.categories,
        ),  # fmt: skip
    )


def valued(references: dict[str, Reference], models) -> dict[str, Reference]:
    """The references with the value champion's columns (clv, expected orders, order value,
    P(alive)) computed as of each reference's date, so both sides of drift and health are the
    same champion's answers; a reference logged before the value model existed (no such
    columns) gets them too. Schemes fitted together share one Reference: computed once each.
    Unchanged without a value champion."""
    if models.value is None:
        return references
    done: dict[int, Reference] = {}
    for ref in references.values():
        if id(ref) not in done:
            done[id(ref)] = replace(ref, table=models.with_value(ref.table, ref.as_of))
    return {s: done[id(r)] for s, r in references.items()}


MAX_QUIET_DAYS = 30  # an as-of this long after the last order describes days without data


def _check_coverage(clean_tx: pd.DataFrame, as_of: date, base: Reference) -> None:
    """The new log must reach the as-of date and start before the reference: features such as
    tenure and recency are computed from the whole history, so a log of recent orders only
    would look like a population of new customers (made-up drift)."""
    days = pd.to_datetime(clean_tx["order_date"])
    first, last = days.min().date(), days.max().date()
    if (as_of - last).days > MAX_QUIET_DAYS:
        raise CustsegError(
            f"--as-of {as_of} is {(as_of - last).days} days after the last order in the new data "
            f"({last}): features would describe days without data; use an as-of up to {last}"
        )
    if first > base.as_of:
        raise CustsegError(
            f"the new log starts on {first}, after the reference date {base.as_of}: give the "
            "whole history up to the as-of date (tenure, recency and windows need it), as "
            "`custseg run` takes it"
        )


def _population(base: Reference, current: pd.DataFrame, with_customers: bool) -> list[str]:
    """Reasons to distrust the comparison itself: the reference's customers missing from the
    new data (other ids?), or a customer table that covers few of the customers with orders."""
    ref_ids = base.table["customer_id"].astype(str)
    kept = float(ref_ids.isin(current["customer_id"].astype(str)).mean())
    if kept == 0:
        raise CustsegError(
            f"none of the reference's {len(ref_ids):,} customers appears in the new data: "
            "different customer ids (or another company's data)?"
        )
    reasons = []
    if kept < 0.5:
        reasons.append(f"only {kept:.0%} of the reference's customers appear in the new data")
    attributes = [c for c in ("age", "gender", "province", "industry") if c in current]
    if with_customers and attributes:
        covered = float(current[attributes].notna().any(axis=1).mean())
        if covered < 0.5:
            reasons.append(
                f"the customer table covers only {covered:.0%} of the customers with orders"
            )
    return reasons


def _drift(
    base: Reference, current, models, segments, labels, cohort, drift_share: float
) -> DriftResult:
    """Features, the champions' outputs (segments, probabilities) and, where labelled, the
    repurchase label: the oldest served reference against today."""
    from core.progress import stage

    ref = base.table
    ref_frame = _scored(ref, models, {s: segments[s] for s in base.schemes if s in segments}, 0)
    cur_frame = _scored(current, models, {s: segments[s] for s in base.schemes if s in segments}, 1)
    target = []
    if base.as_of in labels and cohort is not None:
        ref_frame[LABEL] = label_of(ref["customer_id"], labels[base.as_of])
        cur_frame[LABEL] = label_of(
            cur_frame["customer_id"], cohort.set_index(cohort["customer_id"].astype(str))[LABEL]
        )
        target = [LABEL]
    numeric, categorical = feature_columns(ref)
    predictions = [
        c for c in cur_frame.columns if c.endswith("_probability") or c.startswith("segment_")
    ]
    # the value champion's outputs (where both sides have them: see `valued`)
    predictions += [c for c in SEGMENT_INPUTS if c in ref_frame and c in cur_frame]
    with stage("drift report (Evidently)"):
        return detect_drift(
            ref_frame,
            cur_frame,
            numeric=numeric,
            categorical=categorical,
            predictions=predictions,
            target=target,
            drift_share=drift_share,  # Evidently's pages show custseg's threshold
        )


def _health(
    reference, current, segments, labels, cohort, cohort_segments, as_of, audit, cfg, campaign
):
    ref = reference.table
    a, b = segments
    labelled = reference.as_of in labels
    ref_frame = pd.DataFrame(
        {"customer_id": ref["customer_id"], "segment": a, "monetary": ref["monetary"]}
    )
    if labelled:
        ref_frame[LABEL] = label_of(ref["customer_id"], labels[reference.as_of])
    cohort_frame = None
    if (
        labelled
        and cohort is not None
        and as_of - timedelta(days=cfg.repurchase_days) > reference.as_of
    ):
        cohort_frame = pd.DataFrame(
            {
                "customer_id": cohort["customer_id"],
                "segment": cohort_segments,
                LABEL: cohort[LABEL],
            }
        )
    return segment_health(
        ref_frame,
        pd.DataFrame(
            {"customer_id": current["customer_id"], "segment": b, "monetary": current["monetary"]}
        ),
        segment="segment",
        repurchased=LABEL if labelled else None,
        reference_as_of=reference.as_of,
        current_as_of=as_of,
        audit=audit,
        features_reference=ref,
        features_current=current,
        current_cohort=cohort_frame,
        campaign=campaign,
        config=cfg,
    )


def _scored(table: pd.DataFrame, models, segments: dict, side: int) -> pd.DataFrame:
    """The feature table plus what the champions make of it: segment per scheme and each
    target's probability (prediction drift compares these)."""
    extra = {f"segment_{s}": pd.Series(v[side], index=table.index) for s, v in segments.items()}
    extra |= {
        f"{t}_probability": pd.Series(p.predict_proba(table), index=table.index)
        for t, p in models.predictors.items()
    }
    return pd.concat([table, pd.DataFrame(extra)], axis=1)
