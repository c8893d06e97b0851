"""A pool that pulls work from a durable JetStream consumer while it has free slots and
handles each message as its own task: the chat runners and the knowledge workers.

How it fetches. nats-py's `fetch(n)` with nothing queued sends a waiting pull request for n
messages; when fewer arrive, the request stays open on the server until it expires, and the
next message goes to it, into the same inbox, while the next `fetch(n)` waits for the rest
of its batch until that stale request's timeout (measured: a lone message waited up to
750 ms, one in 12). So the pool waits for work with `fetch(1)`, which one message satisfies,
and takes bigger batches only while the queue has a backlog (each message says how many are
pending after it), asking for no more than that backlog, with a short timeout in case other
consumers took them first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.client import JetStreamContext

# A batch fetch's timeout: it asks only for what is pending, so it rarely waits at all; if
# other consumers took those first, this bounds how long a request for them lingers.
BACKLOG_FETCH_S = 0.05
# How long a fetch for one message waits before it is asked again.
IDLE_FETCH_S = 1.0


def pending_after(msg: Msg) -> int:
    """Messages the consumer had pending when this one was delivered (0 when unknown)."""
    try:
        return int(msg.metadata.num_pending or 0)
    except Exception:
        return 0


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
        backlog = 0
        while not stop.is_set():
            free = self.concurrency - len(self._tasks)
            if free > 0 and not self._may_take():
                free = 0
            if free <= 0:
                self._slot_freed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._slot_freed.wait(), timeout=1.0)
                continue
            batch = min(free, self.fetch_batch, backlog)
            try:
                if batch > 1:
                    messages = await subscription.fetch(batch, timeout=BACKLOG_FETCH_S)
                else:
                    messages = await subscription.fetch(1, timeout=IDLE_FETCH_S)
            except (NatsTimeoutError, TimeoutError):
                # An empty fetch: nats-py raises its own TimeoutError or, from inside its
                # wait_for, the plain asyncio one. Nothing was queued; fetch again at once.
                backlog = 0
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
            backlog = pending_after(messages[-1]) if messages else 0
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
