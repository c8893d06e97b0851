"""ChatSession, the edge's follower of one chat, against a real NATS server: a scripted runner
publishes on the chat's subject, and a stand-in for the registry answers AbortQueuedChat."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any, cast

import grpc
import nats
import orjson
import pytest
from nats.aio.client import Client as NATS

from cozeplus.chat_protocol import (
    CHAT_COMPLETED,
    CHAT_CREATED,
    CHAT_FAILED,
    CHAT_IN_PROGRESS,
    EVENT_HEADER,
    HEARTBEAT_EVENT,
    MESSAGE_COMPLETED,
    MESSAGE_DELTA,
)
from cozeplus.chat_wire import DONE_DATA, STREAM_DONE_DATA, sse_frame
from cozeplus.rpc.v1 import conversations_pb2 as cpb
from cozeplus.subjects import chat_events
from services.edge.core.chats import answer_data
from services.edge.core.errors import Unavailable
from services.edge.core.session import (
    NO_RUNNER_CODE,
    RUNNER_LOST_CODE,
    ChatSession,
)
from services.edge.responses import EventStreamResponse, sse_frames
from tests.chat.sse import FAILURE_TAIL, names, parse_stream

TAIL = sse_frame("conversation.stream.done", STREAM_DONE_DATA) + sse_frame("done", DONE_DATA)


class FakeConversations:
    """AbortQueuedChat as the registry answers it: the chat, failed as asked, or
    FAILED_PRECONDITION when a runner already has it."""

    def __init__(self, refuse: bool = False) -> None:
        self.refuse = refuse
        self.aborts: list[cpb.AbortQueuedChatRequest] = []
        self.asked = asyncio.Event()
        self.stored: cpb.ChatRun | None = None

    async def GetChat(
        self,
        request: cpb.ChatRef,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> cpb.ChatRun:
        """The stored chat, as the registry has it (a run still in progress by default)."""
        return self.stored or cpb.ChatRun(id=request.chat_id, status="in_progress")

    async def AbortQueuedChat(self, request: cpb.AbortQueuedChatRequest) -> cpb.ChatRun:
        self.aborts.append(request)
        self.asked.set()
        if self.refuse:
            raise grpc.aio.AioRpcError(
                grpc.StatusCode.FAILED_PRECONDITION,
                grpc.aio.Metadata(),
                grpc.aio.Metadata(),
                details="chat already started",
            )
        return cpb.ChatRun(
            id=request.chat_id,
            conversation_id=70,
            bot_id=80,
            section_id=70,
            status=request.status,
            created_at=1,
            failed_at=2,
            last_error=request.last_error,
        )


class ConnectionBus:
    """The one piece of ChatBus a session uses, on a plain connection."""

    def __init__(self, nc: NATS) -> None:
        self.nc = nc

    async def follow(self, chat_id: int, on_event: Any) -> Any:
        return await self.nc.subscribe(chat_events(chat_id), cb=on_event)


@pytest.fixture
async def edge_nc(nats_url: str) -> AsyncIterator[NATS]:
    nc = await nats.connect(nats_url)
    yield nc
    await nc.close()


@pytest.fixture
async def runner_nc(nats_url: str) -> AsyncIterator[NATS]:
    nc = await nats.connect(nats_url)
    yield nc
    await nc.close()


async def open_session(
    edge_nc: NATS,
    conversations: FakeConversations | None = None,
    queue_timeout_s: float = 10.0,
    runner_lost_s: float = 10.0,
) -> ChatSession:
    chat_id = secrets.randbelow(2**52) + 1
    session = ChatSession(
        bus=cast(Any, ConnectionBus(edge_nc)),
        conversations=cast(Any, conversations or FakeConversations()),
        owner_id=1,
        chat_id=chat_id,
        queue_timeout_s=queue_timeout_s,
        runner_lost_s=runner_lost_s,
    )
    await session.open()
    # The edge queues the chat on this same connection after subscribing, so the server
    # knows the subscription before any runner can publish; here a round trip does that.
    await server_has_seen(edge_nc)
    session.start(
        cpb.ChatRun(
            id=chat_id, conversation_id=70, bot_id=80, section_id=70, status="created", created_at=1
        )
    )
    return session


async def server_has_seen(nc: NATS) -> None:
    """Returns once the server has processed everything `nc` sent before the call.

    Not nc.flush(): nats-py 2.16 writes flush's PING straight to the socket, ahead of commands
    still waiting in its own buffer, so the PONG can come back before an earlier SUB has even
    been sent (and a runner's event then finds no subscriber). A message to ourselves goes
    through that buffer, behind the SUB."""
    inbox = nc.new_inbox()
    subscription = await nc.subscribe(inbox, max_msgs=1)
    await nc.publish(inbox, b"")
    await subscription.next_msg(timeout=5)


async def publish(nc: NATS, session: ChatSession, name: str, data: bytes) -> None:
    await nc.publish(chat_events(session.chat_id), data, headers={EVENT_HEADER: name})
    await nc.flush()


async def read_all(session: ChatSession) -> bytes:
    return b"".join([frame async for frame in sse_frames(session)])


def chat_payload(event: str, status: str, code: int = 0, msg: str = "") -> bytes:
    return orjson.dumps(
        {
            "event": event,
            "id": "1",
            "conversation_id": "70",
            "status": status,
            "last_error": {"code": code, "msg": msg},
            "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3},
            "run_record_item": {"id": "1"},
        }
    )


async def test_events_pass_through_byte_for_byte_without_heartbeats(
    edge_nc: NATS, runner_nc: NATS
) -> None:
    session = await open_session(edge_nc)
    # Spacing and escapes a re-encoder would change: the client must get these bytes.
    script = [
        (CHAT_CREATED, b'{"event": "conversation.chat.created", "id": "1"}'),
        (HEARTBEAT_EVENT, b"{}"),
        (CHAT_IN_PROGRESS, b'{"event":"conversation.chat.in_progress","x":"\\u00e9"}'),
        (MESSAGE_DELTA, '{"event":"conversation.message.delta","content":"你好"}'.encode()),
        (HEARTBEAT_EVENT, b"{}"),
        (MESSAGE_COMPLETED, b'{"event":"conversation.message.completed","content":"x"}'),
        (CHAT_COMPLETED, chat_payload(CHAT_COMPLETED, "completed")),
        # After the terminal event nothing more is written.
        (MESSAGE_DELTA, b'{"late":true}'),
    ]
    reader = asyncio.create_task(read_all(session))
    for name, data in script:
        await publish(runner_nc, session, name, data)
    raw = await asyncio.wait_for(reader, 5)
    expected = b"".join(sse_frame(n, d) for n, d in script[:-1] if n != HEARTBEAT_EVENT) + TAIL
    assert raw == expected
    assert b"heartbeat" not in raw


async def test_a_failed_chat_gets_the_error_trailer(edge_nc: NATS, runner_nc: NATS) -> None:
    session = await open_session(edge_nc)
    reader = asyncio.create_task(read_all(session))
    await publish(runner_nc, session, CHAT_CREATED, b'{"event":"conversation.chat.created"}')
    await publish(runner_nc, session, CHAT_FAILED, chat_payload(CHAT_FAILED, "failed", 502, "bad"))
    events = parse_stream(await asyncio.wait_for(reader, 5))
    assert names(events) == [CHAT_CREATED, *FAILURE_TAIL]
    assert events[2].data == {
        "event": "conversation.error",
        "code": 502,
        "msg": "bad",
        "error": {"code": 502, "msg": "bad"},
    }


async def test_no_runner_in_time_fails_the_chat_in_the_registry(edge_nc: NATS) -> None:
    conversations = FakeConversations()
    session = await open_session(edge_nc, conversations, queue_timeout_s=0.3)
    started = time.monotonic()
    events = parse_stream(await asyncio.wait_for(read_all(session), 5))
    assert time.monotonic() - started >= 0.3
    assert names(events) == FAILURE_TAIL
    failed = events[0].data
    assert failed["status"] == "failed" and failed["id"] == str(session.chat_id)
    assert failed["last_error"]["code"] == NO_RUNNER_CODE
    assert failed["run_record_item"]["status"] == "failed"
    assert events[1].data["code"] == NO_RUNNER_CODE
    (abort,) = conversations.aborts
    assert abort.chat_id == session.chat_id and abort.owner_id == 1
    assert abort.status == "failed" and abort.last_error.code == NO_RUNNER_CODE


async def test_a_runner_that_took_the_chat_at_the_deadline_is_waited_for(
    edge_nc: NATS, runner_nc: NATS
) -> None:
    conversations = FakeConversations(refuse=True)
    session = await open_session(edge_nc, conversations, queue_timeout_s=0.2, runner_lost_s=2)
    reader = asyncio.create_task(read_all(session))
    await asyncio.wait_for(conversations.asked.wait(), 5)
    await publish(runner_nc, session, CHAT_CREATED, b'{"event":"conversation.chat.created"}')
    await publish(runner_nc, session, CHAT_COMPLETED, chat_payload(CHAT_COMPLETED, "completed"))
    events = parse_stream(await asyncio.wait_for(reader, 5))
    assert names(events) == [CHAT_CREATED, CHAT_COMPLETED, "conversation.stream.done", "done"]
    assert len(conversations.aborts) == 1


async def test_a_silent_runner_is_declared_lost(edge_nc: NATS, runner_nc: NATS) -> None:
    conversations = FakeConversations()
    session = await open_session(edge_nc, conversations, queue_timeout_s=0.2, runner_lost_s=0.6)
    reader = asyncio.create_task(read_all(session))
    await publish(runner_nc, session, CHAT_CREATED, b'{"event":"conversation.chat.created"}')
    spoke = time.monotonic()
    events = parse_stream(await asyncio.wait_for(reader, 5))
    assert time.monotonic() - spoke >= 0.6
    assert names(events) == [CHAT_CREATED, *FAILURE_TAIL]
    failed = events[1].data
    assert failed["status"] == "failed" and failed["failed_at"] > 0
    assert failed["last_error"]["code"] == RUNNER_LOST_CODE
    assert "runner lost" in failed["last_error"]["msg"]
    # A started chat is not the queue's to abort: its loss is recorded by the next runner.
    assert conversations.aborts == []


async def test_heartbeats_keep_a_quiet_runner_alive(edge_nc: NATS, runner_nc: NATS) -> None:
    session = await open_session(edge_nc, queue_timeout_s=0.2, runner_lost_s=0.4)
    reader = asyncio.create_task(read_all(session))
    await publish(runner_nc, session, CHAT_CREATED, b'{"event":"conversation.chat.created"}')
    for _ in range(12):  # 1.2 s of silence but for heartbeats: three lost-runner windows
        await asyncio.sleep(0.1)
        await publish(runner_nc, session, HEARTBEAT_EVENT, b"{}")
    await publish(runner_nc, session, CHAT_COMPLETED, chat_payload(CHAT_COMPLETED, "completed"))
    events = parse_stream(await asyncio.wait_for(reader, 5))
    assert names(events) == [CHAT_CREATED, CHAT_COMPLETED, "conversation.stream.done", "done"]


async def test_outcome_merges_the_answer_into_the_chat(edge_nc: NATS, runner_nc: NATS) -> None:
    session = await open_session(edge_nc)
    waiter = asyncio.create_task(session.outcome())
    await publish(runner_nc, session, CHAT_CREATED, b'{"event":"conversation.chat.created"}')
    await publish(runner_nc, session, MESSAGE_DELTA, b'{"content":"the "}')
    await publish(runner_nc, session, MESSAGE_COMPLETED, b'{"content":"the answer"}')
    # Tool messages complete too, even after the answer; they are not the chat's content.
    call = b'{"type":"function_call","content":"{\\"name\\":\\"f\\"}"}'
    await publish(runner_nc, session, MESSAGE_COMPLETED, call)
    await publish(runner_nc, session, CHAT_COMPLETED, chat_payload(CHAT_COMPLETED, "completed"))
    outcome = await asyncio.wait_for(waiter, 5)
    data = answer_data(outcome)
    assert data["status"] == "completed" and data["id"] == "1"
    assert data["content"] == "the answer"
    assert (data["role"], data["type"], data["content_type"]) == ("assistant", "answer", "text")
    assert "event" not in data and "run_record_item" not in data


async def test_outcome_of_a_chat_no_runner_took_is_a_503(edge_nc: NATS) -> None:
    session = await open_session(edge_nc, queue_timeout_s=0.2)
    outcome = await asyncio.wait_for(session.outcome(), 5)
    with pytest.raises(Unavailable):
        answer_data(outcome)


async def test_a_model_failure_is_a_failed_chat_not_an_http_error(
    edge_nc: NATS, runner_nc: NATS
) -> None:
    session = await open_session(edge_nc)
    waiter = asyncio.create_task(session.outcome())
    await publish(runner_nc, session, CHAT_FAILED, chat_payload(CHAT_FAILED, "failed", 500, "x"))
    data = answer_data(await asyncio.wait_for(waiter, 5))
    assert data["status"] == "failed" and data["last_error"] == {"code": 500, "msg": "x"}
    assert data["content"] == ""


async def test_a_client_going_away_unsubscribes_at_once(edge_nc: NATS, runner_nc: NATS) -> None:
    subscriptions = len(edge_nc._subs)
    session = await open_session(edge_nc)
    assert len(edge_nc._subs) == subscriptions + 1
    frames = sse_frames(session)

    async def next_frame() -> bytes:
        return await anext(frames)

    reader = asyncio.create_task(next_frame())
    await publish(runner_nc, session, CHAT_CREATED, b'{"event":"conversation.chat.created"}')
    assert (await asyncio.wait_for(reader, 5)).startswith(b"event: conversation.chat.created\n")
    # Starlette cancels the response when the client disconnects; the generator closes.
    blocked = asyncio.create_task(next_frame())
    await asyncio.sleep(0.05)
    blocked.cancel()
    with pytest.raises(asyncio.CancelledError):
        await blocked
    await asyncio.sleep(0.05)
    assert len(edge_nc._subs) == subscriptions
    await session.close()  # idempotent


async def test_a_disconnect_ends_the_event_stream_response(edge_nc: NATS, runner_nc: NATS) -> None:
    subscriptions = len(edge_nc._subs)
    session = await open_session(edge_nc)
    gone = asyncio.Event()
    first_event_sent = asyncio.Event()
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if message["type"] == "http.response.body":
            first_event_sent.set()

    scope = {"type": "http", "method": "POST", "path": "/v3/chat"}
    response = asyncio.create_task(EventStreamResponse(session)(scope, receive, send))
    await publish(runner_nc, session, CHAT_CREATED, b'{"event":"conversation.chat.created"}')
    await asyncio.wait_for(first_event_sent.wait(), 5)
    assert sent[1]["body"].startswith(b"event: conversation.chat.created\n")
    # The client goes away mid-answer: the response ends without waiting for the chat.
    gone.set()
    await asyncio.wait_for(response, 5)
    assert len(edge_nc._subs) == subscriptions
