"""Requests that wait together are scored together.

A worker scores one batch at a time. Scoring one customer costs about as much as scoring
eight (the fixed cost of a dozen models' calls dominates: measured 4.2 ms vs 4.4 ms), so
while a batch is being scored, the requests that arrive queue up, and the next batch takes
all of them (same model set and as-of day, up to `max_rows` customers), then splits the
answers back per request. A request that finds the worker idle is scored at once: no batch
window, so a lone client waits for nothing.

A small batch is scored in a thread, so the worker keeps reading and validating the requests
that will make the next one. A batch of `INLINE_ROWS` customers or more is scored on the event
loop itself: its fixed cost is already shared, and two busy Python threads in one process fight
for the GIL (a thread that lets it go in a numpy or LightGBM call waits up to the 5 ms switch
interval to get it back), which slowed 500-customer requests; meanwhile new requests wait in
the socket and are read right after.

BentoML's own adaptive batching (`batchable=True`) merges request bodies before our
validation and answers with the batch's shape; here each request is validated alone (its
mistakes are its own 400) and keeps its answer shape. A batch that fails is scored again
request by request, so a request that breaks a model fails alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

import anyio

INLINE_ROWS = 256  # customers from which a batch is scored on the loop, not in a thread


@dataclass
class Job:
    models: object  # the ModelSet the request started with
    as_of: date
    rows: list[dict]  # valid rows (`serving.schemas.valid_rows`)
    done: asyncio.Future = field(repr=False)


class Coalescer:
    """`await coalescer(models, as_of, rows)` -> the answers of `rows`, scored with the other
    requests waiting at the time by `score(models, as_of, rows) -> answers` (one per row, in
    order), which runs in a thread so the worker keeps reading requests meanwhile."""

    def __init__(self, score: Callable[[object, date, list[dict]], list], max_rows: int):
        self.score = score
        self.max_rows = max_rows
        self.waiting: list[Job] = []
        self.busy = False
        self.batches: list[int] = []  # requests per batch, latest last (a window, for tests)

    async def __call__(self, models: object, as_of: date, rows: list[dict]) -> list:
        job = Job(models, as_of, rows, asyncio.get_running_loop().create_future())
        self.waiting.append(job)
        if not self.busy:
            self.busy = True
            self._drainer = asyncio.create_task(self._drain())  # a reference keeps it alive
        return await job.done

    def _take(self) -> list[Job]:
        """The first waiting job and those after it with its model set and day, up to
        max_rows customers (the first always: a request is within the limit by itself)."""
        self.waiting = [j for j in self.waiting if not j.done.done()]  # clients gone: skip
        if not self.waiting:
            return []
        first, rows, batch, rest = self.waiting[0], 0, [], []
        for job in self.waiting:
            same = job.models is first.models and job.as_of == first.as_of
            if same and (not batch or rows + len(job.rows) <= self.max_rows):
                batch.append(job)
                rows += len(job.rows)
            else:
                rest.append(job)
        self.waiting = rest
        return batch

    async def _drain(self) -> None:
        batch: list[Job] = []
        try:
            while self.waiting:
                batch = self._take()
                if not batch:
                    break
                self.batches = [*self.batches[-99:], len(batch)]
                if sum(len(job.rows) for job in batch) < INLINE_ROWS:
                    results = await anyio.to_thread.run_sync(self._score_batch, batch)
                else:  # on the loop: see the module docstring
                    results = self._score_batch(batch)
                    await asyncio.sleep(0)  # the requests that arrived meanwhile get read
                for job, result in zip(batch, results, strict=True):
                    _settle(job, result)
                batch = []
        except BaseException as exc:  # never leave a request waiting forever
            for job in [*batch, *self.waiting]:
                _settle(job, exc)
            self.waiting = []
            raise
        finally:
            self.busy = False

    def _score_batch(self, batch: list[Job]) -> list:
        """Per job its answers or the exception it raised."""
        if len(batch) > 1:
            try:
                rows = [r for job in batch for r in job.rows]
                answers = self.score(batch[0].models, batch[0].as_of, rows)
            except Exception:  # someone's rows broke it: find whose, alone
                return [self._score_alone(j) for j in batch]
            out, start = [], 0
            for job in batch:
                out.append(answers[start : start + len(job.rows)])
                start += len(job.rows)
            return out
        return [self._score_alone(batch[0])]

    def _score_alone(self, job: Job) -> object:
        try:
            return self.score(job.models, job.as_of, job.rows)
        except Exception as exc:
            return exc


def _settle(job: Job, result: object) -> None:
    if job.done.done():  # the client went away (request cancelled)
        return
    if isinstance(result, asyncio.CancelledError):  # the worker is stopping
        job.done.cancel()
    elif isinstance(result, BaseException):
        job.done.set_exception(result)
    else:
        job.done.set_result(result)
