"""A chat that starts a new conversation is queued while the registry records it (the edge
mints the conversation's id, and its history is empty): the registry's round trip is off the
path to the first token. Only once the edge knows its registry records chats with the ids it
mints (OpenChat), never for an existing conversation (a foreign one must stay a not-found
with nothing queued), and never when switched off. A refusal tells the runners to drop the
queued copy; a failed queue ends the recorded chat."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import grpc
import pytest

from cozeplus.chat_protocol import ChatRequest, InputMessage
from cozeplus.rpc.v1 import conversations_pb2 as cpb
from services.edge.core.chats import ChatCore, ChatInput, ChatTarget, ChatTimings
from services.edge.core.errors import Unavailable
from tests.runner.fakes import FakeRpcError

OWNER = 1
TARGET = ChatTarget(bot_id=3, bot_version=1, model_id="m", history_rounds=5)
NEW = ChatInput(
    user_id="u", conversation_id=None, messages=[InputMessage(role="user", content="q")]
)
EXISTING = ChatInput(
    user_id="u", conversation_id=9, messages=[InputMessage(role="user", content="q")]
)


class Subscription:
    async def unsubscribe(self) -> None:
        return None


class Bus:
    max_payload = 1 << 20

    def __init__(self) -> None:
        self.queued: list[ChatRequest] = []
        self.canceled: list[int] = []
        self.queue_error: Exception | None = None
        self._ids = itertools.count(500)

    def check_ready(self) -> None:
        return None

    def next_id(self) -> int:
        return next(self._ids)

    async def follow(self, chat_id: int, on_event: Any) -> Subscription:
        return Subscription()

    async def queue(self, request: ChatRequest) -> None:
        if self.queue_error is not None:
            raise self.queue_error
        self.queued.append(request)

    async def ask_runners_to_cancel(self, chat_id: int) -> None:
        self.canceled.append(chat_id)


class Registry:
    def __init__(self) -> None:
        self.opened: list[cpb.CreateChatRequest] = []
        self.aborted: list[int] = []
        self.gate: asyncio.Event | None = None
        self.refusal: FakeRpcError | None = None

    async def OpenChat(self, request: cpb.CreateChatRequest) -> cpb.CreatedChat:
        self.opened.append(request)
        if self.gate is not None:
            await self.gate.wait()
        if self.refusal is not None:
            raise self.refusal
        conversation_id = request.conversation_id or request.new_conversation_id or 77
        run = cpb.ChatRun(
            id=request.chat_id, conversation_id=conversation_id, section_id=conversation_id
        )
        history = [cpb.Message(content="earlier")] if request.conversation_id else []
        return cpb.CreatedChat(run=run, history=history)

    async def AbortQueuedChat(
        self,
        request: cpb.AbortQueuedChatRequest,
        timeout: float | None = None,  # noqa: ASYNC109 (gRPC's)
    ) -> cpb.ChatRun:
        self.aborted.append(request.chat_id)
        return cpb.ChatRun(id=request.chat_id)


def _core(registry: Registry, bus: Bus, *, queue_while_recording: bool = True) -> ChatCore:
    return ChatCore(
        bus=bus,  # type: ignore[arg-type]
        bots=None,  # type: ignore[arg-type]
        conversations=registry,  # type: ignore[arg-type]
        timings=ChatTimings(queue_timeout_s=30, runner_lost_s=30, cancel_wait_s=1),
        queue_while_recording=queue_while_recording,
    )


async def _started(core: ChatCore, chat: ChatInput) -> cpb.ChatRun:
    session = await core.start(OWNER, TARGET, chat)
    await session.close()
    return session.run


async def _learned(core: ChatCore) -> None:
    """The edge's first chat: recorded, then queued; now it knows the registry."""
    await _started(core, NEW)


async def test_the_first_chat_is_recorded_before_it_is_queued() -> None:
    registry, bus = Registry(), Bus()
    await _started(_core(registry, bus), NEW)
    assert registry.opened[0].new_conversation_id == 0, "the registry minted it"
    assert bus.queued[0].recorded
    assert bus.queued[0].conversation_id == 77


async def test_a_new_conversation_is_queued_while_the_registry_records_it() -> None:
    registry, bus = Registry(), Bus()
    core = _core(registry, bus)
    await _learned(core)
    registry.gate = asyncio.Event()

    start = asyncio.create_task(_started(core, NEW))
    for _ in range(100):
        if len(bus.queued) == 2 and len(registry.opened) == 2:
            break
        await asyncio.sleep(0)
    assert len(bus.queued) == 2, "queued before the registry answered"
    assert len(registry.opened) == 2
    assert not start.done()
    queued, opened = bus.queued[1], registry.opened[1]
    assert not queued.recorded
    assert queued.history == []
    assert opened.new_conversation_id != 0
    assert queued.conversation_id == queued.section_id == opened.new_conversation_id
    assert queued.chat_id == opened.chat_id

    registry.gate.set()
    run = await start
    assert run.conversation_id == opened.new_conversation_id
    assert bus.canceled == []


async def test_an_existing_conversation_is_still_recorded_first() -> None:
    registry, bus = Registry(), Bus()
    core = _core(registry, bus)
    await _learned(core)
    await _started(core, EXISTING)
    queued = bus.queued[1]
    assert queued.recorded
    assert queued.history is not None and [m.content for m in queued.history] == ["earlier"]
    assert registry.opened[1].new_conversation_id == 0


async def test_switched_off_every_chat_is_recorded_first() -> None:
    registry, bus = Registry(), Bus()
    core = _core(registry, bus, queue_while_recording=False)
    await _learned(core)
    await _started(core, NEW)
    assert all(request.recorded for request in bus.queued)


async def test_a_refused_chat_is_dropped_by_the_runners() -> None:
    registry, bus = Registry(), Bus()
    core = _core(registry, bus)
    await _learned(core)
    registry.refusal = FakeRpcError(grpc.StatusCode.NOT_FOUND, "bot 3 not found")

    with pytest.raises(FakeRpcError) as refused:
        await _started(core, NEW)

    assert refused.value.code() == grpc.StatusCode.NOT_FOUND
    assert bus.canceled == [bus.queued[1].chat_id]
    assert registry.aborted == [], "a refusal recorded nothing to end"


async def test_an_unanswered_record_is_ended_should_it_land_late() -> None:
    registry, bus = Registry(), Bus()
    core = _core(registry, bus)
    await _learned(core)
    registry.refusal = FakeRpcError(grpc.StatusCode.DEADLINE_EXCEEDED, "deadline")

    with pytest.raises(FakeRpcError):
        await _started(core, NEW)

    chat_id = bus.queued[1].chat_id
    assert bus.canceled == [chat_id]
    assert registry.aborted == [chat_id]


async def test_a_chat_that_could_not_be_queued_is_ended_once_recorded() -> None:
    registry, bus = Registry(), Bus()
    core = _core(registry, bus)
    await _learned(core)
    bus.queue_error = TimeoutError("no stream leader")

    with pytest.raises(Unavailable):
        await _started(core, NEW)

    assert registry.aborted == [registry.opened[1].chat_id]
