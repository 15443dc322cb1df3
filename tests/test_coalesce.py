"""Requests that wait together are scored together, each keeps its own answers and errors
(serving.coalesce; the service over HTTP: test_serving_http)."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import date

import pytest

from serving.coalesce import Coalescer

DAY = date(2026, 11, 30)


class Scorer:
    """Answers each row with (model set, day, row); records every call; slow enough that
    requests arrive while a batch runs; a row "boom" breaks the batch it is in."""

    def __init__(self, seconds: float = 0.05):
        self.calls: list[list] = []
        self.seconds = seconds
        self.lock = threading.Lock()

    def __call__(self, models, as_of, rows):
        with self.lock:
            self.calls.append(list(rows))
        time.sleep(self.seconds)
        if "boom" in rows:
            raise ValueError("boom")
        return [(models, as_of, r) for r in rows]


def gather(coalescer, *jobs):
    """Send the first job, then (while it is being scored) the others at once."""

    async def go():
        first = asyncio.create_task(coalescer(*jobs[0]))
        await asyncio.sleep(0.01)
        rest = await asyncio.gather(*(coalescer(*j) for j in jobs[1:]), return_exceptions=True)
        return [await first, *rest]

    return asyncio.run(go())


def test_a_lone_request_is_scored_at_once_by_itself():
    scorer = Scorer(seconds=0)
    out = gather(Coalescer(scorer, 100), ("m", DAY, ["a", "b"]))
    assert out == [[("m", DAY, "a"), ("m", DAY, "b")]]
    assert scorer.calls == [["a", "b"]]


def test_requests_arriving_during_a_batch_are_scored_as_the_next_one():
    scorer = Scorer()
    coalescer = Coalescer(scorer, 100)
    jobs = [("m", DAY, [f"r{i}a", f"r{i}b"]) for i in range(6)]
    out = gather(coalescer, *jobs)
    assert out == [[("m", DAY, r) for r in rows] for _, _, rows in jobs]  # each its own, in order
    assert scorer.calls[0] == ["r0a", "r0b"]  # the first found the worker idle
    assert scorer.calls[1] == [r for _, _, rows in jobs[1:] for r in rows]  # the rest together
    assert coalescer.batches == [1, 5] and not coalescer.busy


def test_a_request_that_breaks_the_batch_fails_alone():
    scorer = Scorer()
    jobs = [("m", DAY, ["first"]), ("m", DAY, ["x"]), ("m", DAY, ["boom"]), ("m", DAY, ["y"])]
    out = gather(Coalescer(scorer, 100), *jobs)
    assert out[0] == [("m", DAY, "first")]
    assert out[1] == [("m", DAY, "x")] and out[3] == [("m", DAY, "y")]
    assert isinstance(out[2], ValueError)
    assert scorer.calls[1] == ["x", "boom", "y"]  # tried together, then each alone
    assert scorer.calls[2:] == [["x"], ["boom"], ["y"]]


def test_model_sets_and_days_are_never_mixed_and_the_row_cap_holds():
    scorer = Scorer()
    other = date(2026, 12, 1)
    jobs = [
        ("old", DAY, ["first"]),
        ("old", DAY, ["a"]),
        ("new", DAY, ["b"]),
        ("old", other, ["c"]),
        ("old", DAY, ["d", "e"]),
        ("old", DAY, ["f", "g"]),  # over the cap of 3 with a, d, e: next batch
    ]
    out = gather(Coalescer(scorer, 3), *jobs)
    assert [o[0][:2] for o in out] == [j[:2] for j in jobs]  # each answered by its own set
    assert scorer.calls[1:] == [["a", "d", "e"], ["b"], ["c"], ["f", "g"]]


def test_a_request_over_the_cap_by_itself_is_still_scored():
    scorer = Scorer(seconds=0)
    out = gather(Coalescer(scorer, 2), ("m", DAY, ["a", "b", "c"]))
    assert len(out[0]) == 3


def test_a_cancelled_request_does_not_stop_the_others():
    scorer = Scorer()
    coalescer = Coalescer(scorer, 100)

    async def go():
        first = asyncio.create_task(coalescer("m", DAY, ["first"]))
        await asyncio.sleep(0.01)
        gone = asyncio.create_task(coalescer("m", DAY, ["gone"]))
        kept = asyncio.create_task(coalescer("m", DAY, ["kept"]))
        await asyncio.sleep(0)
        gone.cancel()
        with pytest.raises(asyncio.CancelledError):
            await gone
        return await first, await kept

    first, kept = asyncio.run(go())
    assert first == [("m", DAY, "first")] and kept == [("m", DAY, "kept")]
    assert scorer.calls == [["first"], ["kept"]]  # the request whose client left: not scored


def test_small_batches_are_scored_in_a_thread_large_ones_on_the_loop():
    from serving.coalesce import INLINE_ROWS

    threads = []

    def score(models, as_of, rows):
        threads.append(threading.get_ident())
        return rows

    coalescer = Coalescer(score, 10 * INLINE_ROWS)
    small, large = ["a"], [str(i) for i in range(INLINE_ROWS)]

    async def go():
        loop = threading.get_ident()
        assert await coalescer("m", DAY, small) == small
        assert await coalescer("m", DAY, large) == large
        return loop

    loop = asyncio.run(go())
    assert threads[0] != loop and threads[1] == loop
