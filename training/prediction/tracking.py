"""Log a prediction target to MLflow, decide its promotion against the registered champion, and
register it (`custseg-repurchase`, `custseg-churn`; alias `champion` only when the gate passes).
"""

from __future__ import annotations

import json
import math

from core import catalog
from core.catalog import predictor_name
from core.outputs import csv_text
from training.prediction import plots
from training.prediction.promotion import LABELS, Decision, decide
from training.prediction.train import TargetResult


def champion(target: str):
    """(model that scores, its held-out sibling for the gate, version) of the current champion,
    or (None, None, None). Versions registered before the sibling existed gate on themselves."""
    import mlflow

    from core.registry import served

    version = served(mlflow.MlflowClient()).get(predictor_name(target))
    if version is None:
        return None, None, None
    inner = mlflow.pyfunc.load_model(f"models:/{predictor_name(target)}/{version}")
    inner = inner.unwrap_python_model()
    return inner.predictor, getattr(inner, "held_out", None) or inner.predictor, version


def log_target(
    result: TargetResult,
    snapshot: dict,
    gate_metric: str = "log_loss",
    gate_margin: float = 0.001,
    register: bool = True,
) -> dict:
    """One nested run for the target; returns run id, version and the promotion decision."""
    import matplotlib.pyplot as plt
    import mlflow

    from core.tracking import (
        example_rows,
        output_signature,
        pip_requirements,
        register_model,
    )
    from training.prediction.model import PredictorModel

    current, held_out, version = champion(result.target) if register else (None,) * 3
    decision: Decision = decide(result, held_out, version, gate_metric, gate_margin)
    result.decision = decision
    if current is not None and not decision.promote:  # a refused model never scores
        result.served, result.served_label = current, f"{current.kind} v{version} (champion)"
    plan = result.plan
    with mlflow.start_run(run_name=f"predict-{result.target}", nested=True) as run:
        mlflow.set_tags(
            {
                "custseg.stage": "prediction",
                "custseg.target": result.target,
                "custseg.promoted": str(decision.promote).lower(),
                "custseg.model_kind": result.predictor.kind,
                "custseg.window_mode": plan.mode,
                "custseg.window_notes": " | ".join(plan.notes)[:5000] or "-",
                "custseg.decision": decision.reason[:5000],
                "features.as_of": str(snapshot.get("as_of")),
                "features.definition_hash": str(snapshot.get("definition_hash")),
            }
        )
        mlflow.log_params(
            {
                "horizon_days": plan.horizon_days,
                "window_mode": plan.mode,
                "train_cutoffs": ",".join(map(str, plan.train)),
                "valid_cutoff": str(plan.valid),
                "test_cutoff": str(plan.test),
                "chosen_model": result.chosen,
                "refit_cutoffs": ",".join(map(str, result.predictor.trained_on)),
                "calibration": result.predictor.calibrator.method,
                **{
                    f"lgbm.{k}": v for k, v in (result.model.params if result.model else {}).items()
                },
                **{f"rows.{k}": v for k, v in result.sizes.items()},
            }
        )
        metrics = {f"test.{k}": v for k, v in result.metrics.items()}
        metrics |= {f"valid.{k}": v for k, v in result.valid_metrics.items()}
        metrics |= {
            f"baseline.{b}.{k}": v for b, m in result.baselines.items() for k, v in m.items()
        }
        metrics |= {f"calibration.log_loss.{k}": v for k, v in result.calibration_losses.items()}
        metrics |= {
            f"vs.{b}.{m}.{part}": v
            for b, diffs in result.comparison.items()
            for m, values in diffs.items()
            for part, v in zip(("diff", "ci_low", "ci_high"), values, strict=True)
        }
        mlflow.log_metrics({k: float(v) for k, v in metrics.items() if math.isfinite(v)})
        if len(result.drivers):
            drivers = result.drivers.rename("mean_abs_contribution")
            mlflow.log_text(csv_text(drivers), catalog.DRIVERS)  # category names may be Chinese
        trials = result.study.trials_dataframe() if result.study is not None else None
        if trials is not None:
            mlflow.log_text(csv_text(trials, index=False), catalog.TUNING_TRIALS)
        figures = {}
        if result.test:
            xt, yt, fit = result.test
            held_out = result.model or result.predictor
            figures["calibration.png"] = plots.calibration(result.curves, result.target)
            figures["gains.png"] = plots.gains(
                yt, {LABELS[held_out.kind]: held_out.predict_proba(xt, fit)}, result.target
            )
        if len(result.drivers):
            figures["drivers.png"] = plots.drivers(result.drivers, result.target)
        for name, fig in figures.items():
            mlflow.log_figure(fig, f"{catalog.PLOTS}/{name}")
            plt.close(fig)
        out = {
            "run_id": run.info.run_id,
            "version": None,
            "promoted": False,
            "decision": decision.reason,
        }
        mlflow.log_text(json.dumps({**decision.__dict__}, indent=2, default=str), catalog.DECISION)
        if register:
            model = PredictorModel(result.predictor, snapshot, result.held_out)
            example = example_rows(snapshot_rows(result), result.predictor.columns)
            info = mlflow.pyfunc.log_model(
                name="predictor",
                python_model=model,
                signature=output_signature(example, model.predict(None, example)),
                input_example=example,
                pip_requirements=pip_requirements("lightgbm", "scikit-learn", "scipy"),
                metadata={
                    "target": result.target,
                    "model_kind": result.predictor.kind,
                    "horizon_days": plan.horizon_days,
                    **model.snapshot,
                },
            )
            client = mlflow.MlflowClient()
            number = register_model(
                client,
                predictor_name(result.target),
                info,
                run.info.run_id,
                description=f"custseg {result.target} probability ({plan.horizon_days} days)",
                tags={"target": result.target, "model_kind": result.predictor.kind},
            )
            out["version"] = number
            mlflow.set_tag("custseg.model_version", str(number))
            # to be served: the caller promotes the whole set at once (core.registry.publish)
            out["promoted"] = decision.promote
            if decision.promote:
                result.served = result.predictor
                result.served_label = f"{result.predictor.kind} v{number}"
    return out


def snapshot_rows(result: TargetResult):
    """Feature rows for the model's input example: the test window's, else the scoring ones."""
    return result.test[0] if result.test else result.example
