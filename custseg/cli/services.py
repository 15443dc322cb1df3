"""Long-running servers: `serve` (the champions over HTTP, BentoML) and `ui` (the MLflow UI).
Both replace this process with the server's own."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from custseg.cli.options import ProjectOpt, TrackingOpt


def serve(
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 3000,
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    tracking_uri: TrackingOpt = None,
    project: ProjectOpt = None,
) -> None:
    """Serve the registered champions over HTTP (BentoML): POST /predict with customers'
    feature rows -> segment per scheme, repurchase / churn probabilities and the value model's
    CLV, P(alive), next order and value tier; GET /metadata (models, versions, feature schema);
    /healthz, /readyz; POST /reload picks up new champions.

    Set CUSTSEG_API_KEY to require the header `x-api-key`; CUSTSEG_MAX_BATCH caps a batch (5000
    customers); CUSTSEG_MAX_BODY_BYTES caps a body (16 MiB); CUSTSEG_ALLOWED_HOSTS lists the
    Host names it answers (default: this machine).
    """
    from core import paths
    from serving import budget
    from serving.models import require_champions

    os.environ["MLFLOW_TRACKING_URI"] = tracking_uri or paths.tracking_uri()
    require_champions(os.environ["MLFLOW_TRACKING_URI"])  # else workers restart forever
    os.environ.setdefault("BENTOML_DO_NOT_TRACK", "True")
    budget.set_environment()  # read by each library as it loads in the workers
    args = ["serve", "serving.service:Custseg", "--host", host, "--port", str(port)]
    typer.echo(
        f"serving the champions of {os.environ['MLFLOW_TRACKING_URI']} on http://{host}:{port}"
    )
    os.execv(sys.executable, [sys.executable, "-m", "bentoml", *args])


def ui(
    port: Annotated[int, typer.Option(help="Port for the MLflow UI.")] = 5000,
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    tracking_uri: TrackingOpt = None,
) -> None:
    """Open the MLflow UI on the local store (runs, metrics, plots, registered models).

    Sized for one person browsing: one web worker and no job runner (MLflow's defaults, four
    workers and seven job consumers for its GenAI features, took 13 processes and 2.8 GB on a
    2-core machine; this takes 2 and about 0.6 GB). MLFLOW_SERVER_ENABLE_JOB_EXECUTION=true
    brings the job runner back."""
    from core import paths

    uri = tracking_uri or paths.tracking_uri()
    if uri.startswith(("http://", "https://")):  # a tracking server (team mode) has its own UI
        typer.echo(f"the MLflow UI is the tracking server's own: open {uri}")
        return
    typer.echo(f"MLflow UI for {uri} on http://{host}:{port} (Ctrl-C stops it)")
    os.environ.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
    args = ["ui", "--backend-store-uri", uri, "--host", host, "--port", str(port), "--workers", "1"]
    os.execv(sys.executable, [sys.executable, "-m", "mlflow", *args])  # this venv's MLflow
