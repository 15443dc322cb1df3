"""Log the value model to MLflow, gate it against the registered champion and register it as
`<project>-value` (alias `champion` only when the gate passes, like the other predictors).

The gate re-scores the champion's held-out sibling on this run's test window: the new model
must rank that window's actual spend better (Spearman) by more than the margin.
"""

from __future__ import annotations

import math
from datetime import timedelta

from core import catalog
from core.catalog import VALUE_TARGET, predictor_name
from core.outputs import csv_text
from training.prediction.clv import LABELS, METRIC, ValueResult
from training.prediction.promotion import Decision
from training.prediction.value import ranking_metrics

MARGIN = 0.002  # Spearman: refits of the same data differ by about this much


def champion():
    """(model that scores, its held-out sibling, version) of the value champion, or Nones."""
    import mlflow

    from core.registry import served

    version = served(mlflow.MlflowClient()).get(predictor_name(VALUE_TARGET))
    if version is None:
        return None, None, None
    inner = mlflow.pyfunc.load_model(f"models:/{predictor_name(VALUE_TARGET)}/{version}")
    inner = inner.unwrap_python_model()
    return inner.predictor, inner.held_out or inner.predictor, version


def decide(result: ValueResult, held_out=None, version: str | None = None) -> Decision:
    """Promote when there is no champion, when the champion cannot be re-scored fairly on this
    window, or when the new model ranks the window's spend better by more than MARGIN."""

    def verdict(promote: bool, reason: str, theirs: dict | None = None) -> Decision:
        return Decision(promote, reason, version, theirs, METRIC)

    ours = result.candidates.get(result.chosen, {}).get(METRIC, math.nan)
    lead = f"{LABELS[result.chosen]} Spearman {ours:.4f} on the held-out window"
    if not result.test or not math.isfinite(ours):
        if held_out is None:
            return verdict(True, "no held-out window: BG/NBD x Gamma-Gamma; no champion yet")
        return verdict(False, f"no held-out window to compare with champion v{version}: it stays")
    if held_out is None:
        return verdict(True, f"{lead}; no champion yet")
    xt, yt, fit = result.test
    if held_out.horizon_days != result.plan.horizon_days:
        return verdict(True, f"{lead}; champion v{version} has another horizon: replaced")
    missing = [c for c in held_out.columns if c not in xt.columns]
    seen = (
        held_out.trained_on
        and max(held_out.trained_on) + timedelta(days=held_out.horizon_days) > result.plan.test
    )
    if missing or seen:
        why = "lacks inputs" if missing else "learned from labels inside this window"
        return verdict(True, f"{lead}; champion v{version} {why}, so it is replaced")
    theirs = ranking_metrics(held_out.spend(xt, fit), yt)
    if ours - theirs[METRIC] > MARGIN:
        return verdict(True, f"{lead}, champion v{version} {theirs[METRIC]:.4f}", theirs)
    return verdict(
        False,
        f"{lead}, not better than champion v{version} ({theirs[METRIC]:.4f}) by more than "
        f"{MARGIN:g}: the champion stays",
        theirs,
    )


def log_value(result: ValueResult, snapshot: dict, register: bool = True) -> dict:
    """One nested run: parameters, held-out metrics of every candidate, the checks and plots;
    the model registered; returns run id, version and the decision."""
    import matplotlib.pyplot as plt
    import mlflow

    from core.tracking import example_rows, output_signature, pip_requirements, register_model
    from training.prediction import value_plots
    from training.prediction.model import ValueModelPyfunc

    current, held_out, version = champion() if register else (None,) * 3
    result.decision = decide(result, held_out, version)
    if current is not None and not result.decision.promote:
        result.served, result.served_label = (
            current,
            f"{LABELS[current.kind]} v{version} (champion)",
        )
    p, plan = result.predictor, result.plan
    with mlflow.start_run(run_name=f"predict-{VALUE_TARGET}", nested=True) as run:
        mlflow.set_tags(
            {
                "custseg.stage": "prediction",
                "custseg.target": VALUE_TARGET,
                "custseg.promoted": str(result.decision.promote).lower(),
                "custseg.model_kind": p.kind,
                "custseg.window_mode": plan.mode,
                "custseg.decision": result.decision.reason[:5000],
            }
        )
        gg = p.btyd.spend
        mlflow.log_params(
            {
                "horizon_days": plan.horizon_days,
                "monthly_discount": p.btyd.cfg.monthly_discount,
                "window_mode": plan.mode,
                "test_cutoff": str(plan.test),
                "chosen_model": result.chosen,
                "refit_cutoffs": ",".join(map(str, p.trained_on)) or "-",
                "gamma_gamma.p": gg.p,
                "gamma_gamma.q": gg.q,
                "gamma_gamma.v": gg.v,
                **{f"lgbm.{k}": v for k, v in p.params.items()},
            }
        )
        metrics = {f"test.{k}.{m}": v for k, ms in result.candidates.items() for m, v in ms.items()}
        metrics["gamma_gamma.frequency_value_correlation"] = result.correlation
        mlflow.log_metrics({k: float(v) for k, v in metrics.items() if math.isfinite(v)})
        figures = {}
        if len(result.deciles):
            mlflow.log_text(csv_text(result.deciles), "value/deciles.csv")
            figures["value_deciles.png"] = value_plots.deciles(result.deciles)
        if len(result.orders_check):
            mlflow.log_text(csv_text(result.orders_check), "value/orders_by_frequency.csv")
            figures["value_orders.png"] = value_plots.orders(result.orders_check)
        for name, fig in figures.items():
            mlflow.log_figure(fig, f"{catalog.PLOTS}/{name}")
            plt.close(fig)
        out = {"run_id": run.info.run_id, "version": None, "promoted": False,
               "decision": result.decision.reason}  # fmt: skip
        if not register:
            return out
        model = ValueModelPyfunc(p, snapshot, result.held_out)
        rows = result.test[0] if result.test else result.example
        example = example_rows(rows, p.columns)
        info = mlflow.pyfunc.log_model(
            name="value",
            python_model=model,
            signature=output_signature(example, model.predict(None, example)),
            input_example=example,
            pip_requirements=pip_requirements("lightgbm", "scikit-learn", "scipy"),
            metadata={
                "target": VALUE_TARGET,
                "model_kind": p.kind,
                "horizon_days": plan.horizon_days,
                **model.snapshot,
            },  # fmt: skip
        )
        number = register_model(
            mlflow.MlflowClient(),
            predictor_name(VALUE_TARGET),
            info,
            run.info.run_id,
            description=f"custseg customer value: CLV over {plan.horizon_days} days",
            tags={"target": VALUE_TARGET, "model_kind": p.kind},
        )
        out["version"] = number
        mlflow.set_tag("custseg.model_version", str(number))
        out["promoted"] = result.decision.promote
        if result.decision.promote:
            result.served, result.served_label = p, f"{LABELS[p.kind]} v{number}"
    return out
