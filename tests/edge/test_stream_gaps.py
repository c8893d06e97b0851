"""A chat session whose events arrive with gaps or twice, against a real NATS server (a
scripted runner numbers its events as RunEvents does; a stand-in registry holds the stored
answer): duplicates are dropped; after a loss, a stream whose deltas don't add up to the
stored answer gets an `error` naming the loss before its terminal event, one that still adds
up gets none, and a non-streaming answer is the stored one."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from nats.aio.client import Client as NATS

from cozeplus.chat_protocol import (
    CHAT_COMPLETED,
    CHAT_CREATED,
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
from services.edge.chat_gateway import STREAM_INCOMPLETE_CODE, ChatSession
from tests.chat.sse import names, parse_stream
from tests.edge.test_chat_session import (
    FakeConversations,
    chat_payload,
    edge_nc,
    open_session,
    read_all,
    runner_nc,
)

__all__ = ["edge_nc", "runner_nc"]


class StoredAnswer(FakeConversations):
    def __init__(self, answer: str) -> None:
        super().__init__()
        self.answer = answer

    async def ListChatMessages(
        self,
        request: cpb.ChatRef,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> cpb.ChatMessagesResponse:
        return cpb.ChatMessagesResponse(
            messages=[
                cpb.Message(type="question", content="q"),
                cpb.Message(type="answer", content=self.answer),
            ]
        )


def delta(text: str) -> bytes:
    return orjson.dumps({"event": MESSAGE_DELTA, "type": "answer", "content": text})


def completed(text: str) -> bytes:
    return orjson.dumps({"event": MESSAGE_COMPLETED, "type": "answer", "content": text})


# What a runner publishes for the answer "Hello world": (event, data), numbered 1.. in order.
SCRIPT: list[tuple[str, bytes]] = [
    (CHAT_CREATED, b'{"event":"conversation.chat.created"}'),
    (MESSAGE_DELTA, delta("Hello")),
    (MESSAGE_DELTA, delta(" world")),
    (MESSAGE_COMPLETED, completed("Hello world")),
    (CHAT_COMPLETED, chat_payload(CHAT_COMPLETED, "completed")),
]


async def play(
    nc: NATS,
    session: ChatSession,
    *,
    skip: tuple[int, ...] = (),
    twice: tuple[int, ...] = (),
    heartbeat_after: int = 0,
) -> None:
    """Publishes SCRIPT as one runner numbers it, leaving out the events numbered in `skip`
    (lost in transit), sending those in `twice` twice."""
    subject = chat_events(session.chat_id)
    for number, (name, data) in enumerate(SCRIPT, start=1):
        headers = {EVENT_HEADER: name, SEQ_HEADER: str(number), PUBLISHER_HEADER: "r1"}
        if number not in skip:
            for _ in range(2 if number in twice else 1):
                await nc.publish(subject, data, headers=headers)
        if number == heartbeat_after:
            sent = {EVENT_HEADER: HEARTBEAT_EVENT, SEQ_SENT_HEADER: str(number)}
            await nc.publish(subject, b"{}", headers={**sent, PUBLISHER_HEADER: "r1"})
    await nc.flush()


async def stream(edge: NATS, runner: NATS, registry: StoredAnswer, **gaps: Any) -> list[Any]:
    session = await open_session(edge, registry)
    reader = asyncio.create_task(read_all(session))
    await play(runner, session, **gaps)
    return parse_stream(await asyncio.wait_for(reader, 5))


async def test_duplicates_are_dropped(edge_nc: NATS, runner_nc: NATS) -> None:
    events = await stream(edge_nc, runner_nc, StoredAnswer("Hello world"), twice=(2, 3))
    assert [e.data.get("content") for e in events if e.name == MESSAGE_DELTA] == [
        "Hello",
        " world",
    ]
    assert "error" not in names(events)


async def test_a_lost_delta_is_told_before_the_terminal_event(
    edge_nc: NATS, runner_nc: NATS
) -> None:
    events = await stream(edge_nc, runner_nc, StoredAnswer("Hello world"), skip=(3,))
    assert names(events)[-4:] == ["error", CHAT_COMPLETED, "conversation.stream.done", "done"]
    error = events[-4].data
    assert error["code"] == STREAM_INCOMPLETE_CODE
    assert error["msg"].startswith("stream incomplete: 1 event(s) of this chat were lost")


async def test_a_lost_tail_shown_by_a_heartbeat_is_told(edge_nc: NATS, runner_nc: NATS) -> None:
    # The answer's completed message is lost; the heartbeat after it says so.
    events = await stream(
        edge_nc, runner_nc, StoredAnswer("Hello world"), skip=(4,), heartbeat_after=4
    )
    assert "error" in names(events)


async def test_a_loss_that_leaves_the_answer_whole_needs_no_error(
    edge_nc: NATS, runner_nc: NATS
) -> None:
    # chat.created lost: every delta and the completed answer went out.
    events = await stream(edge_nc, runner_nc, StoredAnswer("Hello world"), skip=(1,))
    assert names(events)[-3:] == [CHAT_COMPLETED, "conversation.stream.done", "done"]
    assert "error" not in names(events)


async def test_a_non_streaming_answer_after_a_loss_is_the_stored_one(
    edge_nc: NATS, runner_nc: NATS
) -> None:
    session = await open_session(edge_nc, StoredAnswer("Hello world"))
    waiting = asyncio.create_task(session.outcome())
    await play(runner_nc, session, skip=(3, 4))
    outcome = await asyncio.wait_for(waiting, 5)
    assert outcome.answer == "Hello world"
