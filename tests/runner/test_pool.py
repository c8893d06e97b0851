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

    async def fetch(self, batch: int, timeout: float) -> list[object]:  # noqa: ASYNC109
        self.calls += 1
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
    assert not [r for r in caplog.records if "fetching chats failed" in r.getMessage()]
