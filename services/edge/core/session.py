"""One request's view of one chat: its events as they arrive, guarded by two watchdogs.

Events arrive by a NATS callback (through ChatBus) and wait in a queue for the consumer to
take them; each is the runner's payload bytes with its event name. Transports consume
`events()`: the HTTP route writes each as an SSE frame, untouched; the gRPC API parses each
payload once into its typed message. The edge synthesizes only what no runner can say (a
chat no runner took, a runner that went silent) and the stream trailer, with the same
builders the runners use (cozeplus.chat_wire).

Watchdogs, on a single timer that is never re-armed per event:

- queued: no runner has said a word within `queue_timeout_s`. The registry is asked to fail
  the chat (AbortQueuedChat, 503). If a runner took it meanwhile the registry refuses, and
  the session keeps waiting for the runner's events.
- started: a runner spoke, then nothing (no event, no heartbeat) for `runner_lost_s`.
  If the registry says the chat ended meanwhile (its events were lost in transit, e.g. while
  this edge reconnected to NATS), the stream is repaired and ended as stored. Otherwise it
  fails with 500. The runner's work queue message is redelivered after its ack wait,
  and the next runner records the loss in the registry (see services/runner/chat_run.py).
  The timer moves to `first word + runner_lost_s` when the runner first speaks, and from
  then on, when it fires early, to `last word + runner_lost_s`: so the alarm comes exactly
  `runner_lost_s` after the runner's last word, never later.

Events are numbered by their runner (services/edge/event_sequence.py): a duplicate is dropped.
After a gap (an event lost in transit, as at a NATS restart) the session holds back the
answer's further deltas and, when the chat ends, repairs the stream from what the registry
stored: the part of the stored answer the client has not seen goes out as one last delta
(so the deltas add up to the stored answer), then the answer's completed message and any
stored function_call / tool_response message the client missed. When the stored state can't
repair it (the registry unreachable, an answer not stored), the held events go out followed
by an `error` event naming the loss, before the terminal event: a client never takes deltas
that don't add up without being told. A non-streaming chat answers with the stored answer.
Both transports (SSE and gRPC) consume these same events.

Time comes from a `Clock` (the event loop by default) so the watchdogs can be tested with a
fake one, without sleeping.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import grpc
import orjson
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from cozeplus.chat_protocol import (
    CHAT_CANCELED,
    CHAT_COMPLETED,
    CHAT_FAILED,
    CHAT_REQUIRES_ACTION,
    ERROR,
    EVENT_HEADER,
    HEARTBEAT_EVENT,
    MESSAGE_COMPLETED,
    MESSAGE_DELTA,
    TERMINAL_CHAT_EVENTS,
)
from cozeplus.chat_wire import (
    chat_event,
    chat_object,
    error_event,
    join_answers,
    message_event,
    stream_trailer,
)
from cozeplus.rpc.v1 import conversations_pb2 as cpb
from cozeplus.vocabulary import ChatStatus, MessageType
from services.edge.event_sequence import EventSequence

if TYPE_CHECKING:
    from cozeplus.rpc.v1.conversations_pb2_grpc import ConversationsAsyncStub
    from services.edge.core.bus import ChatBus

log = logging.getLogger(__name__)

NO_RUNNER_CODE = 503
NO_RUNNER_MSG = "no runner available to run this chat; retry later"
RUNNER_LOST_CODE = 500
RUNNER_LOST_MSG = "runner lost: the runner running this chat stopped responding; please retry"
STREAM_INCOMPLETE_CODE = 5100
# How long reading the stored chat, to repair a stream, may take.
_STORED_READ_TIMEOUT_S = 5.0
# The event that ends a stream for a run stored in this status.
STORED_END_EVENTS = {
    ChatStatus.COMPLETED: CHAT_COMPLETED,
    ChatStatus.FAILED: CHAT_FAILED,
    ChatStatus.CANCELED: CHAT_CANCELED,
    ChatStatus.REQUIRES_ACTION: CHAT_REQUIRES_ACTION,
}


class TimerHandle(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    """What the session needs of time; asyncio's event loop is one."""

    def time(self) -> float: ...

    def call_at(self, when: float, callback: Callable[[], object]) -> TimerHandle: ...


@dataclass(frozen=True, slots=True)
class ChatEvent:
    """One event of a chat's stream: its name and its payload, the wire's one-line JSON."""

    name: str
    data: bytes


@dataclass(frozen=True, slots=True)
class ChatOutcome:
    """How a chat ended, for a non-streaming answer."""

    event: str
    chat: dict[str, Any]
    answer: str
    # No runner ever took it (the queue timed out): the request itself could not be served.
    never_started: bool = False


class _Watchdog(enum.Enum):
    QUEUE_TIMEOUT = enum.auto()
    RUNNER_LOST = enum.auto()


class _Abandoned(enum.Enum):
    """The consumer went away (see ChatSession.abandon)."""

    MARK = enum.auto()


def _event_name(msg: Msg) -> str:
    headers = msg.headers
    return headers.get(EVENT_HEADER, "") if headers else ""


def terminal_events(name: str, data: bytes) -> list[ChatEvent]:
    """A terminal chat event followed by the trailer that closes every stream."""
    trailer = stream_trailer(name, orjson.loads(data))
    return [ChatEvent(name, data), *(ChatEvent(n, d) for n, d in trailer)]


class ChatSession:
    def __init__(
        self,
        *,
        bus: ChatBus,
        conversations: ConversationsAsyncStub,
        owner_id: int,
        chat_id: int,
        queue_timeout_s: float,
        runner_lost_s: float,
        clock: Clock | None = None,
    ) -> None:
        self.chat_id = chat_id
        self._bus = bus
        self._conversations = conversations
        self._owner_id = owner_id
        self._queue_timeout_s = queue_timeout_s
        self._runner_lost_s = runner_lost_s
        self._clock: Clock = clock or asyncio.get_running_loop()
        self._events: asyncio.Queue[Msg | _Watchdog | _Abandoned] = asyncio.Queue()
        # Runner messages in _events (watchdog ticks not counted): see pending().
        self._queued_messages = 0
        self._subscription: Subscription | None = None
        self._timer: TimerHandle | None = None
        self._started = False
        self._run = cpb.ChatRun()
        self._queued_at = 0.0
        # Anything from the chat's subject (heartbeats included) means a runner has it.
        self._runner_heard = False
        self._last_heard = 0.0
        self._closed = False
        self._sequence = EventSequence()
        # The chat's end came from the registry, not its events: repair what was missed.
        self._ended_unheard = False

    @property
    def run(self) -> cpb.ChatRun:
        """The chat as the registry recorded it when it was queued."""
        return self._run

    async def open(self) -> None:
        self._subscription = await self._bus.follow(self.chat_id, self._on_message)

    def start(self, run: cpb.ChatRun) -> None:
        """The chat is queued: from now on the watchdogs run."""
        self._run = run
        self._started = True
        self._queued_at = self._clock.time()
        if self._runner_heard:  # a fast runner spoke before we got here
            self._arm(self._last_heard + self._runner_lost_s)
        else:
            self._arm(self._queued_at + self._queue_timeout_s)

    async def close(self) -> None:
        """Stops listening. Idempotent; the chat itself runs on (a client that went away
        does not cancel it)."""
        if self._closed:
            return
        self._closed = True
        self._cancel_timer()
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            # Shielded: a disconnecting client cancels the response task, and the UNSUB must
            # still reach the server.
            await asyncio.shield(_unsubscribe(subscription))

    def abandon(self) -> None:
        """The consumer went away (a client disconnected): `events()` ends at once, without
        a trailer, and stops listening. Harmless once the stream has ended."""
        if not self._closed:
            self._events.put_nowait(_Abandoned.MARK)

    # --------------------------------------------------------------------- consumers

    def pending(self) -> int:
        """Runner events queued and not taken yet: a writer may wait for them to batch its
        writes (a queued watchdog tick may yield nothing, so it does not count)."""
        return self._queued_messages

    async def events(self) -> AsyncGenerator[ChatEvent, None]:
        """Every event of the chat, then the trailer; heartbeats are never passed on. Ends
        after the trailer; stops listening when the consumer stops (a client gone away)."""
        # Kept to repair the stream should events be lost: the answer deltas passed on (raw,
        # read only then), the answer events held back after a gap, the messages completed.
        written: list[bytes] = []
        held: list[Msg] = []
        completed_ids: set[str] = set()
        try:
            while True:
                item = await self._events.get()
                if item is _Abandoned.MARK:
                    return
                if not isinstance(item, _Watchdog):
                    self._queued_messages -= 1
                if isinstance(item, _Watchdog):
                    ending = await self._on_watchdog(item)
                    if ending is None:
                        continue
                    name, chat = ending
                    if self._ended_unheard:
                        for event in await self._repair(written, held, completed_ids):
                            yield event
                    for event in terminal_events(name, chat_event(name, chat)):
                        yield event
                    return
                name = _event_name(item)
                if name in TERMINAL_CHAT_EVENTS:
                    if self._sequence.lost:
                        for event in await self._repair(written, held, completed_ids):
                            yield event
                    # Once per chat: the trailer of a failed chat repeats its last_error.
                    for event in terminal_events(name, item.data):
                        yield event
                    return
                if name == MESSAGE_DELTA:
                    if self._sequence.lost:
                        held.append(item)
                        continue
                    written.append(item.data)
                elif name == MESSAGE_COMPLETED:
                    message_id, is_answer = _completed_message(item.data)
                    if is_answer and self._sequence.lost:
                        held.append(item)
                        continue
                    completed_ids.add(message_id)
                yield ChatEvent(name, item.data)
        finally:
            await self.close()

    async def outcome(self) -> ChatOutcome:
        """Waits for the chat to end (non-streaming chat). A chat that failed or was canceled
        mid-answer still returns what the model had said (its deltas)."""
        said = _SaidText()
        try:
            while True:
                item = await self._events.get()
                if item is _Abandoned.MARK:
                    continue  # only streams are abandoned
                if not isinstance(item, _Watchdog):
                    self._queued_messages -= 1
                if isinstance(item, _Watchdog):
                    ending = await self._on_watchdog(item)
                    if ending is not None:
                        name, chat = ending
                        text = said.text()
                        if self._ended_unheard:
                            stored = await self._stored_messages()
                            text = _answer_text(stored) if stored is not None else text
                        return ChatOutcome(name, chat, text, not self._runner_heard)
                    continue
                name = _event_name(item)
                if name == MESSAGE_DELTA:
                    said.delta(orjson.loads(item.data))
                elif name == MESSAGE_COMPLETED:
                    said.completed(orjson.loads(item.data))
                elif name in TERMINAL_CHAT_EVENTS:
                    chat = orjson.loads(item.data)
                    # Stream-only fields; the JSON answer is the Chat object itself.
                    chat.pop("event", None)
                    chat.pop("run_record_item", None)
                    text = said.text()
                    if self._sequence.lost:
                        # A completed answer may be what was lost: the stored ones are whole
                        # (unless the chat stores no final answer: auto_save_history false).
                        stored = await self._stored_messages()
                        whole = _answer_text(stored) if stored is not None else ""
                        heard = said.completed_text()
                        if whole and (not heard or _continues(whole, heard)):
                            text = whole
                    return ChatOutcome(name, chat, text)
        finally:
            await self.close()

    # --------------------------------------------------------------------- internals

    async def _on_message(self, msg: Msg) -> None:
        first_word = not self._runner_heard
        self._runner_heard = True
        self._last_heard = self._clock.time()
        if first_word and self._timer is not None:
            # The queue deadline no longer applies; the runner-lost one starts now.
            self._cancel_timer()
            self._arm(self._last_heard + self._runner_lost_s)
        if not self._sequence.accept(msg.headers):
            log.info("chat %d: dropped a duplicate event", self.chat_id)
            return
        name = _event_name(msg)
        if name and name != HEARTBEAT_EVENT:
            self._queued_messages += 1
            self._events.put_nowait(msg)

    async def _stored_run(self) -> cpb.ChatRun | None:
        try:
            return await self._conversations.GetChat(
                cpb.ChatRef(owner_id=self._owner_id, chat_id=self.chat_id),
                timeout=_STORED_READ_TIMEOUT_S,
            )
        except grpc.aio.AioRpcError as err:
            log.warning("chat %d: cannot read its stored state: %s", self.chat_id, err.code())
            return None

    async def _stored_messages(self) -> list[cpb.Message] | None:
        """The chat's stored messages, or None if the registry can't say."""
        try:
            reply = await self._conversations.ListChatMessages(
                cpb.ChatRef(owner_id=self._owner_id, chat_id=self.chat_id),
                timeout=_STORED_READ_TIMEOUT_S,
            )
        except grpc.aio.AioRpcError as err:
            log.warning("chat %d: cannot read its stored messages: %s", self.chat_id, err.code())
            return None
        return list(reply.messages)

    async def _repair(
        self, written: Sequence[bytes], held: Sequence[Msg], completed_ids: set[str]
    ) -> list[ChatEvent]:
        """The events that make a stream that lost events whole, passed on before its
        terminal event: from the stored messages when they can, else the held events and an
        error naming the loss."""
        lost = self._sequence.lost
        streamed = "".join(str(orjson.loads(d).get("content", "")) for d in written)
        stored = await self._stored_messages()
        held_text = any(_event_name(m) == MESSAGE_DELTA for m in held)
        if stored is not None:
            answers = [m for m in stored if m.type == MessageType.ANSWER]
            text = _answer_text(stored)
            # An answer that was streamed must be stored to be repaired from the store.
            if text.startswith(streamed) and (answers or not (streamed or held_text)):
                events = _missed_events(stored, len(streamed), completed_ids)
                log.warning(
                    "chat %d: %d events lost in transit; stream repaired from the stored chat",
                    self.chat_id,
                    lost,
                )
                return events
        log.warning(
            "chat %d: %d events lost in transit; telling the client its stream is incomplete",
            self.chat_id,
            lost,
        )
        events = [ChatEvent(_event_name(m), m.data) for m in held]
        events.append(
            ChatEvent(
                ERROR,
                error_event(
                    STREAM_INCOMPLETE_CODE,
                    f"stream incomplete: {lost} event(s) of this chat were lost in transit, so "
                    "the deltas received may not add up to the answer; read the stored chat "
                    "with /v3/chat/message/list",
                ),
            )
        )
        return events

    def _arm(self, when: float) -> None:
        self._timer = self._clock.call_at(when, self._check)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _check(self) -> None:
        self._timer = None
        if self._closed:
            return
        if self._runner_heard:
            due, alarm = self._last_heard + self._runner_lost_s, _Watchdog.RUNNER_LOST
        else:
            due, alarm = self._queued_at + self._queue_timeout_s, _Watchdog.QUEUE_TIMEOUT
        if self._clock.time() >= due:
            self._events.put_nowait(alarm)
        else:
            self._arm(due)

    async def _on_watchdog(self, alarm: _Watchdog) -> tuple[str, dict[str, Any]] | None:
        """The terminal event and Chat to end the stream with, or None to keep waiting."""
        now = self._clock.time()
        if alarm is _Watchdog.RUNNER_LOST or self._runner_heard:
            # Events may have come in between the alarm and now.
            due = self._last_heard + self._runner_lost_s
            if now < due:
                if self._timer is None:
                    self._arm(due)
                return None
            stored = await self._stored_run()
            if stored is not None and stored.status in STORED_END_EVENTS:
                log.warning(
                    "chat %d: ended %s but its end never reached this edge; ending the stream "
                    "as stored",
                    self.chat_id,
                    stored.status,
                )
                self._ended_unheard = True
                return STORED_END_EVENTS[ChatStatus(stored.status)], chat_object(stored)
            log.warning(
                "chat %d: no word from its runner for %.0fs; failing the stream",
                self.chat_id,
                now - self._last_heard,
            )
            return CHAT_FAILED, chat_object(self._failed_run(RUNNER_LOST_CODE, RUNNER_LOST_MSG))
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
                if self._timer is None:
                    self._arm(now + self._runner_lost_s)
                return None
            log.error("chat %d: could not fail it after the queue timeout: %s", self.chat_id, err)
            run = self._failed_run(NO_RUNNER_CODE, NO_RUNNER_MSG)
        log.warning("chat %d: no runner started it in %.0fs", self.chat_id, self._queue_timeout_s)
        return CHAT_FAILED, chat_object(run)

    def _failed_run(self, code: int, msg: str) -> cpb.ChatRun:
        """The chat as failed, for a failure the registry has not recorded (yet)."""
        run = cpb.ChatRun()
        run.CopyFrom(self._run)
        run.status = ChatStatus.FAILED
        run.failed_at = int(time.time())
        run.last_error.code = code
        run.last_error.msg = msg
        return run


def _missed_events(
    stored: Sequence[cpb.Message], seen: int, completed_ids: set[str]
) -> list[ChatEvent]:
    """In the stored order: each answer's text past the `seen` characters of answer text
    the client had (its deltas run through the answers in order) as one delta under that
    answer's id, and every completed message the client did not get."""
    events: list[ChatEvent] = []
    for message in stored:
        if message.type == MessageType.ANSWER:
            unseen = message.content[seen:]
            seen = max(0, seen - len(message.content))
            if unseen:
                delta = cpb.Message()
                delta.CopyFrom(message)
                delta.content = unseen
                events.append(ChatEvent(MESSAGE_DELTA, message_event(MESSAGE_DELTA, delta)))
        elif message.type not in (MessageType.FUNCTION_CALL, MessageType.TOOL_RESPONSE):
            continue
        if str(message.id) not in completed_ids:
            data = message_event(MESSAGE_COMPLETED, message)
            events.append(ChatEvent(MESSAGE_COMPLETED, data))
    return events


def _continues(whole: str, tail: str) -> bool:
    """`whole` is `tail` with earlier answers before it."""
    return len(whole) > len(tail) and whole.endswith(tail)


def _completed_message(data: bytes) -> tuple[str, bool]:
    """A completed message event's message id, and whether it is the answer."""
    message = orjson.loads(data)
    kind = message.get("type", MessageType.ANSWER)
    return str(message.get("id", "")), kind == MessageType.ANSWER


def _answer_text(messages: Sequence[cpb.Message]) -> str:
    return join_answers(m.content for m in messages if m.type == MessageType.ANSWER)


class _SaidText:
    """A non-streaming chat's answer as its events tell it: every answer message in order (a
    model that spoke before a round of calls made one of its own), each its completed text
    or, for one the chat ended in the middle of, its deltas so far."""

    def __init__(self) -> None:
        self._deltas: dict[str, list[str]] = {}
        self._completed: dict[str, str] = {}

    def delta(self, message: dict[str, Any]) -> None:
        if message.get("type", MessageType.ANSWER) != MessageType.ANSWER:
            return
        self._deltas.setdefault(str(message.get("id", "")), []).append(message.get("content", ""))

    def completed(self, message: dict[str, Any]) -> None:
        # function_call / tool_response messages complete too; only answers are the content.
        if message.get("type", MessageType.ANSWER) != MessageType.ANSWER:
            return
        message_id = str(message.get("id", ""))
        self._deltas.setdefault(message_id, [])
        self._completed[message_id] = message.get("content", "")

    def completed_text(self) -> str:
        return join_answers(self._completed.values())

    def text(self) -> str:
        return join_answers(
            self._completed.get(message_id, "".join(pieces))
            for message_id, pieces in self._deltas.items()
        )


async def _unsubscribe(subscription: Subscription) -> None:
    try:
        await subscription.unsubscribe()
    except Exception as exc:  # connection closed or draining: interest is gone anyway
        log.debug("unsubscribe failed: %r", exc)
