"""The runner pool's fetch loop, in process."""

from __future__ import annotations

import asyncio
import logging

import pytest

from cozeplus.work_queue import BACKLOG_FETCH_S, IDLE_FETCH_S
from services.runner.pool import RunnerPool


class EmptyQueue:
    """A pull subscription with nothing queued, failing the ways nats-py does."""

    def __init__(self, stop: asyncio.Event, error: type[Exception], fetches: int) -> None:
        self.stop, self.error, self.left, self.calls = stop, error, fetches, 0
        self.batches: list[int] = []

    async def fetch(self, batch: int, timeout: float) -> list[object]:  # noqa: ASYNC109
        self.calls += 1
        self.batches.append(batch)
        self.left -= 1
        if self.left <= 0:
            self.stop.set()
        raise self.error()


@pytest.mark.parametrize("error", [asyncio.TimeoutError, TimeoutError])
async def test_an_empty_fetch_is_no_error(
    error: type[Exception], caplog: pytest.LogCaptureFixture
) -> None:
    stop = asyncio.Event()
    queue = EmptyQueue(stop, error, fetches=3)
    pool = RunnerPool(deps=None, concurrency=4)  # type: ignore[arg-type]

    with caplog.at_level(logging.INFO, logger="cozeplus.runner"):
        await pool.consume(queue, stop)  # type: ignore[arg-type]

    assert queue.calls == 3
    # Not taken for a failure (a traceback, then a 1 s back-off before the next fetch).
    assert not [r for r in caplog.records if "fetching work failed" in r.getMessage()]


async def test_no_chats_are_taken_while_memory_is_over_the_limit() -> None:
    stop = asyncio.Event()
    queue = EmptyQueue(stop, TimeoutError, fetches=1)
    rss = {"mib": 900.0}
    pool = RunnerPool(
        deps=None,  # type: ignore[arg-type]
        concurrency=1000,
        memory_limit_mib=512,
        fetch_batch=8,
        rss_mib=lambda: rss["mib"],
    )
    running = asyncio.Event()
    chat = asyncio.create_task(running.wait())
    pool._tasks.add(chat)
    chat.add_done_callback(pool._task_done)

    consumer = asyncio.create_task(pool.consume(queue, stop))  # type: ignore[arg-type]
    for _ in range(20):
        await asyncio.sleep(0)
    assert queue.calls == 0  # over the limit with a chat running: the queue is left alone

    rss["mib"] = 300.0
    running.set()  # the running chat ends, which frees memory and wakes the loop
    await asyncio.wait_for(consumer, timeout=10)
    assert queue.calls == 1
    assert queue.batches == [1]  # nothing known to be pending: wait for one


async def test_over_the_limit_with_nothing_running_still_takes_work() -> None:
    stop = asyncio.Event()
    queue = EmptyQueue(stop, TimeoutError, fetches=1)
    pool = RunnerPool(
        deps=None,  # type: ignore[arg-type]
        concurrency=4,
        memory_limit_mib=1,
        rss_mib=lambda: 900.0,
    )
    await asyncio.wait_for(pool.consume(queue, stop), timeout=10)  # type: ignore[arg-type]
    # Nothing to wait for would mean waiting forever: it fetches.
    assert queue.batches == [1]


class Delivered:
    """A JetStream message as far as the pool reads it: how many were pending after it."""

    def __init__(self, pending: int) -> None:
        self.metadata = type("Metadata", (), {"num_pending": pending})()


class Backlog:
    """A queue that hands out `pending` messages, as many as asked for, then stops the pool."""

    def __init__(self, stop: asyncio.Event, pending: int) -> None:
        self.stop, self.pending = stop, pending
        self.fetches: list[tuple[int, float]] = []

    async def fetch(self, batch: int, timeout: float) -> list[Delivered]:  # noqa: ASYNC109
        self.fetches.append((batch, timeout))
        if not self.pending:
            self.stop.set()
            raise TimeoutError
        taken = min(batch, self.pending)
        self.pending -= taken
        return [Delivered(self.pending + taken - i - 1) for i in range(taken)]


async def test_batches_are_taken_only_from_a_backlog_and_only_as_big_as_it() -> None:
    # A waiting request for more than one message would outlive a short answer and hold
    # the next message back (work_queue.py): waiting is for one, batches are for a backlog.
    stop = asyncio.Event()
    queue = Backlog(stop, pending=21)
    pool = RunnerPool(deps=None, concurrency=100, fetch_batch=16)  # type: ignore[arg-type]

    async def handle(msg: object) -> None:
        await asyncio.Event().wait()  # every chat keeps running

    pool._handle = handle  # type: ignore[method-assign]
    await asyncio.wait_for(pool.consume(queue, stop), timeout=10)  # type: ignore[arg-type]
    for task in list(pool._tasks):
        task.cancel()

    assert [batch for batch, _ in queue.fetches] == [1, 16, 4, 1]
    idle, backlog = IDLE_FETCH_S, BACKLOG_FETCH_S
    assert [timeout for _, timeout in queue.fetches] == [idle, backlog, backlog, idle]
