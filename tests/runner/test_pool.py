"""The runner pool's fetch loop, in process."""

from __future__ import annotations

import asyncio
import logging

import pytest

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
    assert queue.batches == [8]


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
    # Nothing to wait for would mean waiting forever; the batch is capped by free slots.
    assert queue.batches == [4]
