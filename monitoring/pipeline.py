"""One monitoring run as a function (`custseg monitor` calls it): today's log against the
reference the serving champions were fitted on; Evidently pages, the health index, the
re-evaluation when needed and asked for, summary.json and the analysts' report, all logged to
MLflow."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

from core import catalog, paths
from core import tracking as mlflow_setup
from core.errors import CustsegError
from core.progress import stage
from monitoring.health import HealthConfig
from monitoring.measure import Monitored
from training.pipeline import Configs, Inputs, Tracking
from training.segmentation.spec import SchemeFile


@dataclass
class MonitorResult:
    measured: Monitored
    summary: dict  # what summary.json holds
    paths: dict[str, Path]  # summary, report and the Evidently pages
    run_id: str


def monitor(
    inputs: Inputs,
    *,
    as_of: date | None = None,
    out: Path | None = None,
    health: HealthConfig = HealthConfig(),  # noqa: B008 - frozen
    configs: Configs = Configs(),  # noqa: B008 - frozen
    reevaluate_with: SchemeFile | None = None,
    trials: int | None = None,
    promote: bool = True,
    track: Tracking = Tracking(),  # noqa: B008 - frozen
) -> MonitorResult:
    """Measure drift and segment health as of `as_of` (default: the last order date); with a
    scheme file, refit the schemes when re-evaluation is needed and promote better ones."""
    from features.pipeline import last_order_date
    from features.stage import read_inputs, resolve_cutoff
    from monitoring import summary
    from monitoring.measure import measure
    from monitoring.reference import champion_references
    from monitoring.report import write_report
    from serving.models import load_champions

    uri = track.uri or paths.tracking_uri()
    mlflow_setup.use(track.experiment, uri)
    try:  # exit 1 means "unhealthy": an unexpected crash must say so and exit 2 instead
        with stage("loading the serving champions and their reference"):
            models = load_champions(uri)
            references = champion_references(models.versions, uri)
        cleaning = configs.cleaning
        tx, cust = read_inputs(
            inputs.transactions, inputs.customers, inputs.mapping, cleaning, inputs.sheet
        )
        cutoff = resolve_cutoff(as_of, last_order_date(tx), inputs.transactions)
        m = measure(tx, cust, cutoff, models, references, cleaning, configs.features, health)
        out = out or catalog.monitoring_dir(cutoff)
        with mlflow_setup.run(track.experiment, f"monitor {cutoff}", uri):
            with stage("writing the Evidently pages"):
                pages = m.drift.save_html(out)
            verdicts = None
            if m.needed and reevaluate_with is not None:
                from monitoring.reevaluate import reevaluate

                with stage("re-evaluating the schemes on the current data"):
                    found = reevaluate(
                        m,
                        models,
                        reevaluate_with,
                        trials or health.reevaluate_trials,
                        health,
                        promote,
                    )
                verdicts = {k: v.to_dict() for k, v in found.items()}
            data = summary.summary(m, models, health, verdicts, pages)
            history = summary.update_history(catalog.monitoring_root() / catalog.MONITOR_HISTORY, m)
            data["tags"]["history"] = summary.update_tag_history(
                catalog.monitoring_root() / catalog.TAG_HISTORY, m, data["tags"]
            )
            report = write_report(data, history, out)
            path = summary.write(out, data)
            run_id = summary.log_run(m, data, [path, report, *pages.values()])
    except CustsegError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise CustsegError(f"monitoring failed: {type(exc).__name__}: {exc}") from exc
    return MonitorResult(m, data, {"summary": path, "report": report, **pages}, run_id)
