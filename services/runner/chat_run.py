"""Run one chat: load the bot, call the model, stream events, persist the outcome."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc
from nats.aio.client import Client as NATS

from cozeplus.chat_protocol import (
    CHAT_CANCELED,
    CHAT_COMPLETED,
    CHAT_CREATED,
    CHAT_FAILED,
    CHAT_IN_PROGRESS,
    EVENT_HEADER,
    HEARTBEAT_EVENT,
    MESSAGE_COMPLETED,
    MESSAGE_DELTA,
    ChatRequest,
)
from cozeplus.chat_wire import MessageEvents, chat_event, chat_object
from cozeplus.ids import IdGenerator
from cozeplus.model_catalog import ModelCatalog
from cozeplus.rpc.v1 import conversations_pb2 as cpb
from cozeplus.rpc.v1 import registry_pb2 as pb
from cozeplus.subjects import chat_events
from services.runner.prompt import build_prompt
from services.runner.providers import provider_for
from services.runner.providers.base import (
    Completion,
    CompletionRequest,
    ModelProvider,
    PromptMessage,
    ProviderError,
    TextDelta,
)
from services.runner.providers.token_count import count_prompt_tokens, count_text_tokens

if TYPE_CHECKING:
    # The async stub classes exist only in the generated type stubs.
    from cozeplus.rpc.v1.conversations_pb2_grpc import ConversationsAsyncStub
    from cozeplus.rpc.v1.registry_pb2_grpc import BotRegistryAsyncStub

log = logging.getLogger("cozeplus.runner.chat")

LOST_RUNNER_ERROR = cpb.ChatError(
    code=500, msg="the runner running this chat was lost; please retry"
)


@dataclass
class RunnerDeps:
    """What every chat run needs from its runner process."""

    nc: NATS
    bots: BotRegistryAsyncStub
    conversations: ConversationsAsyncStub
    catalog: ModelCatalog
    ids: IdGenerator
    bot_configs: BotConfigCache
    model_timeout_s: float
    heartbeat_s: float


class BotConfigCache:
    """Published versions are immutable, so they are cached for good; drafts never are."""

    def __init__(self, bots: BotRegistryAsyncStub, size: int = 1024) -> None:
        self._bots = bots
        self._size = size
        self._versions: dict[tuple[int, int, int], pb.BotConfig] = {}

    async def get(self, owner_id: int, bot_id: int, version: int) -> pb.BotConfig:
        if version == 0:
            draft = await self._bots.GetDraft(pb.BotRef(owner_id=owner_id, bot_id=bot_id))
            return draft.config
        key = (owner_id, bot_id, version)
        config = self._versions.get(key)
        if config is None:
            found = await self._bots.GetVersion(
                pb.GetVersionRequest(owner_id=owner_id, bot_id=bot_id, version=version)
            )
            config = found.config
            if len(self._versions) >= self._size:
                self._versions.pop(next(iter(self._versions)))
            self._versions[key] = config
        return config


class ChatRun:
    """One chat on this runner. `cancel()` stops the model call from outside."""

    def __init__(
        self, deps: RunnerDeps, request: ChatRequest, keepalive: Callable[[], Awaitable[None]]
    ) -> None:
        self.deps = deps
        self.request = request
        self._keepalive = keepalive
        self._subject = chat_events(request.chat_id)
        self._model_task: asyncio.Task[Completion] | None = None
        self._canceled = False
        self._answer: list[str] = []
        self._first_token_at = 0.0

    def cancel(self) -> None:
        self._canceled = True
        if self._model_task is not None:
            self._model_task.cancel()

    async def _publish(self, event: str, data: bytes) -> None:
        await self.deps.nc.publish(self._subject, data, headers={EVENT_HEADER: event})

    async def execute(self) -> None:
        heartbeat = asyncio.create_task(self._heartbeat())
        try:
            await self._execute()
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.deps.heartbeat_s)
            with contextlib.suppress(Exception):
                await self._keepalive()
                await self._publish(HEARTBEAT_EVENT, b"{}")

    async def _execute(self) -> None:
        request, deps = self.request, self.deps
        started_at = time.monotonic()
        try:
            config = await deps.bot_configs.get(
                request.owner_id, request.bot_id, request.bot_version
            )
            history_rounds = config.history_rounds
        except grpc.aio.AioRpcError as err:
            if err.code() != grpc.StatusCode.NOT_FOUND:
                raise
            config, history_rounds = None, 0
        try:
            started = await deps.conversations.StartRun(
                cpb.StartRunRequest(
                    owner_id=request.owner_id,
                    chat_id=request.chat_id,
                    history_rounds=history_rounds,
                )
            )
        except grpc.aio.AioRpcError as err:
            if err.code() in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.NOT_FOUND):
                # Canceled or failed while queued; whoever ended it told the client.
                log.info("chat %d already ended: %s", request.chat_id, err.details())
                return
            raise
        if started.restarted:
            # Deltas its lost runner streamed can't be taken back: fail the chat
            # rather than stream a second, different answer into the same message.
            await self._finish("failed", error=LOST_RUNNER_ERROR)
            return

        chat = chat_object(started.run, request.meta_data)
        await self._publish(CHAT_CREATED, chat_event(CHAT_CREATED, {**chat, "status": "created"}))
        await self._publish(CHAT_IN_PROGRESS, chat_event(CHAT_IN_PROGRESS, chat))

        if config is None:
            error = cpb.ChatError(code=404, msg="the bot no longer exists")
            await self._finish("failed", error=error)
            return
        model_id = config.model.model_id
        spec = deps.catalog.get(model_id)
        if spec is None:
            error = cpb.ChatError(code=500, msg=f"model {model_id!r} is not configured")
            await self._finish("failed", error=error)
            return

        prompt = build_prompt(config, started.history, request.messages, request.custom_variables)
        answer_id = deps.ids.next_id()
        now = int(time.time())
        message: dict[str, Any] = {
            "id": str(answer_id),
            "conversation_id": str(request.conversation_id),
            "section_id": str(started.run.section_id),
            "bot_id": str(request.bot_id),
            "chat_id": str(request.chat_id),
            "role": "assistant",
            "type": "answer",
            "content": "",
            "content_type": "text",
            "reasoning_content": "",
            "meta_data": {},
            "created_at": now,
            "updated_at": now,
        }
        events = MessageEvents(message)
        model_request = CompletionRequest(
            messages=prompt,
            temperature=config.model.temperature if config.model.HasField("temperature") else None,
            max_tokens=config.model.max_tokens if config.model.HasField("max_tokens") else None,
            top_p=config.model.top_p if config.model.HasField("top_p") else None,
            timeout_s=deps.model_timeout_s,
        )
        self._model_task = asyncio.create_task(
            self._stream(provider_for(spec), model_request, events)
        )
        if self._canceled:
            # Canceled between StartRun and here, before there was a model call to stop.
            self._model_task.cancel()
        status, error, usage = "completed", cpb.ChatError(), cpb.Usage()
        try:
            completion = await self._model_task
            usage = cpb.Usage(
                prompt_tokens=completion.usage.prompt_tokens,
                completion_tokens=completion.usage.completion_tokens,
            )
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if not self._canceled or (current is not None and current.cancelling()):
                raise  # the runner itself is stopping
            status, usage = "canceled", self._estimated_usage(prompt)
        except ProviderError as err:
            log.warning("chat %d: model %s failed: %s", request.chat_id, model_id, err.msg)
            status, usage = "failed", self._estimated_usage(prompt)
            error = cpb.ChatError(code=err.code, msg=err.msg)

        answer = "".join(self._answer)
        if status == "completed":
            await self._publish(
                MESSAGE_COMPLETED, events.encode(MESSAGE_COMPLETED, answer, int(time.time()))
            )
        await self._finish(
            status,
            error=error,
            answer=answer,
            answer_id=answer_id,
            usage=usage,
            duration_ms=int((time.monotonic() - started_at) * 1000),
            first_token_ms=int((self._first_token_at - started_at) * 1000)
            if self._first_token_at
            else 0,
        )

    async def _stream(
        self,
        provider: ModelProvider,
        model_request: CompletionRequest,
        events: MessageEvents,
    ) -> Completion:
        completion: Completion | None = None
        async with contextlib.aclosing(provider.stream(model_request)) as items:
            async for item in items:
                if isinstance(item, TextDelta):
                    if not item.text:
                        continue
                    if not self._first_token_at:
                        self._first_token_at = time.monotonic()
                    self._answer.append(item.text)
                    await self._publish(MESSAGE_DELTA, events.encode(MESSAGE_DELTA, item.text))
                else:
                    completion = item
        if completion is None:
            raise ProviderError(500, "the model ended its answer without finishing it")
        return completion

    def _estimated_usage(self, prompt: list[PromptMessage]) -> cpb.Usage:
        """A run that ended early gets no usage from its provider: count what was spent."""
        return cpb.Usage(
            prompt_tokens=count_prompt_tokens(prompt),
            completion_tokens=count_text_tokens("".join(self._answer)),
        )

    async def _finish(
        self,
        status: str,
        *,
        error: cpb.ChatError | None = None,
        answer: str = "",
        answer_id: int = 0,
        usage: cpb.Usage | None = None,
        duration_ms: int = 0,
        first_token_ms: int = 0,
    ) -> None:
        try:
            finished = await self.deps.conversations.FinishRun(
                cpb.FinishRunRequest(
                    owner_id=self.request.owner_id,
                    chat_id=self.request.chat_id,
                    status=status,
                    answer=answer,
                    answer_message_id=answer_id,
                    usage=usage or cpb.Usage(),
                    last_error=error or cpb.ChatError(),
                    first_token_ms=first_token_ms,
                    duration_ms=duration_ms,
                )
            )
        except grpc.aio.AioRpcError as err:
            # Ended elsewhere, or its conversation was deleted meanwhile: nothing to tell.
            if err.code() not in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.NOT_FOUND):
                raise
            log.info("chat %d ended elsewhere: %s", self.request.chat_id, err.details())
            return
        event = {"completed": CHAT_COMPLETED, "failed": CHAT_FAILED, "canceled": CHAT_CANCELED}[
            status
        ]
        await self._publish(event, chat_event(event, chat_object(finished, self.request.meta_data)))
