"""Chats as the edge runs them: resolve the bot, record the chat, queue it for the runners, and
follow its events until it ends (wire contract sections 2 and 3).

The order matters. The edge subscribes to the chat's event subject *before* the registry
records the chat and before the request is queued, so not even a runner that starts at once
can publish an event nobody hears. The registry is asked first (CreateChat) so that a foreign
conversation is a plain 404 and nothing is queued.

A `ChatSession` is one request's view of one chat. Events arrive by a NATS callback and wait in
a queue for the response to take them; the payloads are the runner's bytes, written to the
client as they are. Two watchdogs guard the wait, on a single timer that is re-armed only when
it fires (never per event):

- queued: no runner has said a word within `chat_queue_timeout_s`. The edge asks the registry
  to fail the chat (AbortQueuedChat, 503). If a runner took it meanwhile the registry refuses,
  and the session keeps waiting for the runner's events.
- started: a runner spoke, then nothing (no event, no heartbeat) for `chat_runner_lost_s`. The
  stream fails with 500. The runner's work queue message is redelivered after its ack wait,
  and the next runner records the loss in the registry (see services/runner/chat_run.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc
import orjson
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from cozeplus.chat_protocol import (
    CHAT_CANCELED,
    CHAT_FAILED,
    EVENT_HEADER,
    HEARTBEAT_EVENT,
    MESSAGE_COMPLETED,
    MESSAGE_DELTA,
    TERMINAL_CHAT_EVENTS,
    ChatRequest,
    InputMessage,
)
from cozeplus.chat_wire import chat_event, chat_object, json_object, sse_frame, stream_trailer
from cozeplus.rpc.v1 import conversations_pb2 as cpb
from cozeplus.rpc.v1 import registry_pb2 as pb
from cozeplus.subjects import chat_cancel, chat_events
from cozeplus.vocabulary import ChatStatus, MessageType
from services.edge.chat_bus import CHAT_UNAVAILABLE_MSG
from services.edge.errors import ApiError
from services.edge.runtime import EdgeRuntime
from services.edge.schemas.chat import ChatMessageIn, ChatOptions
from services.edge.schemas.common import MAX_ID

if TYPE_CHECKING:
    from cozeplus.rpc.v1.conversations_pb2_grpc import ConversationsAsyncStub

log = logging.getLogger(__name__)

NO_RUNNER_CODE = 503
NO_RUNNER_MSG = "no runner available to run this chat; retry later"
RUNNER_LOST_CODE = 500
RUNNER_LOST_MSG = "runner lost: the runner running this chat stopped responding; please retry"
QUEUE_FAILED_MSG = "the chat could not be queued; retry later"
_QUEUE_HEADERS_ALLOWANCE = 128


@dataclass(frozen=True, slots=True)
class ChatTarget:
    """Which configuration of a bot a chat runs: a published version, or 0 for the draft."""

    bot_id: int
    bot_version: int
    model_id: str


async def published_target(runtime: EdgeRuntime, owner_id: int, bot_id: int) -> ChatTarget:
    """The bot's latest published version; an unknown, foreign, deleted or never published
    bot is a 404 (the registry says which)."""
    version = await runtime.registry.bots.GetVersion(
        pb.GetVersionRequest(owner_id=owner_id, bot_id=bot_id, version=0)
    )
    return ChatTarget(bot_id, version.version, version.config.model.model_id)


async def draft_target(runtime: EdgeRuntime, owner_id: int, bot_id: int) -> ChatTarget:
    draft = await runtime.registry.bots.GetDraft(pb.BotRef(owner_id=owner_id, bot_id=bot_id))
    return ChatTarget(bot_id, 0, draft.config.model.model_id)


def input_messages(additional: Sequence[ChatMessageIn], query: str | None) -> list[ChatMessageIn]:
    """The run's input: the additional messages, then `query` as one more user message."""
    messages = list(additional)
    if query is not None and query.strip():
        messages.append(ChatMessageIn(role="user", content=query))
    if not messages:
        raise ApiError(
            400, "additional_messages is required: send at least one message (or a query)"
        )
    return messages


def _meta_json(meta_data: dict[str, str]) -> str:
    return orjson.dumps(meta_data).decode() if meta_data else ""


async def start_chat(
    runtime: EdgeRuntime,
    *,
    owner_id: int,
    user_id: str,
    target: ChatTarget,
    conversation_id: int | None,
    messages: Sequence[ChatMessageIn],
    options: ChatOptions,
) -> ChatSession:
    """Records the chat and queues it; returns the session following its events. Fails with
    a plain error (nothing queued) when the conversation is not the caller's."""
    bus, conversations = runtime.chat, runtime.registry.conversations
    nc = bus.nc
    chat_id = bus.next_id()
    _check_queueable(
        _chat_request(
            # The largest values the registry could fill in: an upper bound of the size.
            chat_id=chat_id,
            conversation_id=MAX_ID,
            section_id=MAX_ID,
            created_at=MAX_ID,
            owner_id=owner_id,
            user_id=user_id,
            target=target,
            messages=messages,
            options=options,
        ),
        nc.max_payload,
    )
    session = ChatSession(
        nc=nc,
        conversations=conversations,
        owner_id=owner_id,
        chat_id=chat_id,
        queue_timeout_s=runtime.settings.chat_queue_timeout_s,
        runner_lost_s=runtime.settings.chat_runner_lost_s,
    )
    await session.open()
    try:
        run = await conversations.CreateChat(
            cpb.CreateChatRequest(
                owner_id=owner_id,
                user_id=user_id,
                chat_id=chat_id,
                conversation_id=conversation_id or 0,
                bot_id=target.bot_id,
                bot_version=target.bot_version,
                model_id=target.model_id,
                messages=[
                    cpb.NewMessage(
                        role=m.role,
                        type=m.type,
                        content=m.content,
                        content_type=m.content_type,
                        meta_data_json=_meta_json(m.meta_data),
                    )
                    for m in messages
                ],
                meta_data_json=_meta_json(options.meta_data),
                auto_save_history=options.auto_save_history,
            )
        )
        request = _chat_request(
            chat_id=chat_id,
            conversation_id=run.conversation_id,
            section_id=run.section_id,
            created_at=run.created_at,
            owner_id=owner_id,
            user_id=user_id,
            target=target,
            messages=messages,
            options=options,
        )
        try:
            await bus.queue(request)
        except Exception as exc:
            log.error("chat %d: could not queue it: %r", chat_id, exc)
            # Recorded but never queued: end it, so it does not sit "created" forever.
            with contextlib.suppress(grpc.aio.AioRpcError):
                await conversations.AbortQueuedChat(
                    cpb.AbortQueuedChatRequest(
                        owner_id=owner_id,
                        chat_id=chat_id,
                        status=ChatStatus.FAILED,
                        last_error=cpb.ChatError(code=503, msg=QUEUE_FAILED_MSG),
                    )
                )
            raise ApiError(503, QUEUE_FAILED_MSG) from None
        session.start(run)
    except BaseException:
        await session.close()
        raise
    return session


async def resume_chat(
    runtime: EdgeRuntime,
    *,
    owner_id: int,
    conversation_id: int,
    chat_id: int,
    outputs: Sequence[tuple[str, str]],
) -> ChatSession:
    """Hands a paused chat its client-side tool outputs and queues it again, for whichever
    runner takes it; returns the session following the continued run. A chat that is not
    waiting for outputs, or outputs that do not match its calls, are a 400 with nothing
    changed (wire contract section 7)."""
    bus, conversations = runtime.chat, runtime.registry.conversations
    if not bus.ready:
        raise ApiError(503, CHAT_UNAVAILABLE_MSG)
    session = ChatSession(
        nc=bus.nc,
        conversations=conversations,
        owner_id=owner_id,
        chat_id=chat_id,
        queue_timeout_s=runtime.settings.chat_queue_timeout_s,
        runner_lost_s=runtime.settings.chat_runner_lost_s,
    )
    await session.open()
    try:
        try:
            run = await conversations.SubmitToolOutputs(
                cpb.SubmitToolOutputsRequest(
                    owner_id=owner_id,
                    conversation_id=conversation_id,
                    chat_id=chat_id,
                    tool_outputs=[
                        cpb.ToolOutput(tool_call_id=call_id, output=output)
                        for call_id, output in outputs
                    ],
                )
            )
        except grpc.aio.AioRpcError as err:
            if err.code() == grpc.StatusCode.FAILED_PRECONDITION:
                msg = err.details() or "the chat is not waiting for tool outputs"
                raise ApiError(400, msg) from None
            raise
        request = ChatRequest(
            chat_id=run.id,
            conversation_id=run.conversation_id,
            section_id=run.section_id,
            owner_id=owner_id,
            user_id=run.user_id,
            bot_id=run.bot_id,
            bot_version=run.bot_version,
            messages=[],
            meta_data=json_object(run.meta_data_json),
            auto_save_history=run.auto_save_history,
            created_at=run.created_at,
            resume_id=bus.next_id(),
        )
        try:
            await bus.queue(request)
        except Exception as exc:
            log.error("chat %d: could not queue its resumption: %r", chat_id, exc)
            with contextlib.suppress(grpc.aio.AioRpcError):
                await conversations.AbortQueuedChat(
                    cpb.AbortQueuedChatRequest(
                        owner_id=owner_id,
                        chat_id=chat_id,
                        status=ChatStatus.FAILED,
                        last_error=cpb.ChatError(code=503, msg=QUEUE_FAILED_MSG),
                    )
                )
            raise ApiError(503, QUEUE_FAILED_MSG) from None
        session.start(run)
    except BaseException:
        await session.close()
        raise
    return session


def _chat_request(
    *,
    chat_id: int,
    conversation_id: int,
    section_id: int,
    created_at: int,
    owner_id: int,
    user_id: str,
    target: ChatTarget,
    messages: Sequence[ChatMessageIn],
    options: ChatOptions,
) -> ChatRequest:
    return ChatRequest(
        chat_id=chat_id,
        conversation_id=conversation_id,
        section_id=section_id,
        owner_id=owner_id,
        user_id=user_id,
        bot_id=target.bot_id,
        bot_version=target.bot_version,
        messages=[
            InputMessage(
                role=m.role,
                type=m.type,
                content=m.content,
                content_type=m.content_type,
                meta_data=m.meta_data,
            )
            for m in messages
        ],
        custom_variables=options.custom_variables,
        meta_data=options.meta_data,
        extra_params=options.extra_params,
        parameters=options.parameters,
        auto_save_history=options.auto_save_history,
        created_at=created_at,
    )


def _check_queueable(request: ChatRequest, max_payload: int) -> None:
    """Refuses, before anything is recorded, a chat too large for one NATS message: a body
    just under max_body_bytes grows by the request's own fields on the queue, and without this
    it would be stored, then fail to queue (a 503 and a failed chat left behind)."""
    # The queue's headers (the chat id for deduplication) count against the limit too.
    size = len(request.encode()) + _QUEUE_HEADERS_ALLOWANCE
    if size > max_payload:
        raise ApiError(
            413,
            f"request too large to run: the chat would take {size} bytes on the message queue, "
            f"which carries at most {max_payload}; send less content",
        )


# ---------------------------------------------------------------------------- session


class _Watchdog(enum.Enum):
    QUEUE_TIMEOUT = enum.auto()
    RUNNER_LOST = enum.auto()


@dataclass(frozen=True, slots=True)
class ChatOutcome:
    """How a chat ended, for a non-streaming answer."""

    event: str
    chat: dict[str, Any]
    answer: str
    # No runner ever took it (the queue timed out): the request itself could not be served.
    never_started: bool = False


# Line breaks that JSON leaves unescaped inside strings, but that line readers split on:
# cozepy reads streams with httpx's iter_lines, which splits like str.splitlines (NEL, LINE
# SEPARATOR and PARAGRAPH SEPARATOR included), so an answer containing one would cut its
# `data:` line in two and the SDK would reject the stream. In JSON text these characters can
# only occur inside strings, where the \u escape stands for the very same text. (The other
# characters splitlines breaks on are control characters, which JSON always escapes.)
def _event_name(msg: Msg) -> str:
    headers = msg.headers
    return headers.get(EVENT_HEADER, "") if headers else ""


class ChatSession:
    def __init__(
        self,
        *,
        nc: NATS,
        conversations: ConversationsAsyncStub,
        owner_id: int,
        chat_id: int,
        queue_timeout_s: float,
        runner_lost_s: float,
    ) -> None:
        self.chat_id = chat_id
        self._nc = nc
        self._conversations = conversations
        self._owner_id = owner_id
        self._queue_timeout_s = queue_timeout_s
        self._runner_lost_s = runner_lost_s
        self._loop = asyncio.get_running_loop()
        self._events: asyncio.Queue[Msg | _Watchdog] = asyncio.Queue()
        self._subscription: Subscription | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._run = cpb.ChatRun()
        self._queued_at = 0.0
        # Anything from the chat's subject (heartbeats included) means a runner has it.
        self._runner_heard = False
        self._last_heard = 0.0
        self._closed = False

    async def open(self) -> None:
        self._subscription = await self._nc.subscribe(
            chat_events(self.chat_id), cb=self._on_message
        )

    def start(self, run: cpb.ChatRun) -> None:
        """The chat is queued: from now on the watchdogs run."""
        self._run = run
        self._queued_at = self._loop.time()
        self._arm(self._queued_at + self._queue_timeout_s)

    async def close(self) -> None:
        """Stops listening. Idempotent; the chat itself runs on (a client that went away
        does not cancel it)."""
        if self._closed:
            return
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            # Shielded: a disconnecting client cancels the response task, and the UNSUB must
            # still reach the server.
            await asyncio.shield(_unsubscribe(subscription))

    # --------------------------------------------------------------------- consumers

    async def frames(self) -> AsyncIterator[bytes]:
        """The SSE stream: every event of the chat as its runner encoded it, then the trailer.
        Heartbeats are never written."""
        try:
            while True:
                item = await self._events.get()
                if isinstance(item, _Watchdog):
                    chat = await self._on_watchdog(item)
                    if chat is None:
                        continue
                    yield sse_frame(CHAT_FAILED, chat_event(CHAT_FAILED, chat))
                    for name, data in stream_trailer(CHAT_FAILED, chat):
                        yield sse_frame(name, data)
                    return
                name = _event_name(item)
                yield sse_frame(name, item.data)
                if name in TERMINAL_CHAT_EVENTS:
                    # Once per chat: the trailer of a failed chat repeats its last_error.
                    for trailer_name, data in stream_trailer(name, orjson.loads(item.data)):
                        yield sse_frame(trailer_name, data)
                    return
        finally:
            await self.close()

    async def outcome(self) -> ChatOutcome:
        """Waits for the chat to end (non-streaming chat). A chat that failed or was canceled
        mid-answer still returns what the model had said (its deltas)."""
        deltas: list[str] = []
        answer: str | None = None
        try:
            while True:
                item = await self._events.get()
                if isinstance(item, _Watchdog):
                    chat = await self._on_watchdog(item)
                    if chat is not None:
                        partial = "".join(deltas)
                        return ChatOutcome(CHAT_FAILED, chat, partial, not self._runner_heard)
                    continue
                name = _event_name(item)
                if name == MESSAGE_DELTA:
                    deltas.append(orjson.loads(item.data).get("content", ""))
                elif name == MESSAGE_COMPLETED:
                    message = orjson.loads(item.data)
                    # function_call / tool_response messages complete too; only the answer
                    # is the chat's content.
                    if message.get("type", MessageType.ANSWER) == MessageType.ANSWER:
                        answer = message.get("content", "")
                elif name in TERMINAL_CHAT_EVENTS:
                    chat = orjson.loads(item.data)
                    # Stream-only fields; the JSON answer is the Chat object itself.
                    chat.pop("event", None)
                    chat.pop("run_record_item", None)
                    return ChatOutcome(name, chat, "".join(deltas) if answer is None else answer)
        finally:
            await self.close()

    # --------------------------------------------------------------------- internals

    async def _on_message(self, msg: Msg) -> None:
        self._runner_heard = True
        self._last_heard = self._loop.time()
        name = _event_name(msg)
        if name and name != HEARTBEAT_EVENT:
            self._events.put_nowait(msg)

    def _arm(self, when: float) -> None:
        self._timer = self._loop.call_at(when, self._check)

    def _check(self) -> None:
        self._timer = None
        if self._closed:
            return
        if self._runner_heard:
            due, alarm = self._last_heard + self._runner_lost_s, _Watchdog.RUNNER_LOST
        else:
            due, alarm = self._queued_at + self._queue_timeout_s, _Watchdog.QUEUE_TIMEOUT
        if self._loop.time() >= due:
            self._events.put_nowait(alarm)
        else:
            self._arm(due)

    async def _on_watchdog(self, alarm: _Watchdog) -> dict[str, Any] | None:
        """The failed Chat to end the stream with, or None to keep waiting."""
        now = self._loop.time()
        if alarm is _Watchdog.RUNNER_LOST or self._runner_heard:
            # Events may have come in between the alarm and now.
            due = self._last_heard + self._runner_lost_s
            if now < due:
                self._arm(due)
                return None
            log.warning(
                "chat %d: no word from its runner for %.0fs; failing the stream",
                self.chat_id,
                now - self._last_heard,
            )
            return chat_object(self._failed_run(RUNNER_LOST_CODE, RUNNER_LOST_MSG))
        try:
            run = await self._conversations.AbortQueuedChat(
                cpb.AbortQueuedChatRequest(
                    owner_id=self._owner_id,
                    chat_id=self.chat_id,
                    status=ChatStatus.FAILED,
                    last_error=cpb.ChatError(code=NO_RUNNER_CODE, msg=NO_RUNNER_MSG),
                )
            )
        except grpc.aio.AioRpcError as err:
            if err.code() == grpc.StatusCode.FAILED_PRECONDITION:
                # A runner took it just now; its events are on their way.
                log.info("chat %d: picked up by a runner at the queue deadline", self.chat_id)
                self._runner_heard = True
                self._last_heard = now
                self._arm(now + self._runner_lost_s)
                return None
            log.error("chat %d: could not fail it after the queue timeout: %s", self.chat_id, err)
            run = self._failed_run(NO_RUNNER_CODE, NO_RUNNER_MSG)
        log.warning("chat %d: no runner started it in %.0fs", self.chat_id, self._queue_timeout_s)
        return chat_object(run)

    def _failed_run(self, code: int, msg: str) -> cpb.ChatRun:
        """The chat as failed, for a failure the registry has not recorded (yet)."""
        run = cpb.ChatRun()
        run.CopyFrom(self._run)
        run.status = ChatStatus.FAILED
        run.failed_at = int(time.time())
        run.last_error.code = code
        run.last_error.msg = msg
        return run


async def _unsubscribe(subscription: Subscription) -> None:
    try:
        await subscription.unsubscribe()
    except Exception as exc:  # connection closed or draining: interest is gone anyway
        log.debug("unsubscribe failed: %r", exc)


# ------------------------------------------------------------------- answers, cancel


def answer_data(outcome: ChatOutcome) -> dict[str, Any]:
    """A non-streaming chat's `data`: the Chat merged with its answer. A chat no runner
    picked up is a 503; other failures are a Chat with status failed and its last_error
    (like the official API, which reports a run's failure in the Chat, not the HTTP status)."""
    if outcome.never_started:
        # Told apart by how it ended, not by its code: a model can fail with 503 too.
        raise ApiError(503, outcome.chat["last_error"]["msg"] or NO_RUNNER_MSG)
    return {
        **outcome.chat,
        "content": outcome.answer,
        "role": "assistant",
        "type": MessageType.ANSWER,
        "content_type": "text",
    }


async def cancel_chat(
    runtime: EdgeRuntime, owner_id: int, conversation_id: int, chat_id: int
) -> dict[str, Any]:
    """Cancels a queued or running chat and returns it; a finished one is a 409."""
    if not runtime.chat.ready:
        raise ApiError(503, CHAT_UNAVAILABLE_MSG)
    nc, conversations = runtime.chat.nc, runtime.registry.conversations
    reply = await conversations.CancelChat(
        cpb.CancelChatRequest(owner_id=owner_id, conversation_id=conversation_id, chat_id=chat_id)
    )
    run = reply.run
    if not reply.running:
        # It never reached a runner and is canceled now: end its streams, on every edge.
        chat = chat_object(run)
        await nc.publish(
            chat_events(run.id),
            chat_event(CHAT_CANCELED, chat),
            headers={EVENT_HEADER: CHAT_CANCELED},
        )
        return chat

    ended = asyncio.Event()

    async def on_event(msg: Msg) -> None:
        if _event_name(msg) in TERMINAL_CHAT_EVENTS:
            ended.set()

    subscription = await nc.subscribe(chat_events(run.id), cb=on_event)
    try:
        # Every runner hears this; the one holding the chat stops the model and finishes
        # the chat as canceled, keeping the partial answer.
        await nc.publish(chat_cancel(run.id), b"")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ended.wait(), runtime.settings.chat_cancel_wait_s)
    finally:
        await _unsubscribe(subscription)
    if not ended.is_set():
        log.warning("chat %d: its runner did not confirm the cancel in time", run.id)
    current = await conversations.GetChat(
        cpb.ChatRef(owner_id=owner_id, chat_id=run.id, conversation_id=run.conversation_id)
    )
    return chat_object(current)
