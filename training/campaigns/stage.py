"""The two campaign stages as the CLI calls them: read the inputs, compute, then (after the
command has shown the result) write the files and log them to MLflow."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pandas as pd

from core import catalog
from core.errors import InputError
from core.outputs import CSV_ENCODING, check_output, staged, staged_file, write_csv
from training.campaigns import effects
from training.campaigns.config import Benefit, load_costs
from training.campaigns.evaluate import Evaluation, evaluate
from training.campaigns.plan import Plan, make_plan, read_segments


@dataclass
class Saved:
    paths: dict[str, Path]
    run_id: str | None


def _log(path: Path | None, column_map: dict | None) -> pd.DataFrame | None:
    if path is None:
        return None
    from features.contract import TRANSACTIONS, read_table

    frame = read_table(path, TRANSACTIONS, column_map).frame
    frame = frame[frame["customer_id"].notna() & frame["order_date"].notna()]
    frame = frame.assign(customer_id=frame["customer_id"].astype(str))
    return frame.assign(amount=pd.to_numeric(frame["amount"], errors="coerce").fillna(0.0))


def prepare_plan(
    segments: Path,
    scheme: str,
    *,
    control_share: float,
    seed: int,
    keys: list[str] | None = None,
    transactions: Path | None = None,
    column_map: dict | None = None,
    plan_date: date | None = None,
    window_days: int = 30,
    baseline_rate: float | None = None,
    mde: float | None = None,
) -> Plan:
    return make_plan(
        read_segments(segments),
        scheme,
        control_share=control_share,
        seed=seed,
        segments=keys,
        log=_log(transactions, column_map),
        plan_date=plan_date,
        window_days=window_days,
        baseline_rate=baseline_rate,
        mde_wanted=mde,
    )


def save_plan(plan: Plan, out: Path, inputs: list[Path | None], tracking=None) -> Saved:
    """plan.csv (BOM, for Excel and campaign tools) and plan.summary.json beside it."""
    out = check_output(out, inputs, folder=False)
    summary = catalog.plan_summary(out)
    with staged_file(out) as tmp:
        write_csv(plan.table, tmp, index=False)
    with staged_file(summary) as tmp:
        tmp.write_text(json.dumps(plan.summary, indent=2, ensure_ascii=False), "utf-8")
    paths = {"plan": out, "summary": summary}
    run_id = None
    if tracking is not None:
        run_id = _log_plan(plan, paths, tracking)
    return Saved(paths, run_id)


def _log_plan(plan: Plan, paths: dict, tracking) -> str:
    import mlflow

    from core import tracking as trk

    s = plan.summary
    with trk.run(tracking.experiment, f"campaign-plan-{s['scheme']}", tracking.uri) as run:
        mlflow.set_tags(
            {
                "custseg.stage": "campaign_plan",
                "custseg.scheme": s["scheme"],
                "plan_id": s["plan_id"],
            }
        )
        mlflow.log_params(
            {k: s[k] for k in ("scheme", "plan_date", "control_share", "seed", "window_days")}
            | {"mde_requested": s["mde_requested"], "baseline_source": s["baseline_source"][:250]}
        )
        metrics = {
            "customers": s["customers"],
            "treatment": s["treatment"],
            "control": s["control"],
        }
        for seg in s["segments"]:
            for k in ("customers", "control", "baseline", "mde", "control_needed"):
                if seg.get(k) is not None:
                    metrics.update(trk.flatten(f"segment.{seg['key']}", {k: seg[k]}))
        mlflow.log_metrics(metrics)
        for p in paths.values():
            mlflow.log_artifact(str(p), artifact_path="campaign")
        return run.info.run_id


def _read_any(path: Path, what: str) -> pd.DataFrame:
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such {what} file")
    try:
        if path.suffix.lower() == ".parquet":
            return pd.read_parquet(path)
        return pd.read_csv(path, encoding=CSV_ENCODING, dtype={"customer_id": str})
    except (ValueError, OSError) as exc:
        raise InputError(f"{path}: cannot read the {what} file ({exc})") from None


def run_evaluation(
    plan_path: Path,
    transactions: Path,
    *,
    start: date | None = None,
    end: date | None = None,
    events: Path | None = None,
    costs: Path | None = None,
    config: Path | None = None,
    column_map: dict | None = None,
) -> Evaluation:
    from core.config import section

    plan = _read_any(plan_path, "plan")
    summary = catalog.plan_summary(Path(plan_path))
    plan_id = ""
    if summary.exists():
        plan_id = json.loads(summary.read_text("utf-8")).get("plan_id", "")
    if not plan_id and "customer_id" in plan and "segment" in plan and "group" in plan:
        from training.campaigns.plan import plan_id as content_id

        plan_id = content_id(plan.astype({"customer_id": str, "segment": str}))
    benefit = section(config, "segmentation_benefit", Benefit.from_dict)
    return evaluate(
        plan,
        _log(transactions, column_map),
        start=start,
        end=end,
        events=_read_any(events, "events") if events else None,
        costs=load_costs(costs),
        benefit=benefit,
        plan_id=plan_id,
        source=str(plan_path),
    )


def save_evaluation(
    e: Evaluation, out: Path, inputs: list[Path | None], tracking=None, record: bool = True
) -> Saved:
    """campaign_results.csv, campaign_summary.json and campaign_report.html in `out`; the
    strategy-effect table in the state folder updated (unless not `record`)."""
    from training.campaigns.report import write_report

    out = check_output(out, inputs)
    summary = evaluation_summary(e)
    with staged(out) as tmp:
        write_csv(e.segments.reset_index(), tmp / catalog.CAMPAIGN_RESULTS, index=False)
        (tmp / catalog.CAMPAIGN_SUMMARY).write_text(
            json.dumps(summary, indent=2, ensure_ascii=False, default=str), "utf-8"
        )
        write_report(e, tmp / catalog.CAMPAIGN_REPORT)
    paths = {
        "results": out / catalog.CAMPAIGN_RESULTS,
        "summary": out / catalog.CAMPAIGN_SUMMARY,
        "report": out / catalog.CAMPAIGN_REPORT,
    }
    if record:
        paths["effects"] = effects.update(e)
    run_id = _log_evaluation(e, summary, paths, tracking) if tracking is not None else None
    return Saved(paths, run_id)


def evaluation_summary(e: Evaluation) -> dict:
    import math

    def plain(v):
        v = v.item() if hasattr(v, "item") else v
        return None if isinstance(v, float) and not math.isfinite(v) else v

    return {
        "scheme": e.scheme,
        "plan_id": e.plan_id,
        "window": [str(e.start), str(e.end)],
        "correction": "holm (family-wise, across segments, per measure)",
        "totals": e.totals,
        "not_paid": e.not_paid,
        "mergeable": [list(p) for p in e.mergeable],
        "segmentation_benefit": None
        if e.benefit is None
        else {
            "score": e.benefit.score,
            "threshold": e.benefit.threshold,
            "advice": e.benefit.advice,
        },
        "segments": {
            k: {c: plain(v) for c, v in r.items()} for k, r in e.segments.to_dict("index").items()
        },
        "notes": e.notes,
    }


def _log_evaluation(e: Evaluation, summary: dict, paths: dict, tracking) -> str:
    import math

    import mlflow

    from core import tracking as trk

    with trk.run(tracking.experiment, f"campaign-evaluate-{e.scheme}", tracking.uri) as run:
        mlflow.set_tags(
            {
                "custseg.stage": "campaign_evaluate",
                "custseg.scheme": e.scheme,
                "plan_id": e.plan_id,
                "not_paid": ", ".join(e.not_paid)[:500],
            }
        )
        mlflow.log_params({"start": str(e.start), "end": str(e.end), "correction": "holm"})
        keep = (
            "conversion_uplift", "conversion_low", "conversion_high", "conversion_p_adj",
            "revenue_uplift", "revenue_low", "revenue_high", "revenue_p_adj",
            "incremental_revenue", "cost", "roi", "incremental_roi", "ltv_cac",
        )  # fmt: skip
        metrics = {}
        for key, r in e.segments.iterrows():
            for k in keep:
                v = r.get(k)
                if v is not None and isinstance(v, int | float) and math.isfinite(v):
                    metrics.update(trk.flatten(f"segment.{key}", {k: float(v)}))
        totals = {k: float(v) for k, v in e.totals.items() if isinstance(v, int | float)}
        mlflow.log_metrics(metrics | {f"total.{k}": v for k, v in totals.items()})
        for name in ("results", "summary", "report"):
            mlflow.log_artifact(str(paths[name]), artifact_path="campaign")
        return run.info.run_id
