"""Log the next-best model to MLflow, gate it and register it as `<project>-next-best` (it joins
the served model set with the run's other promotions, `core.registry.publish`).

The gate: promote when the model beats the popularity baseline's recall@k on its out-of-time
check (history up to as_of - horizon, the products customers bought next), or when there is no
champion yet; otherwise the champion stays.
"""

from __future__ import annotations

import math

from core.catalog import next_best_name
from training.prediction.promotion import Decision

METRIC = "recall"


def decide(validation: dict, champion: str | None) -> Decision:
    """The decision, its reason in words."""
    k = validation.get("k", 3)
    methods = validation.get("methods") or {}
    ours = methods.get("co-occurrence", {}).get(METRIC, math.nan)
    base = methods.get("popularity", {}).get(METRIC, math.nan)

    def verdict(promote: bool, reason: str) -> Decision:
        return Decision(promote, reason, champion, None, f"{METRIC}@{k}")

    if not (math.isfinite(ours) and math.isfinite(base)):
        if champion is None:
            return verdict(True, "no out-of-time check (no customer bought anew); no champion yet")
        return verdict(False, f"no out-of-time check: champion v{champion} stays")
    lead = (
        f"co-occurrence recall@{k} {ours:.4f} against popularity {base:.4f} out of time "
        f"(history to {validation.get('cutoff')}, {validation.get('customers')} customers)"
    )
    if ours > base:
        return verdict(True, f"{lead}: it beats the baseline")
    if champion is None:
        return verdict(True, f"{lead}: not better than the baseline, but no champion yet")
    return verdict(False, f"{lead}: not better than the baseline, champion v{champion} stays")


def log_next_best(offers, k: int = 3) -> dict:
    """One nested run: the settings, the out-of-time figures, the model registered; returns run
    id, version, promoted and the decision."""
    import mlflow

    from core.registry import served
    from core.tracking import pip_requirements, register_model
    from training.baskets.model import NextBestPyfunc

    model, check = offers.model, offers.validation
    name = next_best_name()
    champion = served(mlflow.MlflowClient()).get(name)
    decision = decide(check, champion)
    with mlflow.start_run(run_name="next-best", nested=True) as run:
        mlflow.set_tags(
            {
                "custseg.stage": "baskets",
                "custseg.promoted": str(decision.promote).lower(),
                "custseg.decision": decision.reason[:5000],
            }
        )
        mlflow.log_params(
            {**model.settings, "level": model.level, "as_of": model.as_of, "items": model.n_items}
        )
        metrics = {
            f"next_best.{method}.{m}_at_{check.get('k', k)}": v
            for method, ms in (check.get("methods") or {}).items()
            for m, v in ms.items()
        }
        metrics["next_best.customers"] = check.get("customers", 0)
        metrics["next_best.pairs"] = model.conf.nnz
        mlflow.log_metrics({k: float(v) for k, v in metrics.items() if math.isfinite(v)})
        info = mlflow.pyfunc.log_model(
            name="next_best",
            python_model=NextBestPyfunc(model, k, check),
            pip_requirements=pip_requirements("scipy"),
            metadata={"level": model.level, "as_of": model.as_of, "items": model.n_items},
        )
        number = register_model(
            mlflow.MlflowClient(),
            name,
            info,
            run.info.run_id,
            description="custseg next-best products: item-item co-occurrence of baskets",
            tags={"level": model.level},
        )
        mlflow.set_tag("custseg.model_version", str(number))
    return {
        "run_id": run.info.run_id,
        "version": number,
        "promoted": decision.promote,
        "decision": decision.reason,
    }


def promotions(logged: dict | None) -> dict[str, str]:
    """{<project>-next-best: version} when it passed the gate, else {}."""
    if not logged or not logged.get("promoted"):
        return {}
    return {next_best_name(): str(logged["version"])}
