"""The runner's registry calls, carried through transient failures.

A registry that restarts or a call whose deadline passes is not the chat's fault: such calls
(UNAVAILABLE, DEADLINE_EXCEEDED) are retried with bounded backoff inside the run, while the
run's work-queue message keeps getting in-progress acks, instead of crashing the run into a
NAK that spends one of the consumer's few deliveries. The registry makes every run call safe
to retry (an identical call that already landed returns what it stored)."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import grpc

log = logging.getLogger("cozeplus.runner.registry")

T = TypeVar("T")
TRANSIENT = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})
# Run until done: FinishRun is retried until it lands or the run is ended elsewhere.
UNBOUNDED = math.inf


def is_transient(err: BaseException) -> bool:
    return isinstance(err, grpc.aio.AioRpcError) and err.code() in TRANSIENT


@dataclass(frozen=True)
class RegistryRetry:
    """`call(what, attempt)` runs `attempt(timeout_s)` until it does not fail transiently,
    backing off from `first_backoff_s` doubling to `max_backoff_s`, for at most `budget_s`
    (then the last error is raised)."""

    budget_s: float = 30.0
    call_timeout_s: float = 10.0
    first_backoff_s: float = 0.1
    max_backoff_s: float = 2.0

    async def call(
        self,
        what: str,
        attempt: Callable[[float], Awaitable[T]],
        *,
        budget_s: float | None = None,
        on_retry: Callable[[], None] | None = None,
    ) -> T:
        budget = self.budget_s if budget_s is None else budget_s
        deadline = time.monotonic() + budget
        backoff = self.first_backoff_s
        tries = 0
        while True:
            try:
                return await attempt(self.call_timeout_s)
            except grpc.aio.AioRpcError as err:
                if not is_transient(err) or time.monotonic() + backoff > deadline:
                    raise
                tries += 1
                if tries == 1 or tries % 10 == 0:
                    log.warning("%s: registry %s; retrying", what, err.code().name)
            if on_retry is not None:
                on_retry()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.max_backoff_s)


@dataclass(frozen=True)
class RecordingWait:
    """How a runner waits for a chat queued while the registry was recording it
    (ChatRequest.recorded false): StartRun's not-found is asked again, backing off from
    `first_backoff_s` doubling to `max_backoff_s`, for `wait_s`. That is longer than an edge
    waits for the registry (10 s), so a chat still unrecorded then was refused or lost."""

    wait_s: float = 15.0
    first_backoff_s: float = 0.002
    max_backoff_s: float = 0.1
