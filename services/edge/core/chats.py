"""Chats as the edge runs them, for every transport (wire contract sections 2, 3 and 9):
resolve the bot, record the chat, queue it for the runners, follow it; cancel, retrieve; resume
a chat paused in requires_action with the client's tool outputs.

The order matters. The edge subscribes to the chat's event subject *before* the registry
records the chat and before the request is queued, so not even a runner that starts at once
can publish an event nobody hears. For a chat in an existing conversation the registry is
asked first (OpenChat), so that a foreign conversation is a plain not-found and nothing is
queued, and the runner gets the history window with the chat. A chat that starts a new
conversation has no history and no conversation to check: the edge mints the conversation's
id and queues the chat while the registry records it, taking the registry's round trip off
the time to the first token. Should the registry refuse it, the runners are told to drop it;
a runner holds nothing and publishes nothing before its StartRun finds the chat recorded.

Errors are the core's (services/edge/core/errors.py) or the registry's gRPC status (already
written for clients); each transport translates both.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import grpc
import orjson
from nats.aio.msg import Msg

from cozeplus.chat_protocol import (
    CHAT_CANCELED,
    EVENT_HEADER,
    TERMINAL_CHAT_EVENTS,
    ChatRequest,
    HistoryMessage,
    InputMessage,
)
from cozeplus.chat_wire import chat_event, chat_object, json_object
from cozeplus.published_versions import PublishedVersionCache
from cozeplus.rpc.v1 import conversations_pb2 as cpb
from cozeplus.rpc.v1 import liveness_pb2 as lpb
from cozeplus.rpc.v1 import registry_pb2 as pb
from cozeplus.vocabulary import ChatStatus, MessageType
from services.edge.core.bus import ChatBus
from services.edge.core.errors import InvalidInput, TooLarge, Unavailable
from services.edge.core.session import (
    NO_RUNNER_MSG,
    ChatOutcome,
    ChatSession,
    Clock,
)
from services.edge.core.variables import StoredVariables

if TYPE_CHECKING:
    from cozeplus.rpc.v1.conversations_pb2_grpc import ConversationsAsyncStub
    from cozeplus.rpc.v1.liveness_pb2_grpc import RunLivenessAsyncStub
    from cozeplus.rpc.v1.registry_pb2_grpc import BotRegistryAsyncStub

log = logging.getLogger(__name__)

QUEUE_FAILED_MSG = "the chat could not be queued; retry later"
NO_MESSAGES_MSG = "additional_messages is required: send at least one message (or a query)"
NOT_WAITING_MSG = "the chat is not waiting for tool outputs"
_QUEUE_HEADERS_ALLOWANCE = 128
# The largest id the registry could fill in, to bound a request's size before it exists.
_MAX_ID = 2**63 - 1
# A record the edge got no answer for may still land (see _queue_while_recording).
_RECORD_MAY_HAVE_LANDED = frozenset(
    {grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED}
)
_LATE_ABORT_S = 2.0


@dataclass(frozen=True, slots=True)
class ChatTarget:
    """Which configuration of a bot a chat runs: a published version, or 0 for the draft."""

    bot_id: int
    bot_version: int
    model_id: str
    # Whether the prompt has a `{{name}}` for variables to fill: without one the end user's
    # stored values cannot change the chat, so they are not looked up (a registry call).
    prompt_has_variables: bool = True
    # The bot's history window, asked of OpenChat so the runner gets it with the chat.
    history_rounds: int = 0


@dataclass(frozen=True, slots=True)
class ChatInput:
    """One chat request, whatever transport it came by (already validated and bounded)."""

    user_id: str
    # None or 0: a new conversation.
    conversation_id: int | None
    messages: Sequence[InputMessage]
    custom_variables: Mapping[str, str] = field(default_factory=dict)
    meta_data: Mapping[str, str] = field(default_factory=dict)
    extra_params: Mapping[str, Any] = field(default_factory=dict)
    parameters: Mapping[str, Any] = field(default_factory=dict)
    auto_save_history: bool = True


@dataclass(frozen=True, slots=True)
class ChatTimings:
    queue_timeout_s: float
    runner_lost_s: float
    cancel_wait_s: float


def _meta_json(meta_data: Mapping[str, str]) -> str:
    return orjson.dumps(dict(meta_data)).decode() if meta_data else ""


class ChatCore:
    def __init__(
        self,
        *,
        bus: ChatBus,
        bots: BotRegistryAsyncStub,
        conversations: ConversationsAsyncStub,
        timings: ChatTimings,
        variables: StoredVariables | None = None,
        clock: Clock | None = None,
        published_versions: PublishedVersionCache[pb.BotVersion] | None = None,
        liveness: RunLivenessAsyncStub | None = None,
        queue_while_recording: bool = True,
    ) -> None:
        self.bus = bus
        # Keeps the per-chat version lookup off the registry (cozeplus.published_versions).
        self._published = published_versions
        # RunLiveness.EndRun, for a cancel no runner confirms; None: left to the sweeper.
        self._liveness = liveness
        self._variables = variables
        self._bots = bots
        self._conversations = conversations
        self._timings = timings
        self._clock = clock
        # Whether the registry records chats with the ids the edge minted (OpenChat): only
        # then may a new conversation's chat be queued while it is recorded. Learned from the
        # first chat, so an edge ahead of its registry in a rolling upgrade stays in order.
        self._registry_opens_chats = False
        self.queue_while_recording = queue_while_recording

    # ------------------------------------------------------------------ targets

    async def published_target(self, owner_id: int, bot_id: int) -> ChatTarget:
        """The bot's latest published version; an unknown, foreign, deleted or never published
        bot is a not-found (the registry says which)."""
        if self._published is not None:
            version = await self._published.get(owner_id, bot_id)
        else:
            version = await self._bots.GetVersion(
                pb.GetVersionRequest(owner_id=owner_id, bot_id=bot_id, version=0)
            )
        return ChatTarget(
            bot_id,
            version.version,
            version.config.model.model_id,
            _has_placeholders(version.config.prompt),
            version.config.history_rounds,
        )

    async def draft_target(self, owner_id: int, bot_id: int) -> ChatTarget:
        draft = await self._bots.GetDraft(pb.BotRef(owner_id=owner_id, bot_id=bot_id))
        return ChatTarget(
            bot_id,
            0,
            draft.config.model.model_id,
            _has_placeholders(draft.config.prompt),
            draft.config.history_rounds,
        )

    # -------------------------------------------------------------------- start

    async def start(self, owner_id: int, target: ChatTarget, chat: ChatInput) -> ChatSession:
        """Records the chat and queues it; returns the session following its events. Fails
        (nothing queued) when the conversation is not the caller's or the input is unfit."""
        if not chat.messages:
            raise InvalidInput(NO_MESSAGES_MSG)
        bus = self.bus
        bus.check_ready()
        if self._variables is not None and target.prompt_has_variables:
            chat = await self._variables.merged(owner_id, target.bot_id, chat)
        chat_id = bus.next_id()
        # The largest values the registry could fill in: an upper bound of the size.
        _check_queueable(
            _chat_request(chat_id, _MAX_ID, _MAX_ID, _MAX_ID, owner_id, target, chat),
            bus.max_payload,
        )
        session = self._session(owner_id, chat_id)
        await session.open()
        try:
            if (
                self._registry_opens_chats
                and self.queue_while_recording
                and not chat.conversation_id
            ):
                run = await self._queue_while_recording(chat_id, owner_id, target, chat)
            else:
                run = await self._record_then_queue(chat_id, owner_id, target, chat)
            session.start(run)
        except BaseException:
            await session.close()
            raise
        return session

    async def _record_then_queue(
        self, chat_id: int, owner_id: int, target: ChatTarget, chat: ChatInput
    ) -> cpb.ChatRun:
        run, history = await self._record(chat_id, owner_id, target, chat)
        request = _chat_request(
            chat_id, run.conversation_id, run.section_id, run.created_at, owner_id, target, chat
        )
        if history is not None:
            _add_history(request, history, self.bus.max_payload)
        await self._queue(request)
        return run

    async def _queue_while_recording(
        self, chat_id: int, owner_id: int, target: ChatTarget, chat: ChatInput
    ) -> cpb.ChatRun:
        """A new conversation's chat, queued (with its empty history) while the registry
        records it (see the module's doc)."""
        conversation_id = self.bus.next_id()
        request = _chat_request(
            chat_id, conversation_id, conversation_id, int(time.time()), owner_id, target, chat
        )
        request.history = []
        request.recorded = False
        recording = asyncio.create_task(
            self._record(chat_id, owner_id, target, chat, new_conversation_id=conversation_id)
        )
        # The registry's request goes out first: a runner's StartRun then finds the chat
        # recorded more often than not.
        await asyncio.sleep(0)
        try:
            await self.bus.queue(request)
        except asyncio.CancelledError:
            recording.cancel()
            raise
        except Exception as exc:
            log.error("chat %d: could not queue it: %r", chat_id, exc)
            with contextlib.suppress(Exception):
                await recording
                await self._abort_unqueued(owner_id, chat_id)
            raise Unavailable(QUEUE_FAILED_MSG) from None
        try:
            run, _ = await recording
        except BaseException as exc:
            # Refused or not answered: the queued copy must not run (a runner that has it
            # drops it; one that takes it later gives up when StartRun never finds it).
            recording.cancel()
            with contextlib.suppress(Exception):
                await self.bus.ask_runners_to_cancel(chat_id)
            if isinstance(exc, grpc.aio.AioRpcError) and exc.code() in _RECORD_MAY_HAVE_LANDED:
                # Unanswered is not unrecorded: a record that lands late is ended, so no
                # runner starts a chat whose client was told it failed.
                with contextlib.suppress(Exception):
                    await self._abort_unqueued(owner_id, chat_id, timeout_s=_LATE_ABORT_S)
            raise
        return run

    async def _record(
        self,
        chat_id: int,
        owner_id: int,
        target: ChatTarget,
        chat: ChatInput,
        *,
        new_conversation_id: int = 0,
    ) -> tuple[cpb.ChatRun, Sequence[cpb.Message] | None]:
        """The recorded run and its history window; None when the registry is of the
        previous release (no OpenChat): the runner then reads it from StartRun."""
        request = cpb.CreateChatRequest(
            owner_id=owner_id,
            user_id=chat.user_id,
            chat_id=chat_id,
            conversation_id=chat.conversation_id or 0,
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
                for m in chat.messages
            ],
            meta_data_json=_meta_json(chat.meta_data),
            auto_save_history=chat.auto_save_history,
            history_rounds=target.history_rounds,
            new_conversation_id=new_conversation_id,
        )
        try:
            created = await self._conversations.OpenChat(request)
        except grpc.aio.AioRpcError as err:
            if err.code() != grpc.StatusCode.UNIMPLEMENTED:
                raise
            self._registry_opens_chats = False
            return await self._conversations.CreateChat(request), None
        self._registry_opens_chats = True
        return created.run, created.history

    async def _queue(self, request: ChatRequest) -> None:
        try:
            await self.bus.queue(request)
        except Exception as exc:
            log.error("chat %d: could not queue it: %r", request.chat_id, exc)
            with contextlib.suppress(grpc.aio.AioRpcError):
                await self._abort_unqueued(request.owner_id, request.chat_id)
            raise Unavailable(QUEUE_FAILED_MSG) from None

    async def _abort_unqueued(
        self, owner_id: int, chat_id: int, *, timeout_s: float | None = None
    ) -> None:
        """Recorded but never queued (or never to run): end it, so it does not sit
        "created" forever."""
        await self._conversations.AbortQueuedChat(
            cpb.AbortQueuedChatRequest(
                owner_id=owner_id,
                chat_id=chat_id,
                status=ChatStatus.FAILED,
                last_error=cpb.ChatError(code=503, msg=QUEUE_FAILED_MSG),
            ),
            timeout=timeout_s,
        )

    # ----------------------------------------------------------- cancel, retrieve

    async def cancel(self, owner_id: int, conversation_id: int, chat_id: int) -> dict[str, Any]:
        """Cancels a queued or running chat and returns it; a finished one is the registry's
        FAILED_PRECONDITION (a conflict)."""
        bus = self.bus
        bus.check_ready()
        reply = await self._conversations.CancelChat(
            cpb.CancelChatRequest(
                owner_id=owner_id, conversation_id=conversation_id, chat_id=chat_id
            )
        )
        run = reply.run
        if not reply.running:
            # It never reached a runner and is canceled now: end its streams, on every edge.
            chat = chat_object(run)
            await bus.publish_event(run.id, CHAT_CANCELED, chat_event(CHAT_CANCELED, chat))
            return chat

        ended = asyncio.Event()

        async def on_event(msg: Msg) -> None:
            headers = msg.headers or {}
            if headers.get(EVENT_HEADER, "") in TERMINAL_CHAT_EVENTS:
                ended.set()

        subscription = await bus.follow(run.id, on_event)
        try:
            # The runner holding the chat stops the model and finishes the chat as canceled,
            # keeping the partial answer.
            await bus.ask_runners_to_cancel(run.id)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ended.wait(), self._timings.cancel_wait_s)
        finally:
            with contextlib.suppress(Exception):  # connection gone: interest is gone too
                await subscription.unsubscribe()
        if not ended.is_set() and self._liveness is not None:
            # Nobody heard it (the runner hangs, or is gone and the run not yet silent long
            # enough): the registry ends it at once and tells its streams; a runner that
            # still holds it learns at its next heartbeat.
            log.warning("chat %d: its runner did not confirm the cancel in time; ending it", run.id)
            try:
                ended_run = await self._liveness.EndRun(
                    lpb.EndRunRequest(owner_id=owner_id, chat_id=run.id, status=ChatStatus.CANCELED)
                )
                return chat_object(ended_run)
            except grpc.aio.AioRpcError as err:
                if err.code() != grpc.StatusCode.FAILED_PRECONDITION:
                    raise
                # It ended meanwhile, one way or another: say how.
        elif not ended.is_set():
            log.warning("chat %d: its runner did not confirm the cancel in time", run.id)
        return await self.retrieve(owner_id, run.conversation_id, run.id)

    async def retrieve(self, owner_id: int, conversation_id: int, chat_id: int) -> dict[str, Any]:
        run = await self._conversations.GetChat(
            cpb.ChatRef(owner_id=owner_id, chat_id=chat_id, conversation_id=conversation_id)
        )
        return chat_object(run)

    # ------------------------------------------------------ submit_tool_outputs

    async def submit_tool_outputs(
        self,
        owner_id: int,
        conversation_id: int,
        chat_id: int,
        tool_outputs: Sequence[tuple[str, str]],
    ) -> ChatSession:
        """Hands a chat paused in requires_action its client-side tool outputs and queues it
        again, for whichever runner takes it; returns the session following the continued
        run, like `start`. A chat that is not waiting for outputs, or outputs that do not
        match its calls, are invalid input with nothing changed (wire contract section 7)."""
        bus = self.bus
        bus.check_ready()
        session = self._session(owner_id, chat_id)
        await session.open()
        try:
            run = await self._hand_outputs(owner_id, conversation_id, chat_id, tool_outputs)
            await self._queue(_resume_request(run, owner_id, bus.next_id()))
            session.start(run)
        except BaseException:
            await session.close()
            raise
        return session

    async def _hand_outputs(
        self,
        owner_id: int,
        conversation_id: int,
        chat_id: int,
        tool_outputs: Sequence[tuple[str, str]],
    ) -> cpb.ChatRun:
        try:
            return await self._conversations.SubmitToolOutputs(
                cpb.SubmitToolOutputsRequest(
                    owner_id=owner_id,
                    conversation_id=conversation_id,
                    chat_id=chat_id,
                    tool_outputs=[
                        cpb.ToolOutput(tool_call_id=call_id, output=output)
                        for call_id, output in tool_outputs
                    ],
                )
            )
        except grpc.aio.AioRpcError as err:
            # Not waiting for outputs (any more) is the client's mistake, not a conflict.
            if err.code() == grpc.StatusCode.FAILED_PRECONDITION:
                raise InvalidInput(err.details() or NOT_WAITING_MSG) from None
            raise

    def _session(self, owner_id: int, chat_id: int) -> ChatSession:
        return ChatSession(
            bus=self.bus,
            conversations=self._conversations,
            owner_id=owner_id,
            chat_id=chat_id,
            queue_timeout_s=self._timings.queue_timeout_s,
            runner_lost_s=self._timings.runner_lost_s,
            clock=self._clock,
        )


# ------------------------------------------------------------------ pieces


def answer_data(outcome: ChatOutcome) -> dict[str, Any]:
    """A non-streaming chat's answer: the Chat merged with its answer. A chat no runner
    picked up is unavailable; other failures are a Chat with status failed and its last_error
    (like the official API, which reports a run's failure in the Chat, not the status)."""
    if outcome.never_started:
        # Told apart by how it ended, not by its code: a model can fail with 503 too.
        raise Unavailable(outcome.chat["last_error"]["msg"] or NO_RUNNER_MSG)
    return {
        **outcome.chat,
        "content": outcome.answer,
        "role": "assistant",
        "type": MessageType.ANSWER,
        "content_type": "text",
    }


def _chat_request(
    chat_id: int,
    conversation_id: int,
    section_id: int,
    created_at: int,
    owner_id: int,
    target: ChatTarget,
    chat: ChatInput,
) -> ChatRequest:
    return ChatRequest(
        chat_id=chat_id,
        conversation_id=conversation_id,
        section_id=section_id,
        owner_id=owner_id,
        user_id=chat.user_id,
        bot_id=target.bot_id,
        bot_version=target.bot_version,
        messages=list(chat.messages),
        custom_variables=dict(chat.custom_variables),
        meta_data=dict(chat.meta_data),
        extra_params=dict(chat.extra_params),
        parameters=dict(chat.parameters),
        auto_save_history=chat.auto_save_history,
        created_at=created_at,
    )


def _resume_request(run: cpb.ChatRun, owner_id: int, resume_id: int) -> ChatRequest:
    """The work of continuing a paused chat: the runner takes its state (history, stored tool
    messages, custom variables) from the registry, so no messages travel."""
    return ChatRequest(
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
        resume_id=resume_id,
    )


def _add_history(request: ChatRequest, history: Sequence[cpb.Message], max_payload: int) -> None:
    """Sends the history window with the chat when the queue message can carry it; a
    longer one the runner reads from StartRun instead, as before."""
    request.history = [
        HistoryMessage(
            role=m.role,
            type=m.type,
            content=m.content,
            content_type=m.content_type,
            meta_data_json=m.meta_data_json,
        )
        for m in history
    ]
    if history and len(request.encode()) + _QUEUE_HEADERS_ALLOWANCE > max_payload:
        request.history = None


def _check_queueable(request: ChatRequest, max_payload: int) -> None:
    """Refuses, before anything is recorded, a chat too large for one NATS message: a body
    just under max_body_bytes grows by the request's own fields on the queue, and without this
    it would be stored, then fail to queue (a 503 and a failed chat left behind)."""
    # The queue's headers (the chat id for deduplication) count against the limit too.
    size = len(request.encode()) + _QUEUE_HEADERS_ALLOWANCE
    if size > max_payload:
        raise TooLarge(
            f"request too large to run: the chat would take {size} bytes on the message queue, "
            f"which carries at most {max_payload}; send less content",
        )


def _has_placeholders(prompt: str) -> bool:
    """Whether the runner's `{{name}}` substitution (services/runner/prompt.py) could change
    this prompt; a cheap superset of its pattern."""
    return "{{" in prompt
