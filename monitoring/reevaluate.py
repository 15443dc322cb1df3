"""Re-evaluation: refit the serving schemes on today's customers and promote a challenger only
if it beats the serving champion on the same current data.

Both are scored by the same three measures, each "higher is better":
- separation: silhouette of the segments in the common log-RFM space (a seeded sample, as the
  health index's separation part);
- stability: share of customers (in the reference and now) whose segment the scheme keeps
  between the reference table and today's — a scheme that reshuffles everyone is no basis for
  a strategy;
- business_signal: how much of the newest labelled cohort's repurchase the segments explain
  (omega squared of the 0/1 label by segment; only when labels exist).
The challenger wins when it is better by more than `margin` on more measures than it is worse by
more than `margin` (measures missing on either side do not vote). Refitting fixed rules
therefore never promotes: nothing changes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np
import pandas as pd

from monitoring.health import HealthConfig, migration, silhouette
from monitoring.measure import LABEL, Monitored

MEASURES = ("separation", "stability", "business_signal")


@dataclass
class Verdict:
    scheme: str
    promoted: bool
    reason: str
    champion: dict[str, float | None]
    challenger: dict[str, float | None]
    version: str | None = None  # registered version of the challenger (None: not logged)

    def to_dict(self) -> dict:
        return asdict(self)


def measures(
    reference: pd.DataFrame,
    ref_labels: np.ndarray,
    cur_labels: np.ndarray,
    cohort_labels: np.ndarray | None,
    m: Monitored,
    cfg: HealthConfig,
) -> dict[str, float | None]:
    """The three measures of one scheme's segments, computed as the health index computes its
    stability and separation parts (same helpers, same sample)."""
    ref = _assigned(reference, ref_labels)
    cur = _assigned(m.current, cur_labels)
    both = migration(ref, cur)
    kept = float((both["segment_ref"] == both["segment_cur"]).mean()) if len(both) else None
    separation, _ = silhouette(cur, m.current, "current", cfg, 0)
    business = None
    if m.cohort is not None and cohort_labels is not None:
        y = pd.to_numeric(m.cohort[LABEL], errors="coerce").to_numpy()
        ok = ~np.isnan(y)
        if ok.sum() > 1 and y[ok].var() > 0:
            business = omega_squared(y[ok], np.asarray(cohort_labels, dtype=object)[ok])
    return {"separation": separation, "stability": kept, "business_signal": business}


def _assigned(features: pd.DataFrame, labels: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(
        {"customer_id": features["customer_id"].astype(str).to_numpy(), "segment": labels}
    )


def omega_squared(y: np.ndarray, groups: np.ndarray) -> float:
    """Share of the variance of `y` explained by `groups`, corrected for the number of groups
    (omega squared): plain eta squared grows with every extra segment, which would favour
    challengers with more clusters."""
    frame = pd.DataFrame({"y": y, "g": groups})
    n, k = len(frame), frame["g"].nunique()
    total = float(((frame["y"] - frame["y"].mean()) ** 2).sum())
    within = float(((frame["y"] - frame.groupby("g")["y"].transform("mean")) ** 2).sum())
    if k < 2 or n <= k or total == 0:
        return 0.0
    mean_within = within / (n - k)
    return float((total - within - (k - 1) * mean_within) / (total + mean_within))


def decide(champion: dict, challenger: dict, margin: float = 0.01) -> tuple[bool, str]:
    """(promote?, why): better by > margin on more measures than worse by > margin."""
    wins, losses, parts = [], [], []
    for k in MEASURES:
        a, b = champion.get(k), challenger.get(k)
        if a is None or b is None:
            parts.append(f"{k} n/a")
            continue
        sign = "+" if b > a + margin else "-" if b < a - margin else "="
        (wins if sign == "+" else losses if sign == "-" else []).append(k)
        parts.append(f"{k} challenger {b:.3f} vs champion {a:.3f} ({sign})")
    detail = "; ".join(parts)
    if len(wins) > len(losses):
        return True, f"challenger better on {', '.join(wins)}: {detail}"
    if not wins and not losses:
        return False, f"challenger not better by more than {margin:g} on any measure: {detail}"
    return False, f"challenger better on {len(wins)}, worse on {len(losses)} measure(s): {detail}"


def reevaluate(
    m: Monitored,
    models,
    scheme_file,
    trials: int,
    cfg: HealthConfig,
    promote: bool = True,
) -> dict[str, Verdict]:
    """Refit the monitored schemes on the current table and compare each with its champion.
    With `promote`: winners are registered and get the alias `champion` (decision and reason as
    version tags); a champion that held is tagged so, and today's table becomes its reference
    (it was just validated on it: freshness starts again). Losing challengers are not
    registered (a scheduled job would fill the registry); their measures stay in the summary.
    Call inside an active MLflow run."""
    from training.segmentation import fit_schemes
    from training.segmentation import stage as segstage

    specs = [s for s in scheme_file.schemes if s.name in m.health]
    fitted, skipped = fit_schemes(
        m.current, replace(scheme_file, schemes=specs), trials, history=m.history
    )
    verdicts: dict[str, Verdict] = {}
    for name, why in skipped.items():
        verdicts[name] = Verdict(name, False, f"not refitted: {why}", {}, {})
    winners, losers = [], []
    for new in fitted:
        ref_old, cur_old = m.segments[new.name]
        reference = m.references[new.name].table
        champ = measures(reference, ref_old, cur_old, m.cohort_segments.get(new.name), m, cfg)
        chall = measures(
            reference,
            new.assigner.assign(reference),
            new.assigner.assign(m.current),
            None if m.cohort is None else new.assigner.assign(m.cohort),
            m,
            cfg,
        )
        won, reason = decide(champ, chall)
        verdicts[new.name] = Verdict(new.name, won and promote, reason, champ, chall)
        if won and not promote:
            verdicts[new.name].reason = "would promote (--no-promote): " + reason
        (winners if won and promote else losers).append(new)
    if not promote:
        return verdicts  # nothing changes in the registry
    import mlflow

    from core.catalog import REFERENCE_TAG, segmenter_name
    from training.segmentation.tracking import log_reference

    client = mlflow.MlflowClient()
    reference_run = log_reference(m.current)  # today's table: what winners were fitted on
    snapshot = {k: m.current.attrs.get(k) for k in ("as_of", "definition_hash", "engine")}
    logged = (
        segstage.log(winners, m.current, scheme_file, snapshot, True, reference_run)
        if winners
        else {}
    )
    if logged:  # the winners join the served set in one step
        from core.registry import publish

        run = mlflow.active_run()
        publish(client, segstage.promotions(logged), run.info.run_id, snapshot["definition_hash"])
    for name, out in logged.items():
        v = verdicts[name]
        v.version = str(out["version"])
        v.promoted = bool(out["champion"])  # a scheme with serve = false gets no alias
        for key, value in (("promoted", str(v.promoted).lower()), ("reason", v.reason)):
            client.set_model_version_tag(
                segmenter_name(name), v.version, f"custseg.reevaluation.{key}", value
            )
    for new in losers:  # the champion held on today's data: today is its reference now
        version = models.versions[segmenter_name(new.name)]
        run_id = client.get_model_version(segmenter_name(new.name), version).run_id
        client.set_tag(run_id, REFERENCE_TAG, reference_run)
        client.set_model_version_tag(
            segmenter_name(new.name),
            version,
            "custseg.reevaluation.kept",
            verdicts[new.name].reason,
        )
    return verdicts
