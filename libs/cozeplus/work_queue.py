"""A pool that pulls work from a durable JetStream consumer while it has free slots and
handles each message as its own task: the chat runners and the knowledge workers."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.client import JetStreamContext


class PullPool:
    """Subclasses say how one message is handled (`_handle`) and may refuse new work for a
    while (`_may_take`)."""

    def __init__(self, concurrency: int, *, fetch_batch: int, log: logging.Logger) -> None:
        self.concurrency = concurrency
        self.fetch_batch = fetch_batch
        self._log = log
        self._tasks: set[asyncio.Task[None]] = set()
        self._slot_freed = asyncio.Event()

    async def consume(
        self, subscription: JetStreamContext.PullSubscription, stop: asyncio.Event
    ) -> None:
        """Fetch while not stopping. Stopping is a flag checked between fetches, not a task
        cancellation: on Python 3.11 nats-py's fetch (asyncio.wait_for) can swallow one."""
        while not stop.is_set():
            free = self.concurrency - len(self._tasks)
            if free > 0 and not self._may_take():
                free = 0
            if free <= 0:
                self._slot_freed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._slot_freed.wait(), timeout=1.0)
                continue
            try:
                messages = await subscription.fetch(min(free, self.fetch_batch), timeout=1.0)
            except (NatsTimeoutError, TimeoutError):
                # An empty fetch: nats-py raises its own TimeoutError or, from inside its
                # wait_for, the plain asyncio one. Nothing was queued; fetch again at once.
                continue
            except Exception:
                self._log.exception("fetching work failed; retrying")
                await asyncio.sleep(1.0)
                continue
            if stop.is_set():
                # Fetched as we stop: hand them straight back to the other members.
                for msg in messages:
                    with contextlib.suppress(Exception):
                        await msg.nak()
                return
            for msg in messages:
                task = asyncio.create_task(self._handle(msg))
                self._tasks.add(task)
                task.add_done_callback(self._task_done)

    def _may_take(self) -> bool:
        return True

    async def _handle(self, msg: Msg) -> None:
        raise NotImplementedError

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._slot_freed.set()
