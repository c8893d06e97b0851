"""The runner's worker pool: pulls chats from the work queue while it has free slots and
runs each as its own task.

Runners share one durable pull consumer, so each queued chat goes to exactly one of
them. A runner acks a chat only when its outcome is persisted (ended, or paused in
requires_action); while it runs, in-progress acks keep JetStream from handing it to another
runner. If the runner dies, the chat is redelivered after the ack wait and the next runner
ends it as failed (see ChatRun).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.client import JetStreamContext

from cozeplus.chat_protocol import ChatRequest
from services.runner.chat_run import ChatRun, RunnerDeps
from services.runner.metrics import CHATS_RUNNING, CHATS_TOTAL

log = logging.getLogger("cozeplus.runner")


class RunnerPool:
    """Pulls chats while it has free slots and runs each as its own task."""

    def __init__(self, deps: RunnerDeps, concurrency: int) -> None:
        self.deps = deps
        self.concurrency = concurrency
        self.running: dict[int, ChatRun] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._slot_freed = asyncio.Event()

    async def consume(
        self, subscription: JetStreamContext.PullSubscription, stop: asyncio.Event
    ) -> None:
        """Fetch while not stopping. Stopping is a flag checked between fetches, not a task
        cancellation: on Python 3.11 nats-py's fetch (asyncio.wait_for) can swallow one."""
        while not stop.is_set():
            free = self.concurrency - len(self._tasks)
            if free <= 0:
                self._slot_freed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._slot_freed.wait(), timeout=1.0)
                continue
            try:
                messages = await subscription.fetch(min(free, 16), timeout=1.0)
            except (NatsTimeoutError, TimeoutError):
                # An empty fetch: nats-py raises its own TimeoutError or, from inside its
                # wait_for, the plain asyncio one. Nothing was queued; fetch again at once.
                continue
            except Exception:
                log.exception("fetching chats failed; retrying")
                await asyncio.sleep(1.0)
                continue
            if stop.is_set():
                # Fetched as we stop: hand them straight back to the other runners.
                for msg in messages:
                    with contextlib.suppress(Exception):
                        await msg.nak()
                return
            for msg in messages:
                task = asyncio.create_task(self._handle(msg))
                self._tasks.add(task)
                task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._slot_freed.set()

    async def _handle(self, msg: Msg) -> None:
        try:
            request = ChatRequest.decode(msg.data)
        except ValueError:
            log.error("dropping a malformed chat request: %r", msg.data[:200])
            await msg.term()
            return
        run = ChatRun(self.deps, request, keepalive=msg.in_progress)
        self.running[request.chat_id] = run
        CHATS_RUNNING.inc()
        try:
            await run.execute()
            await msg.ack()
            CHATS_TOTAL.labels(outcome="ended").inc()
        except asyncio.CancelledError:
            raise
        except Exception:
            # Left unacked, it is redelivered and the next runner ends it properly.
            log.exception("chat %d crashed its run", request.chat_id)
            CHATS_TOTAL.labels(outcome="crashed").inc()
            with contextlib.suppress(Exception):
                await msg.nak(delay=1.0)
        finally:
            CHATS_RUNNING.dec()
            self.running.pop(request.chat_id, None)

    def cancel(self, chat_id: int) -> bool:
        run = self.running.get(chat_id)
        if run is None:
            return False
        run.cancel()
        return True

    async def drain(self, grace_s: float) -> None:
        """Let running chats finish; the rest are redelivered to other runners."""
        if not self._tasks:
            return
        _, pending = await asyncio.wait(set(self._tasks), timeout=grace_s)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=5)
