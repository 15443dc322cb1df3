"""One monitoring run: today's customers against the reference the serving champions were fitted
on — drift (Evidently), segment health per scheme, and whether to re-evaluate the schemes.

    result = check(transactions, customers, as_of, models, reference, cleaning, features, cfg)

Labels look forward, so they exist only for cutoffs at least `repurchase_days` old: the
reference's customers get theirs from the new log when it covers (ref as-of, + H], and the
current side uses the newest labelled cohort (features as of as-of - H, segmented by the same
champions). Nothing here trains or promotes: see `monitoring.reevaluate`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
import pandas as pd

from custseg.errors import CustsegError
from features.contract import TypedTable
from monitoring.drift import DriftResult, detect_drift
from monitoring.health import Health, HealthConfig, segment_health
from monitoring.reference import Reference

LABEL = "repurchased"
NOT_FEATURES = {"customer_id", "as_of", "region"}  # id, the cutoff itself, 300+ cities (province)


@dataclass
class Monitored:
    """Everything one monitoring run measured (the summary is its JSON face)."""

    as_of: date
    reference: Reference
    current: pd.DataFrame  # current feature table
    audit: dict  # cleaning audit of the current data
    drift: DriftResult
    health: dict[str, Health]  # scheme -> health
    segments: dict[str, tuple[np.ndarray, np.ndarray]]  # scheme -> (reference, current) labels
    cohort: pd.DataFrame | None  # features as of as-of - H with the `repurchased` label, or None
    reasons: list[str] = field(default_factory=list)  # why re-evaluation is needed (empty: not)
    notes: list[str] = field(default_factory=list)

    @property
    def needed(self) -> bool:
        return bool(self.reasons)


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


def check(
    transactions: TypedTable,
    customers: TypedTable | None,
    as_of: date,
    models,  # serving.models.ModelSet: the serving champions
    reference: Reference,
    cleaning=None,
    features_cfg=None,
    cfg: HealthConfig = HealthConfig(),  # noqa: B008 - frozen
) -> Monitored:
    from custseg.progress import stage
    from features.pipeline import features_as_of

    if as_of < reference.as_of:
        raise CustsegError(
            f"--as-of {as_of} is before the champions' reference date {reference.as_of}: "
            "monitoring compares newer data with the reference"
        )
    schemes = [s for s in reference.schemes if s in models.segmenters]
    with stage(f"current features as of {as_of}"):
        current, result = features_as_of(
            transactions, customers, as_of, cleaning, features_cfg, categories=reference.categories
        )
    if current.empty:
        raise CustsegError(f"no customer has an order on or before {as_of} in the new data")
    wanted = reference.definition_hash
    if wanted and current.attrs.get("definition_hash") != wanted:
        raise CustsegError(
            f"the current features have definition {current.attrs.get('definition_hash')}, the "
            f"reference {wanted}: use the feature config the champions were trained with"
        )
    ref = reference.table
    notes = []
    h = cfg.repurchase_days
    ref_labels = None
    if reference.as_of + timedelta(days=h) <= as_of:
        ref_labels = labels_after(result.transactions, reference.as_of, h)
    else:
        notes.append(
            f"no repurchase labels for the reference yet ({reference.as_of} + {h} days is after "
            f"{as_of})"
        )
    cohort_cutoff = as_of - timedelta(days=h)
    cohort = None
    if cohort_cutoff > reference.as_of and ref_labels is not None:
        with stage(f"labelled cohort as of {cohort_cutoff}"):
            cohort, _ = features_as_of(
                transactions,
                customers,
                cohort_cutoff,
                cleaning,
                features_cfg,
                categories=reference.categories,
            )
            cohort[LABEL] = (
                cohort["customer_id"]
                .astype(str)
                .map(labels_after(result.transactions, cohort_cutoff, h))
                .to_numpy()
            )
    else:
        notes.append(
            f"no labelled cohort newer than the reference (as-of - {h} days = {cohort_cutoff})"
        )

    segments = {
        s: (
            models.segmenters[s].assigner.assign(ref),
            models.segmenters[s].assigner.assign(current),
        )
        for s in schemes
    }
    ref_frame, cur_frame = _scored(ref, models, segments, 0), _scored(current, models, segments, 1)
    if ref_labels is not None:
        ref_frame[LABEL] = ref["customer_id"].astype(str).map(ref_labels).to_numpy()
    if cohort is not None:
        cur_frame[LABEL] = (
            cur_frame["customer_id"]
            .astype(str)
            .map(cohort.set_index(cohort["customer_id"].astype(str))[LABEL])
        )
    numeric, categorical = feature_columns(ref)
    predictions = [
        c for c in cur_frame.columns if c.endswith("_probability") or c.startswith("segment_")
    ]
    with stage("drift report (Evidently)"):
        drift = detect_drift(
            ref_frame,
            cur_frame,
            numeric=numeric,
            categorical=categorical,
            predictions=predictions,
            target=[LABEL] if LABEL in ref_frame and LABEL in cur_frame else [],
        )
    health = {}
    with stage("segment health"):
        for s in schemes:
            a, b = segments[s]
            cohort_frame = None
            if cohort is not None:
                cohort_frame = pd.DataFrame(
                    {
                        "customer_id": cohort["customer_id"],
                        "segment": models.segmenters[s].assigner.assign(cohort),
                        LABEL: cohort[LABEL],
                    }
                )
            health[s] = segment_health(
                pd.DataFrame(
                    {"customer_id": ref["customer_id"], "segment": a, "monetary": ref["monetary"]}
                    | ({LABEL: ref_frame[LABEL]} if LABEL in ref_frame else {})
                ),
                pd.DataFrame(
                    {
                        "customer_id": current["customer_id"],
                        "segment": b,
                        "monetary": current["monetary"],
                    }
                ),
                segment="segment",
                repurchased=LABEL if ref_labels is not None else None,
                reference_as_of=reference.as_of,
                current_as_of=as_of,
                audit=result.audit,
                features_reference=ref,
                features_current=current,
                current_cohort=cohort_frame,
                config=cfg,
            )
    reasons = []
    if drift.share_drifted > cfg.drift_share:
        reasons.append(
            f"drifted feature share {drift.share_drifted:.2f} > {cfg.drift_share:g} "
            f"({', '.join(drift.drifted_features()[:5])})"
        )
    for s, hl in health.items():
        if not hl.healthy:
            worst = min((p for p in hl.parts if p.score is not None), key=lambda p: p.score)
            reasons.append(
                f"{s} health {hl.score:.0f} < {cfg.threshold:g} (weakest: {worst.name} "
                f"{worst.score:.0f}: {worst.explanation})"
            )
    return Monitored(
        as_of, reference, current, result.audit, drift, health, segments, cohort, reasons, notes
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
