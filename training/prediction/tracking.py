"""Log a prediction target to MLflow, decide its promotion against the registered champion, and
register it (`custseg-repurchase`, `custseg-churn`; alias `champion` only when the gate passes).
"""

from __future__ import annotations

import json
import math

from core import catalog
from core.catalog import predictor_name
from training.prediction import plots
from training.prediction.promotion import Decision, decide
from training.prediction.train import TargetResult


def champion(target: str):
    """(Predictor, version) of the current champion, or (None, None)."""
    import mlflow

    from core.registry import served

    version = served(mlflow.MlflowClient()).get(predictor_name(target))
    if version is None:
        return None, None
    model = mlflow.pyfunc.load_model(f"models:/{predictor_name(target)}/{version}")
    return model.unwrap_python_model().predictor, version


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

    current, version = champion(result.target) if register else (None, None)
    decision: Decision = decide(result, current, version, gate_metric, gate_margin)
    result.decision = decision
    plan = result.plan
    with mlflow.start_run(run_name=f"predict-{result.target}", nested=True) as run:
        mlflow.set_tags(
            {
                "custseg.stage": "prediction",
                "custseg.target": result.target,
                "custseg.promoted": str(decision.promote).lower(),
                "custseg.decision": decision.reason[:5000],
                "features.as_of": str(snapshot.get("as_of")),
                "features.definition_hash": str(snapshot.get("definition_hash")),
            }
        )
        mlflow.log_params(
            {
                "horizon_days": plan.horizon_days,
                "train_cutoffs": ",".join(map(str, plan.train)),
                "valid_cutoff": str(plan.valid),
                "test_cutoff": str(plan.test),
                "calibration": result.predictor.calibrator.method,
                **{f"lgbm.{k}": v for k, v in result.predictor.params.items()},
                **{f"rows.{k}": v for k, v in result.sizes.items()},
            }
        )
        metrics = {f"test.{k}": v for k, v in result.metrics.items()}
        metrics |= {f"valid.{k}": v for k, v in result.valid_metrics.items()}
        metrics |= {
            f"baseline.{b}.{k}": v for b, m in result.baselines.items() for k, v in m.items()
        }
        metrics |= {f"calibration.log_loss.{k}": v for k, v in result.calibration_losses.items()}
        mlflow.log_metrics({k: float(v) for k, v in metrics.items() if math.isfinite(v)})
        mlflow.log_text(result.drivers.rename("mean_abs_contribution").to_csv(), catalog.DRIVERS)
        trials = result.study.trials_dataframe() if result.study is not None else None
        if trials is not None:
            mlflow.log_text(trials.to_csv(index=False), catalog.TUNING_TRIALS)
        xt, yt, fit = result.test
        figures = {
            "calibration.png": plots.calibration(result.curves, result.target),
            "drivers.png": plots.drivers(result.drivers, result.target),
            "gains.png": plots.gains(
                yt, {"LightGBM": result.predictor.predict_proba(xt, fit)}, result.target
            ),
        }
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
            model = PredictorModel(result.predictor, snapshot)
            example = example_rows(xt, result.predictor.columns)
            info = mlflow.pyfunc.log_model(
                name="predictor",
                python_model=model,
                signature=output_signature(example, model.predict(None, example)),
                input_example=example,
                pip_requirements=pip_requirements("lightgbm", "scikit-learn", "scipy"),
                metadata={
                    "target": result.target,
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
                tags={"target": result.target},
            )
            out["version"] = number
            mlflow.set_tag("custseg.model_version", str(number))
            # to be served: the caller promotes the whole set at once (core.registry.publish)
            out["promoted"] = decision.promote
    return out
