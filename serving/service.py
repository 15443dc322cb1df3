"""The BentoML service: champions in, segments and probabilities out, over HTTP.

    bentoml serve serving.service:Custseg --port 3000      (or `custseg serve`)

Loads every registered champion at start (segmenters, repurchase and churn predictors, the value
model) from the
MLflow store (`MLFLOW_TRACKING_URI`, else custseg's local SQLite store). Every request but the
health checks passes `serving.guard.RequestGuard` before BentoML reads its body: Host allow-list
(`CUSTSEG_ALLOWED_HOSTS`), API key (`CUSTSEG_API_KEY`, header `x-api-key`), same-origin and
`application/json` posts only, body size (`CUSTSEG_MAX_BODY_BYTES`, 16 MiB). Every error
answers `{"error": "<what to fix>"}` (`serving.errors`).
"""

from __future__ import annotations

import logging
import os
import threading
import time

import bentoml
import pydantic_core
from fastapi import FastAPI, Request
from fastapi.responses import Response

from serving import budget  # first: thread counts are read when the libraries load
from serving.coalesce import Coalescer
from serving.errors import OneErrorShape
from serving.guard import GuardConfig, RequestGuard
from serving.models import ModelSet, champion_versions, load_champions, today
from serving.schemas import (
    Answer,
    BadRequest,
    PredictRequest,
    ScoreRequest,
    as_of_date,
    customers_frame,
    request_rows,
    rows_frame,
    transactions_frame,
)
from serving.scoring import products_of

# customers per request (/predict rows; distinct customers of /score_transactions' orders)
MAX_BATCH = int(os.environ.get("CUSTSEG_MAX_BATCH", "5000"))
MAX_TRANSACTIONS = 50 * MAX_BATCH  # order rows per /score_transactions request
# one process per core: a request is CPU-bound Python, so threads in one process do not scale
WORKERS = int(os.environ.get("CUSTSEG_WORKERS", "2"))
# each worker process holds its own model set: it polls the registry's champion aliases this
# often and swaps in a new set when one moved (0: never; /reload still works, per worker)
WATCH_SECONDS = float(os.environ.get("CUSTSEG_WATCH_SECONDS", "10"))
logger = logging.getLogger("custseg.serving")
GUARD = GuardConfig.from_env()

meta_app = FastAPI(title="custseg metadata")


class ClientErrorsInOneLine(logging.Filter):
    """BentoML logs every failed request with its traceback. A 4xx is the caller's mistake and
    the response already says what it was: log it as one warning line, so real failures (5xx)
    stand out in the server log."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        client = isinstance(exc, pydantic_core.ValidationError) or (
            isinstance(exc, bentoml.exceptions.BentoMLException) and exc.error_code < 500
        )
        if client:
            first = str(exc).splitlines()[0] if str(exc) else ""
            record.msg, record.args = f"{record.getMessage()}: {type(exc).__name__}: {first}", ()
            record.exc_info = record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


logging.getLogger("bentoml._internal.server.http_app").addFilter(ClientErrorsInOneLine())


@meta_app.get("/metadata")
def metadata(request: Request):
    return request.app.state.service.models.describe()  # the guard checked the key


@bentoml.service(name="custseg", workers=WORKERS, traffic={"timeout": 30})
@bentoml.asgi_app(meta_app, path="/")
class Custseg:
    def __init__(self) -> None:
        self._threads = budget.limit_worker()
        self._lock = threading.Lock()
        self.models: ModelSet = load_champions()
        self.coalesce = Coalescer(score_rows, MAX_BATCH)  # /predict requests that wait together
        meta_app.state.service = self
        if WATCH_SECONDS > 0:
            threading.Thread(target=self._watch, name="champion-watch", daemon=True).start()

    def _swap(self) -> ModelSet:
        """Load the current champions and swap them in with one reference assignment:
        requests in flight finish with the set they started with."""
        with self._lock:
            fresh = load_champions()
            self.models = fresh
        logger.info("serving champions %s", fresh.versions)
        return fresh

    def _watch(self) -> None:
        while True:
            time.sleep(WATCH_SECONDS)
            try:
                if champion_versions() != self.models.versions:
                    self._swap()
            except Exception as exc:  # registry unreachable or a bad model: keep the old set
                logger.warning("champion watch: %s; still serving %s", exc, self.models.versions)

    @bentoml.api(route="/predict")
    async def predict(self, request: PredictRequest, /, ctx: bentoml.Context) -> Answer:
        """Feature rows of one or more customers -> segment per scheme, probabilities, value
        (CLV, expected orders, P(alive), next order and value tier), next-best products (from
        each row's optional recent_products). The rows carry no cutoff: they describe the
        customers today (UTC), the day the next order's date counts from. Validated here,
        scored with the requests waiting at the time (`serving.coalesce`); encoded by
        `answer`."""
        models = self.models  # one model set for the whole request
        try:
            rows = request_rows(request, models, MAX_BATCH)
        except BadRequest as exc:
            raise bentoml.exceptions.BadInput(str(exc)) from None
        customers = await self.coalesce(models, today(), rows)
        return answer({"customers": customers, "versions": models.versions})

    @bentoml.api(route="/score_transactions")
    def score_transactions(
        self, request: ScoreRequest, /, ctx: bentoml.Context
    ) -> Answer:  # encoded by `answer`
        """Raw recent transactions (+ optional customer attributes) and an as-of date -> the
        /predict answer, with features computed by the same definitions as offline."""
        models = self.models
        if models.online is None:
            ctx.response.status_code = 409
            raise Conflict(models.online_problem or "raw transactions are not supported")
        try:
            cutoff = as_of_date(request.as_of)
            tx = transactions_frame(request.transactions, MAX_TRANSACTIONS, cutoff, MAX_BATCH)
            cust = customers_frame(request.customers, MAX_BATCH, set(tx["customer_id"]))
        except BadRequest as exc:
            raise bentoml.exceptions.BadInput(str(exc)) from None
        features = models.online(tx, cutoff, cust)
        unknown = sorted(set(tx["customer_id"]) - set(features["customer_id"]))
        if unknown:
            shown = ", ".join(unknown[:5])
            raise bentoml.exceptions.BadInput(
                f"transactions: customer(s) {shown} have no order on or before {cutoff}"
            )
        return answer(
            {
                "as_of": str(cutoff),
                "customers": models.predict(features, cutoff, products_of(tx, features)),
                "versions": models.versions,
            }
        )

    @bentoml.api(route="/reload")
    def reload(self, ctx: bentoml.Context) -> dict:
        """Load the current champions now in the worker that takes this call; the other
        workers follow at their next registry watch (CUSTSEG_WATCH_SECONDS)."""
        return {"versions": self._swap().versions}


# outermost of the service's own middleware: before BentoML's request parsing and the API
Custseg.add_asgi_middleware(RequestGuard, config=GUARD)
# inside the guard (whose refusals have the shape already): BentoML's own errors reshaped
Custseg.add_asgi_middleware(OneErrorShape)


def score_rows(models: ModelSet, as_of, rows: list[dict]) -> list[dict]:
    """The answers of valid /predict rows (of one or more requests), one per row."""
    frame, products = rows_frame(rows, models)
    return models.predict(frame, as_of, products)


def answer(payload: dict) -> Response:
    """The JSON response, encoded in one call: BentoML's generic output path (a pydantic model
    dump, then the stdlib encoder) took most of a 500-customer request."""
    return Response(pydantic_core.to_json(payload), media_type="application/json")


class Conflict(bentoml.exceptions.BentoMLException):
    error_code = bentoml.exceptions.HTTPStatus.CONFLICT
