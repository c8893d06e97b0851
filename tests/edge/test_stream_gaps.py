"""A chat session whose events arrive with gaps or twice, against a real NATS server (a
scripted runner numbers its events as RunEvents does; a stand-in registry holds the stored
chat): duplicates are dropped; after a loss the stream is repaired from the stored chat so
its deltas add up to the stored answer, or, when the store can't repair it, gets an `error`
naming the loss before its terminal event; a non-streaming answer is the stored one."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from nats.aio.client import Client as NATS

from cozeplus.chat_protocol import (
    CHAT_COMPLETED,
    CHAT_CREATED,
    CHAT_FAILED,
    EVENT_HEADER,
    HEARTBEAT_EVENT,
    MESSAGE_COMPLETED,
    MESSAGE_DELTA,
    PUBLISHER_HEADER,
    SEQ_HEADER,
    SEQ_SENT_HEADER,
)
from cozeplus.rpc.v1 import conversations_pb2 as cpb
from cozeplus.subjects import chat_events
from services.edge.core.session import STREAM_INCOMPLETE_CODE, ChatSession
from tests.chat.sse import Event, names, parse_stream
from tests.edge.test_chat_session import (
    FakeConversations,
    chat_payload,
    edge_nc,
    open_session,
    read_all,
    runner_nc,
)

__all__ = ["edge_nc", "runner_nc"]

ANSWER_ID = 42


class StoredChat(FakeConversations):
    """The registry's ListChatMessages: the question, maybe a function call, the answer."""

    def __init__(self, answer: str, *, tool_call: bool = False) -> None:
        super().__init__()
        self.messages = [cpb.Message(id=40, type="question", content="q")]
        if tool_call:
            self.messages.append(cpb.Message(id=41, type="function_call", content="{}"))
        if answer:
            self.messages.append(cpb.Message(id=ANSWER_ID, type="answer", content=answer))

    async def ListChatMessages(
        self,
        request: cpb.ChatRef,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> cpb.ChatMessagesResponse:
        return cpb.ChatMessagesResponse(messages=self.messages)


def answer_event(event: str, text: str) -> bytes:
    return orjson.dumps({"event": event, "id": str(ANSWER_ID), "type": "answer", "content": text})


# What a runner publishes for the answer "Hello wide world", numbered 1.. in this order.
SCRIPT: list[tuple[str, bytes]] = [
    (CHAT_CREATED, b'{"event":"conversation.chat.created"}'),
    (MESSAGE_DELTA, answer_event(MESSAGE_DELTA, "Hello")),
    (MESSAGE_DELTA, answer_event(MESSAGE_DELTA, " wide")),
    (MESSAGE_DELTA, answer_event(MESSAGE_DELTA, " world")),
    (MESSAGE_COMPLETED, answer_event(MESSAGE_COMPLETED, "Hello wide world")),
    (CHAT_COMPLETED, chat_payload(CHAT_COMPLETED, "completed")),
]


async def play(
    nc: NATS,
    session: ChatSession,
    *,
    skip: tuple[int, ...] = (),
    twice: tuple[int, ...] = (),
    heartbeat_after: int = 0,
    numbered_terminal: bool = True,
    script: list[tuple[str, bytes]] = SCRIPT,
) -> None:
    """Publishes `script` as one runner numbers it, leaving out the events numbered in `skip`
    (lost in transit) and sending those in `twice` twice."""
    subject = chat_events(session.chat_id)
    for number, (name, data) in enumerate(script, start=1):
        headers = {EVENT_HEADER: name, SEQ_HEADER: str(number), PUBLISHER_HEADER: "r1"}
        if number == len(script) and not numbered_terminal:
            headers = {EVENT_HEADER: name}  # as the registry's sweeper sends it
        if number not in skip:
            for _ in range(2 if number in twice else 1):
                await nc.publish(subject, data, headers=headers)
        if number == heartbeat_after:
            sent = {EVENT_HEADER: HEARTBEAT_EVENT, SEQ_SENT_HEADER: str(number)}
            await nc.publish(subject, b"{}", headers={**sent, PUBLISHER_HEADER: "r1"})
    await nc.flush()


async def stream(edge: NATS, runner: NATS, registry: StoredChat, **gaps: Any) -> list[Event]:
    session = await open_session(edge, registry)
    reader = asyncio.create_task(read_all(session))
    await play(runner, session, **gaps)
    return parse_stream(await asyncio.wait_for(reader, 5))


def answer_of(events: list[Event]) -> str:
    return "".join(e.data["content"] for e in events if e.name == MESSAGE_DELTA)


def completed_answers(events: list[Event]) -> list[str]:
    return [
        e.data["content"]
        for e in events
        if e.name == MESSAGE_COMPLETED and e.data.get("type") == "answer"
    ]


async def test_duplicates_are_dropped(edge_nc: NATS, runner_nc: NATS) -> None:
    events = await stream(edge_nc, runner_nc, StoredChat("Hello wide world"), twice=(2, 3))
    assert [e.data["content"] for e in events if e.name == MESSAGE_DELTA] == [
        "Hello",
        " wide",
        " world",
    ]
    assert "error" not in names(events)


@pytest.mark.parametrize("lost", [(1,), (2,), (3,), (4,), (3, 4, 5), (5,)])
async def test_lost_events_are_repaired_from_the_stored_answer(
    edge_nc: NATS, runner_nc: NATS, lost: tuple[int, ...]
) -> None:
    events = await stream(edge_nc, runner_nc, StoredChat("Hello wide world"), skip=lost)
    assert answer_of(events) == "Hello wide world"
    assert completed_answers(events) == ["Hello wide world"]
    assert names(events)[-3:] == [CHAT_COMPLETED, "conversation.stream.done", "done"]
    assert "error" not in names(events)


async def test_a_lost_tail_shown_by_a_heartbeat_is_repaired(edge_nc: NATS, runner_nc: NATS) -> None:
    # The last delta and the answer's completed message are lost, and the terminal event
    # carries no number (the registry's): only the heartbeat tells.
    events = await stream(
        edge_nc,
        runner_nc,
        StoredChat("Hello wide world"),
        skip=(4, 5),
        heartbeat_after=5,
        numbered_terminal=False,
    )
    assert answer_of(events) == "Hello wide world"
    assert completed_answers(events) == ["Hello wide world"]


async def test_a_lost_function_call_is_sent_from_the_store(edge_nc: NATS, runner_nc: NATS) -> None:
    registry = StoredChat("Hello wide world", tool_call=True)
    events = await stream(edge_nc, runner_nc, registry, skip=(3,))
    completed = [e.data for e in events if e.name == MESSAGE_COMPLETED]
    assert [c["type"] for c in completed] == ["function_call", "answer"]
    assert completed[0]["id"] == "41"
    assert answer_of(events) == "Hello wide world"


def message_bytes(event: str, message_id: int, kind: str, text: str) -> bytes:
    return orjson.dumps({"event": event, "id": str(message_id), "type": kind, "content": text})


# A model that said something before a round of calls: that text is an answer message of its
# own (39), completed before the call; the answer goes on as message 42.
TWO_ANSWERS: list[tuple[str, bytes]] = [
    (CHAT_CREATED, b'{"event":"conversation.chat.created"}'),
    (MESSAGE_DELTA, message_bytes(MESSAGE_DELTA, 39, "answer", "Let me ")),
    (MESSAGE_DELTA, message_bytes(MESSAGE_DELTA, 39, "answer", "look.")),
    (MESSAGE_COMPLETED, message_bytes(MESSAGE_COMPLETED, 39, "answer", "Let me look.")),
    (MESSAGE_COMPLETED, message_bytes(MESSAGE_COMPLETED, 41, "function_call", "{}")),
    (MESSAGE_DELTA, message_bytes(MESSAGE_DELTA, 42, "answer", "Hello")),
    (MESSAGE_DELTA, message_bytes(MESSAGE_DELTA, 42, "answer", " world")),
    (MESSAGE_COMPLETED, message_bytes(MESSAGE_COMPLETED, 42, "answer", "Hello world")),
    (CHAT_COMPLETED, chat_payload(CHAT_COMPLETED, "completed")),
]


def stored_two_answers() -> StoredChat:
    registry = StoredChat("")
    registry.messages = [
        cpb.Message(id=38, type="question", content="q"),
        cpb.Message(id=39, type="answer", content="Let me look."),
        cpb.Message(id=41, type="function_call", content="{}"),
        cpb.Message(id=ANSWER_ID, type="answer", content="Hello world"),
    ]
    return registry


@pytest.mark.parametrize("lost", [(2,), (3,), (4,), (3, 4, 5), (3, 4, 5, 6), (7, 8), (5,)])
async def test_a_repaired_stream_adds_up_per_answer_when_the_model_spoke_before_its_calls(
    edge_nc: NATS, runner_nc: NATS, lost: tuple[int, ...]
) -> None:
    events = await stream(edge_nc, runner_nc, stored_two_answers(), skip=lost, script=TWO_ANSWERS)
    assert completed_answers(events) == ["Let me look.", "Hello world"]
    for message_id, text in (("39", "Let me look."), ("42", "Hello world")):
        deltas = [
            e.data["content"]
            for e in events
            if e.name == MESSAGE_DELTA and e.data["id"] == message_id
        ]
        assert "".join(deltas) == text, (message_id, deltas)
    completed = [e.data["id"] for e in events if e.name == MESSAGE_COMPLETED]
    assert sorted(completed) == ["39", "41", "42"], "each once"
    assert "error" not in names(events)


async def test_a_non_streaming_answer_is_every_answer_message_of_the_chat(
    edge_nc: NATS, runner_nc: NATS
) -> None:
    for lost in ((), (4,)):
        session = await open_session(edge_nc, stored_two_answers())
        waiting = asyncio.create_task(session.outcome())
        await play(runner_nc, session, skip=lost, script=TWO_ANSWERS)
        outcome = await asyncio.wait_for(waiting, 5)
        # Set apart: run together they would read as one sentence.
        assert outcome.answer == "Let me look.\n\nHello world", lost


async def test_a_chat_that_fails_mid_answer_returns_each_answer_apart_the_last_one_cut(
    edge_nc: NATS, runner_nc: NATS
) -> None:
    failing = [*TWO_ANSWERS[:7], (CHAT_FAILED, chat_payload(CHAT_FAILED, "failed"))]
    # The store has no answer to repair from (auto_save_history off).
    for lost in ((), (4,)):
        session = await open_session(edge_nc, StoredChat(""))
        waiting = asyncio.create_task(session.outcome())
        # With 4 lost, only the first answer's deltas tell what it said.
        await play(runner_nc, session, skip=lost, script=failing)
        outcome = await asyncio.wait_for(waiting, 5)
        assert outcome.event == CHAT_FAILED
        assert outcome.answer == "Let me look.\n\nHello world", lost


async def test_a_loss_the_store_cannot_repair_is_told_before_the_terminal_event(
    edge_nc: NATS, runner_nc: NATS
) -> None:
    # The answer was not stored (a chat with auto_save_history off): nothing to repair from.
    events = await stream(edge_nc, runner_nc, StoredChat(""), skip=(3,))
    assert names(events)[-4:] == ["error", CHAT_COMPLETED, "conversation.stream.done", "done"]
    error = events[-4].data
    assert error["code"] == STREAM_INCOMPLETE_CODE
    assert error["msg"].startswith("stream incomplete: 1 event(s) of this chat were lost")
    # What arrived after the gap still went out, before the error.
    assert answer_of(events) == "Hello world"


async def test_a_non_streaming_answer_after_a_loss_is_the_stored_one(
    edge_nc: NATS, runner_nc: NATS
) -> None:
    session = await open_session(edge_nc, StoredChat("Hello wide world"))
    waiting = asyncio.create_task(session.outcome())
    await play(runner_nc, session, skip=(3, 5))
    outcome = await asyncio.wait_for(waiting, 5)
    assert outcome.answer == "Hello wide world"


async def test_a_chat_whose_every_event_was_lost_ends_as_stored(
    edge_nc: NATS, runner_nc: NATS
) -> None:
    """Its runner went quiet for the edge (the whole chat ran while the edge reconnected):
    the watchdog finds it ended in the registry and repairs the stream, not "runner lost"."""
    registry = StoredChat("Hello wide world")
    registry.stored = cpb.ChatRun(id=1, conversation_id=70, status="completed")
    session = await open_session(edge_nc, registry, queue_timeout_s=0.2, runner_lost_s=0.3)
    reader = asyncio.create_task(read_all(session))
    await play(runner_nc, session, skip=(2, 3, 4, 5, 6))
    events = parse_stream(await asyncio.wait_for(reader, 5))
    assert answer_of(events) == "Hello wide world"
    assert completed_answers(events) == ["Hello wide world"]
    assert names(events)[-3:] == [CHAT_COMPLETED, "conversation.stream.done", "done"]
    assert events[-3].data["status"] == "completed"
