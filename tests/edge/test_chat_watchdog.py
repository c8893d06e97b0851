"""The chat session's watchdogs on a fake clock: no sleeping, no timing assertions. The
runner-lost alarm must come exactly `runner_lost_s` after the runner's last word, not when
the queue timer happens to fire."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any, cast

from cozeplus.chat_protocol import (
    CHAT_CREATED,
    CHAT_FAILED,
    EVENT_HEADER,
    HEARTBEAT_EVENT,
    MESSAGE_DELTA,
)
from cozeplus.rpc.v1 import conversations_pb2 as cpb
from services.edge.core.session import RUNNER_LOST_CODE, ChatEvent, ChatSession
from tests.edge.test_chat_session import FakeConversations

QUEUE_TIMEOUT_S = 30.0
RUNNER_LOST_S = 15.0


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self._timers: list[tuple[float, int, FakeTimer]] = []
        self._order = itertools.count()

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, callback: Callable[[], object]) -> FakeTimer:
        timer = FakeTimer(callback)
        heapq.heappush(self._timers, (when, next(self._order), timer))
        return timer

    def advance(self, to: float) -> None:
        self.now = to
        while self._timers and self._timers[0][0] <= to:
            _, _, timer = heapq.heappop(self._timers)
            if not timer.cancelled:
                timer.callback()

    @property
    def pending(self) -> list[float]:
        return sorted(when for when, _, timer in self._timers if not timer.cancelled)


class FakeTimer:
    def __init__(self, callback: Callable[[], object]) -> None:
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeSubscription:
    async def unsubscribe(self) -> None:
        return None


class FakeBus:
    def __init__(self) -> None:
        self.on_event: Any = None

    async def follow(self, chat_id: int, on_event: Any) -> FakeSubscription:
        self.on_event = on_event
        return FakeSubscription()

    async def say(self, name: str, data: bytes = b"{}") -> None:
        await self.on_event(SimpleNamespace(headers={EVENT_HEADER: name}, data=data))


async def started_session(clock: FakeClock, bus: FakeBus) -> ChatSession:
    session = ChatSession(
        bus=cast(Any, bus),
        conversations=cast(Any, FakeConversations()),
        owner_id=1,
        chat_id=42,
        queue_timeout_s=QUEUE_TIMEOUT_S,
        runner_lost_s=RUNNER_LOST_S,
        clock=clock,
    )
    await session.open()
    session.start(cpb.ChatRun(id=42, conversation_id=7, bot_id=8, status="created"))
    return session


async def drain(received: list[ChatEvent], session: ChatSession) -> asyncio.Task[None]:
    async def read() -> None:
        async for event in session.events():
            received.append(event)

    return asyncio.create_task(read())


async def settle() -> None:
    """Lets the reader task take whatever is queued (no time passes on the fake clock)."""
    for _ in range(20):
        await asyncio.sleep(0)


async def test_runner_lost_fires_runner_lost_s_after_the_last_word() -> None:
    clock, bus = FakeClock(), FakeBus()
    session = await started_session(clock, bus)
    received: list[ChatEvent] = []
    reader = await drain(received, session)

    clock.advance(1.0)
    await bus.say(CHAT_CREATED)
    # The queue deadline (30 s) is gone; the runner-lost one is armed from the first word.
    assert clock.pending == [1.0 + RUNNER_LOST_S]
    clock.advance(5.0)
    await bus.say(MESSAGE_DELTA, b'{"content":"a"}')
    clock.advance(9.0)
    await bus.say(HEARTBEAT_EVENT)

    clock.advance(9.0 + RUNNER_LOST_S - 0.001)
    await settle()
    assert [e.name for e in received] == [CHAT_CREATED, MESSAGE_DELTA]

    clock.advance(9.0 + RUNNER_LOST_S)
    await asyncio.wait_for(reader, 5)
    names = [e.name for e in received]
    assert names == [
        CHAT_CREATED,
        MESSAGE_DELTA,
        CHAT_FAILED,
        "error",
        "conversation.stream.done",
        "done",
    ]
    failed = received[2]
    assert b'"status":"failed"' in failed.data
    assert f'"code":{RUNNER_LOST_CODE}'.encode() in failed.data


async def test_runner_lost_is_not_delayed_to_the_queue_timeout() -> None:
    """Before the fix this fired only when the 30 s queue timer came round."""
    clock, bus = FakeClock(), FakeBus()
    session = await started_session(clock, bus)
    received: list[ChatEvent] = []
    reader = await drain(received, session)
    clock.advance(0.5)
    await bus.say(CHAT_CREATED)
    clock.advance(0.5 + RUNNER_LOST_S)
    await asyncio.wait_for(reader, 5)
    assert RUNNER_LOST_S + 0.5 < QUEUE_TIMEOUT_S
    assert [e.name for e in received][:2] == [CHAT_CREATED, CHAT_FAILED]


async def test_a_silent_queue_times_out_at_the_queue_deadline() -> None:
    clock, bus = FakeClock(), FakeBus()
    session = await started_session(clock, bus)
    received: list[ChatEvent] = []
    reader = await drain(received, session)
    clock.advance(QUEUE_TIMEOUT_S - 0.001)
    await settle()
    assert received == []
    clock.advance(QUEUE_TIMEOUT_S)
    await asyncio.wait_for(reader, 5)
    assert received[0].name == CHAT_FAILED
    assert b'"code":503' in received[0].data
