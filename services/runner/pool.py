"""The runner's worker pool: pulls chats from the work queue while it has free slots and
runs each as its own task.

Runners share one durable pull consumer, so each queued chat goes to exactly one of
them. A runner acks a chat only when its outcome is persisted (ended, or paused in
requires_action); while it runs, in-progress acks keep JetStream from handing it to another
runner. If the runner dies, the chat is redelivered after the ack wait and the next runner
ends it as failed (see ChatRun). A registry that is away is not a crash: ChatRun retries its
calls (services/runner/registry_calls.py), so deliveries are spent only on real failures.

Shutdown (`drain`): chats not started yet are handed back at once (NAK, no delay); running
ones get the grace; those still running then are abandoned (logged, failed with a clear
last_error, their streams told) and, should even that not land in time, NAKed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable

from nats.aio.msg import Msg

from cozeplus.chat_protocol import ChatRequest
from cozeplus.work_queue import PullPool
from services.runner.chat_run import ChatRun, HandedBack, RunnerDeps
from services.runner.metrics import CHATS_RUNNING, CHATS_TOTAL

log = logging.getLogger("cozeplus.runner")

# After the shutdown grace, how long abandoned chats get to record that they failed.
ABANDON_S = 10.0

_PAGE_MIB = os.sysconf("SC_PAGE_SIZE") / (1024 * 1024) if hasattr(os, "sysconf") else 0.0


def resident_mib() -> float | None:
    """This process's resident memory in MiB (Linux /proc), None where unknown."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE_MIB
    except (OSError, ValueError, IndexError):
        return None


class RunnerPool(PullPool):
    """Pulls chats while it has free slots and runs each as its own task."""

    def __init__(
        self,
        deps: RunnerDeps,
        concurrency: int,
        *,
        memory_limit_mib: int = 0,
        fetch_batch: int = 16,
        rss_mib: Callable[[], float | None] = lambda: resident_mib(),
    ) -> None:
        super().__init__(concurrency, fetch_batch=fetch_batch, log=log)
        self.deps = deps
        self.memory_limit_mib = memory_limit_mib
        self._rss_mib = rss_mib
        self.running: dict[int, ChatRun] = {}
        self._stopping = False

    def _may_take(self) -> bool:
        if not self.memory_limit_mib or not self._tasks:
            # With nothing running there is nothing to wait for: take work anyway.
            return True
        rss = self._rss_mib()
        return rss is None or rss <= self.memory_limit_mib

    async def _handle(self, msg: Msg) -> None:
        try:
            request = ChatRequest.decode(msg.data)
        except ValueError:
            log.error("dropping a malformed chat request: %r", msg.data[:200])
            await msg.term()
            return
        run = ChatRun(
            self.deps, request, keepalive=msg.in_progress, first_delivery=_first_delivery(msg)
        )
        if self._stopping:
            run.hand_back()
        self.running[request.chat_id] = run
        CHATS_RUNNING.inc()
        try:
            await run.execute()
            CHATS_TOTAL.labels(outcome="ended").inc()
            try:
                await msg.ack()
            except Exception as err:
                # NATS away: the outcome is stored, so a redelivery finds the run ended.
                log.warning("chat %d: ended, but its ack failed (%r)", request.chat_id, err)
        except HandedBack:
            log.info("chat %d: not started; handed back as the runner stops", request.chat_id)
            CHATS_TOTAL.labels(outcome="handed_back").inc()
            with contextlib.suppress(Exception):
                await msg.nak()
        except asyncio.CancelledError:
            # Abandoned and still not ended: another runner gets it at once.
            log.warning(
                "chat %d: could not be ended as the runner stops; handed back", request.chat_id
            )
            with contextlib.suppress(Exception):
                await msg.nak()
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

    def held(self) -> list[int]:
        """The runs this runner holds in_progress: what its registry heartbeat names."""
        return [chat_id for chat_id, run in self.running.items() if run.holding]

    def cancel(self, chat_id: int) -> bool:
        run = self.running.get(chat_id)
        if run is None:
            return False
        run.cancel()
        return True

    async def drain(self, grace_s: float, abandon_s: float = ABANDON_S) -> None:
        """Hand back what has not started, let running chats finish within `grace_s`, then
        abandon the rest (failed, streams told) and NAK whatever still has not ended."""
        self._stopping = True
        for run in self.running.values():
            run.hand_back()
        if not self._tasks:
            return
        _, pending = await asyncio.wait(set(self._tasks), timeout=grace_s)
        if not pending:
            return
        for chat_id, run in list(self.running.items()):
            log.warning(
                "chat %d: still running after the %gs shutdown grace; failing it", chat_id, grace_s
            )
            run.abandon()
        _, pending = await asyncio.wait(pending, timeout=abandon_s)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=5)


def _first_delivery(msg: Msg) -> bool:
    try:
        return msg.metadata.num_delivered == 1
    except Exception:
        return False  # not a JetStream delivery: take the careful path
