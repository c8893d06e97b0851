"""The runner's side of run liveness: it tells the registry, once per interval and in one
call, which runs it holds (RunLiveness.Heartbeat), so the registry's run sweeper leaves them
alone; and it stops the runs the registry reports ended elsewhere (canceled while nobody
could reach this runner, or swept as lost). The runner's entry module runs it over the
pool's held runs (docs/operations.md)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import grpc

from cozeplus.rpc.v1 import liveness_pb2 as lpb
from cozeplus.vocabulary import ChatStatus

if TYPE_CHECKING:
    from cozeplus.rpc.v1.liveness_pb2_grpc import RunLivenessAsyncStub

log = logging.getLogger(__name__)

STOPPING_STATUSES = frozenset(("", ChatStatus.COMPLETED, ChatStatus.FAILED, ChatStatus.CANCELED))


class RunHeartbeats:
    def __init__(
        self,
        liveness: RunLivenessAsyncStub,
        running: Callable[[], Iterable[int]],
        stop_run: Callable[[int], object],
        interval_s: float = 5.0,
        call_timeout_s: float = 5.0,
    ) -> None:
        self._liveness = liveness
        self._running = running
        self._stop_run = stop_run
        self.interval_s = interval_s
        self._call_timeout_s = call_timeout_s

    async def beat(self) -> list[int]:
        """One heartbeat; returns the runs it stopped. A failed call is only logged: the
        registry grants a fresh window when it comes back."""
        chat_ids = sorted(self._running())
        if not chat_ids:
            return []
        try:
            reply = await self._liveness.Heartbeat(
                lpb.HeartbeatRequest(chat_ids=chat_ids), timeout=self._call_timeout_s
            )
        except grpc.aio.AioRpcError as err:
            log.warning("heartbeat for %d runs failed: %s", len(chat_ids), err.code().name)
            return []
        stopped = []
        for state in reply.runs:
            # requires_action or created: this runner paused it (or it was resumed) while
            # the call was under way; only an ended or vanished run is stopped.
            if state.status in STOPPING_STATUSES:
                log.info(
                    "chat %d: %s elsewhere; stopping it", state.chat_id, state.status or "gone"
                )
                self._stop_run(state.chat_id)
                stopped.append(state.chat_id)
        return stopped

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.beat()
            except Exception:
                log.exception("heartbeat failed; beating on")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval_s)
