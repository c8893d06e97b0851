"""Run one chat: the agent loop of wire contract section 7.

Steps, each a method below: load the bot, start the run (or resume a paused one), load its
tools, gather the prompt's context (knowledge chunks, images), build the prompt, then
rounds of call the model -> execute the tools it asked for -> hand the outputs back, until
the model answers (finish), asks for a client-side function (pause in requires_action) or
exceeds the bot's round limit (fail).

Every function_call and tool_response is stored in the registry before its event is
published, so what a client saw is always in the chat's message list, and a resumed run
(on any runner) continues from the registry alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import grpc
import orjson

from cozeplus.chat_protocol import (
    ChatRequest,
    InputMessage,
    decode_input_messages,
    encode_input_messages,
)
from cozeplus.chat_wire import function_call_content, json_object
from cozeplus.ids import IdGenerator
from cozeplus.model_catalog import ModelCatalog, ModelSpec
from cozeplus.rpc.v1 import conversations_pb2 as cpb
from cozeplus.rpc.v1 import registry_pb2 as pb
from cozeplus.vocabulary import ChatStatus, MessageRole, MessageType, PluginType
from services.runner.knowledge_retrieval import KnowledgeChunk, knowledge_prompt
from services.runner.prompt import build_prompt, stored_messages, with_text_before_last_calls
from services.runner.prompt_context import (
    NO_PROMPT_CONTEXT,
    PromptContext,
    PromptContextSource,
    image_file_ids,
    latest_question,
)
from services.runner.providers.base import (
    Completion,
    CompletionRequest,
    ModelProvider,
    PromptMessage,
    ProviderError,
    StreamItem,
    TextDelta,
    TextPart,
)
from services.runner.providers.token_count import count_prompt_tokens, count_text_tokens
from services.runner.registry_calls import UNBOUNDED, RecordingWait, RegistryRetry
from services.runner.run_events import EventPublisher, RunEvents
from services.runner.run_outcomes import NoOutcomes, RunOutcomes
from services.runner.tools.base import (
    HoldsResources,
    Tool,
    ToolCall,
    ToolDefinition,
    ToolOutput,
    ToolSource,
)

if TYPE_CHECKING:
    # The async stub classes exist only in the generated type stubs.
    from cozeplus.rpc.v1.conversations_pb2_grpc import ConversationsAsyncStub
    from cozeplus.rpc.v1.registry_pb2_grpc import BotRegistryAsyncStub

log = logging.getLogger("cozeplus.runner.chat")

LOST_RUNNER_ERROR = cpb.ChatError(
    code=500, msg="the runner running this chat was lost; please retry"
)
SHUTDOWN_ERROR = cpb.ChatError(
    code=503, msg="the runner running this chat shut down before it finished; please retry"
)
# How long a crashed run may take to record that it failed before it is handed back.
CRASH_FINISH_S = 10.0
# A bot that sets no round limit gets this many rounds of tool calls per chat.
DEFAULT_MAX_TOOL_ROUNDS = 8
ROUND_LIMIT_CODE = 4008


@dataclass
class RunnerDeps:
    """What every chat run needs from its runner process (fakes in the in-process tests)."""

    events: EventPublisher
    bots: BotRegistryAsyncStub
    conversations: ConversationsAsyncStub
    catalog: ModelCatalog
    ids: IdGenerator
    bot_configs: BotConfigCache
    provider_for: Callable[[ModelSpec], ModelProvider]
    tools: ToolSource
    model_timeout_s: float
    heartbeat_s: float
    tool_timeout_s: float = 30.0
    # How registry calls ride out a registry restart (services/runner/registry_calls.py).
    registry: RegistryRetry = field(default_factory=RegistryRetry)
    # Outcomes kept until FinishRun lands, for the runner a dead one's chat goes to.
    outcomes: RunOutcomes = field(default_factory=NoOutcomes)
    # Knowledge chunks and images for the prompt (services/runner/prompt_context.py).
    context: PromptContextSource = NO_PROMPT_CONTEXT
    # StartRun for a chat the edge queued while the registry was recording it.
    recording: RecordingWait = field(default_factory=RecordingWait)


class BotConfigCache:
    """Published versions are immutable, so they are cached for good; drafts never are."""

    def __init__(self, bots: BotRegistryAsyncStub, size: int = 1024) -> None:
        self._bots = bots
        self._size = size
        self._versions: dict[tuple[int, int, int], pb.BotConfig] = {}

    async def get(
        self, owner_id: int, bot_id: int, version: int, timeout_s: float | None = None
    ) -> pb.BotConfig:
        if version == 0:
            draft = await self._bots.GetDraft(
                pb.BotRef(owner_id=owner_id, bot_id=bot_id), timeout=timeout_s
            )
            return draft.config
        key = (owner_id, bot_id, version)
        config = self._versions.get(key)
        if config is None:
            found = await self._bots.GetVersion(
                pb.GetVersionRequest(owner_id=owner_id, bot_id=bot_id, version=version),
                timeout=timeout_s,
            )
            config = found.config
            if len(self._versions) >= self._size:
                self._versions.pop(next(iter(self._versions)))
            self._versions[key] = config
        return config

    def invalidate_bot(self, bot_id: int) -> None:
        """A deleted bot's versions must stop running at once (BOT_CHANGED)."""
        for key in [k for k in self._versions if k[1] == bot_id]:
            del self._versions[key]


class HandedBack(Exception):
    """The runner is stopping and this chat had not started: back to the queue with it."""


class RunFailed(Exception):
    """Ends the chat as failed with this error (the round limit, unusable tools)."""

    def __init__(self, code: int, msg: str) -> None:
        super().__init__(msg)
        self.error = cpb.ChatError(code=code, msg=msg)


@dataclass
class ModelReply:
    text: str
    tool_calls: list[ToolCall]
    completion: Completion


class ModelCall:
    """One streamed model call. Begun early, its request is sent (and its first item read)
    at once, by a task of its own; otherwise nothing is sent until it is iterated."""

    def __init__(self, request: CompletionRequest, items: AsyncGenerator[StreamItem, None]) -> None:
        self.request = request
        self._items = items
        self._first: asyncio.Task[StreamItem] | None = None

    @classmethod
    def begin(cls, provider: ModelProvider, request: CompletionRequest) -> ModelCall:
        return cls(request, provider.stream(request))

    def send_now(self) -> None:
        async def first() -> StreamItem:
            return await anext(self._items)

        self._first = asyncio.create_task(first())

    def __aiter__(self) -> ModelCall:
        return self

    async def __anext__(self) -> StreamItem:
        first, self._first = self._first, None
        if first is not None:
            return await first
        return await anext(self._items)

    async def aclose(self) -> None:
        """Closing mid-answer drops the connection: the provider stops generating."""
        first, self._first = self._first, None
        if first is not None:
            # The generator runs in that task: it must have stopped before it is closed.
            first.cancel()
            await asyncio.wait([first])
            if not first.cancelled():
                first.exception()  # retrieved: an early failure nobody will read
        await self._items.aclose()


@dataclass
class Prepared:
    """What a chat needs before its first model call: the model, the tools, the context."""

    spec: ModelSpec
    tools: dict[str, Tool]
    context: PromptContext


@dataclass
class EarlyStart:
    """What was prepared, up to the model's first call, while StartRun was under way."""

    prepared: Prepared
    state: RunState
    call: ModelCall


@dataclass
class RunState:
    """What the loop has done so far."""

    prompt: list[PromptMessage]
    # Usage of every model call of the run (a resumed run starts from the stored sum).
    usage: cpb.Usage = field(default_factory=cpb.Usage)
    # Text the model streamed, across rounds: the answer.
    answer: list[str] = field(default_factory=list)
    # Rounds of tool calls so far (a resumed run counts the stored ones).
    tool_rounds: int = 0
    # Client-side calls to pause for.
    pending: list[ToolCall] = field(default_factory=list)
    # The answer message's id. Minted again after each round of tool messages, so the answer
    # sorts after them in /v3/chat/message/list, as the wire contract orders them.
    answer_id: int = 0
    # The caller's custom_variables: stored again at every pause (a resumed run's request
    # carries none, so they come from the registry).
    custom_variables: dict[str, str] = field(default_factory=dict)
    # A chat that does not save its input (auto_save_history false): that input, kept with
    # the paused run so the resumed one still has its question.
    unsaved_input: list[InputMessage] = field(default_factory=list)


class ChatRun:
    """One chat on this runner. `cancel()` stops it from outside, wherever it is."""

    def __init__(
        self,
        deps: RunnerDeps,
        request: ChatRequest,
        keepalive: Callable[[], Awaitable[None]],
        *,
        first_delivery: bool = True,
    ) -> None:
        self.deps = deps
        self.request = request
        self._keepalive = keepalive
        # A redelivered chat most likely started elsewhere: no model call before StartRun.
        self._first_delivery = first_delivery
        self.events = RunEvents(
            deps.events,
            chat_id=request.chat_id,
            bot_id=request.bot_id,
            meta_data=request.meta_data,
        )
        self._loop_task: asyncio.Task[None] | None = None
        # True while this runner holds the run in_progress: the pool heartbeats it.
        self.holding = False
        self._canceled = False
        # The runner is stopping: a run not started yet is handed back, a running one
        # (once the shutdown grace is over) abandoned: failed with SHUTDOWN_ERROR.
        self._handing_back = False
        self._abandoned = False
        self._state: RunState | None = None
        self._started_at = 0.0
        self._first_token_at = 0.0
        # Tools loaded for this run that hold something (MCP sessions) until it ends.
        self._held_by_tools: list[HoldsResources] = []

    def cancel(self) -> None:
        self._canceled = True
        if self._loop_task is not None:
            self._loop_task.cancel()

    def hand_back(self) -> None:
        """Runner stopping: if StartRun has not been called yet, it never will be."""
        self._handing_back = True

    def abandon(self) -> None:
        """Shutdown grace over: stop the model or tools and end the run failed."""
        self._abandoned = True
        if self._loop_task is not None:
            self._loop_task.cancel()

    async def execute(self) -> None:
        heartbeat = asyncio.create_task(self._heartbeat())
        try:
            await self._execute()
        except (HandedBack, asyncio.CancelledError):
            raise
        except Exception:
            if not self.holding:
                raise
            # Not a transient registry error (those were retried): record the failure
            # with what was answered, rather than leave it to a redelivery.
            log.exception("chat %d: its run crashed; ending it failed", self.request.chat_id)
            state = self._state
            await self._finish(
                ChatStatus.FAILED,
                error=cpb.ChatError(code=500, msg="the chat's run failed; please retry"),
                answer="".join(state.answer) if state is not None else "",
                usage=state.usage if state is not None else None,
                budget_s=CRASH_FINISH_S,
            )
        finally:
            self.holding = False
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
            await self._release_tools()

    async def _release_tools(self) -> None:
        held, self._held_by_tools = self._held_by_tools, []
        for tool in held:
            try:
                await tool.aclose()
            except Exception:
                log.warning("chat %d: closing a tool failed", self.request.chat_id, exc_info=True)

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.deps.heartbeat_s)
            with contextlib.suppress(Exception):
                await self._keepalive()
                await self.events.heartbeat()

    # ------------------------------------------------------------------ the steps

    async def _execute(self) -> None:
        self._started_at = time.monotonic()
        config = await self._load_bot()
        started, early = await self._start(config)
        if started is None:
            return
        self.holding = True
        if started.restarted:
            kept = await self.deps.outcomes.kept(self.request.chat_id)
            if kept is not None:
                # Its runner died between streaming the outcome and storing it: store it.
                log.info("chat %d: storing the outcome its lost runner kept", self.request.chat_id)
                await self._store_outcome(kept, UNBOUNDED)
                return
            # Deltas its lost runner streamed can't be taken back: fail the chat
            # rather than stream a second, different answer into the same message.
            await self._finish(ChatStatus.FAILED, error=LOST_RUNNER_ERROR)
            return
        run = started.run
        await self.events.started(run, resumed=self.request.resumes)
        if config is None:
            error = cpb.ChatError(code=404, msg="the bot no longer exists")
            await self._finish(ChatStatus.FAILED, error=error)
            return
        if early is None:
            new_messages = (
                self._unsaved_input(started) if self.request.resumes else self.request.messages
            )
            try:
                prepared = await self._prepare(
                    config, started.history, new_messages, started.chat_messages
                )
            except RunFailed as failed:
                await self._finish(ChatStatus.FAILED, error=failed.error)
                return
            state = self._build_state(config, started, prepared.context, new_messages)
            first_call = None
        else:
            prepared, state, first_call = early.prepared, early.state, early.call
        spec, tools = prepared.spec, prepared.tools
        state.answer_id = self.deps.ids.next_id()
        self.events.open_answer(run, state.answer_id)
        status, error = await self._run_loop(config, spec, tools, state, first_call)
        if status == ChatStatus.REQUIRES_ACTION:
            await self._pause(state)
            return
        answer = "".join(state.answer)
        if status == ChatStatus.COMPLETED:
            await self.events.answer_completed(answer)
        await self._finish(
            status, error=error, answer=answer, answer_id=state.answer_id, usage=state.usage
        )

    async def _start(
        self, config: pb.BotConfig | None
    ) -> tuple[cpb.StartRunResponse | None, EarlyStart | None]:
        """StartRun, and, when the queued chat brought its history window, the steps up to
        the model's first call first: the model then answers while the registry does.
        Nothing is published before StartRun says this runner holds the run; if it does
        not, the early call is closed unread.

        The model's request goes out before StartRun's: the model is the long wait, and on
        a busy machine the request written first is the one answered first (measured:
        StartRun sent first held the model's request back by milliseconds)."""
        history = self.request.history
        if (
            config is None
            or history is None
            or self.request.resumes
            or not self._first_delivery
            or self._handing_back
        ):
            return await self._start_run(config), None
        early: EarlyStart | None = None
        start: asyncio.Task[cpb.StartRunResponse | None] | None = None
        try:
            early = await self._prepare_early(
                config, [cpb.Message(**m.model_dump()) for m in history]
            )
            # The early call has the history and the chat's messages from the queue: the
            # registry need not read them again (two reads per chat start).
            start = asyncio.create_task(self._start_run(config, with_messages=early is None))
            started = await start
        except BaseException:
            if start is not None:
                start.cancel()
            if early is not None:
                await early.call.aclose()
            raise
        if early is not None and (started is None or started.restarted):
            await early.call.aclose()
            early = None
        return started, early

    async def _prepare_early(
        self, config: pb.BotConfig, history: Sequence[cpb.Message]
    ) -> EarlyStart | None:
        """None when a step would fail: the usual order then reports it after StartRun."""
        try:
            prepared = await self._prepare(config, history, self.request.messages, ())
        except RunFailed:
            return None
        state = self._new_state(config, history, prepared.context)
        provider = self.deps.provider_for(prepared.spec)
        definitions = [tool.definition for tool in prepared.tools.values()]
        call = ModelCall.begin(provider, self._completion_request(config, definitions, state))
        call.send_now()
        return EarlyStart(prepared, state, call)

    async def _prepare(
        self,
        config: pb.BotConfig,
        history: Sequence[cpb.Message],
        new_messages: Sequence[InputMessage],
        chat_messages: Sequence[cpb.Message],
    ) -> Prepared:
        """RunFailed when the chat cannot run: its model is not configured, or its tools
        could not be loaded."""
        spec = self.deps.catalog.get(config.model.model_id)
        if spec is None:
            raise RunFailed(500, f"model {config.model.model_id!r} is not configured")
        tools = await self._load_tools(config)
        context = await self._gather_context(config, spec, history, new_messages, chat_messages)
        return Prepared(spec, tools, context)

    async def _load_bot(self) -> pb.BotConfig | None:
        request = self.request
        try:
            return await self.deps.registry.call(
                f"chat {request.chat_id}: loading its bot",
                lambda timeout: self.deps.bot_configs.get(
                    request.owner_id, request.bot_id, request.bot_version, timeout
                ),
            )
        except grpc.aio.AioRpcError as err:
            if err.code() != grpc.StatusCode.NOT_FOUND:
                raise
            return None

    async def _start_run(
        self, config: pb.BotConfig | None, *, with_messages: bool = True
    ) -> cpb.StartRunResponse | None:
        """created -> in_progress; None when the chat already ended (canceled or failed while
        queued: whoever ended it told the client). Without messages, the response's history
        and chat_messages are empty (for a run that has them already)."""
        if self._handing_back:
            raise HandedBack
        request = cpb.StartRunRequest(
            owner_id=self.request.owner_id,
            chat_id=self.request.chat_id,
            history_rounds=config.history_rounds if config is not None else 0,
            without_messages=not with_messages,
        )
        retried = False

        def note_retry() -> None:
            nonlocal retried
            retried = True

        recording = self.deps.recording
        backoff = recording.first_backoff_s
        give_up_at = time.monotonic() + recording.wait_s
        while True:
            try:
                started = await self.deps.registry.call(
                    f"chat {self.request.chat_id}: starting its run",
                    lambda timeout: self.deps.conversations.StartRun(request, timeout=timeout),
                    on_retry=note_retry,
                )
                break
            except grpc.aio.AioRpcError as err:
                code = err.code()
                if code == grpc.StatusCode.NOT_FOUND and not self.request.recorded:
                    # Queued while the registry records it: not there *yet*, unless the
                    # edge said it never will be (a cancel) or it is too late for that.
                    if self._handing_back:
                        raise HandedBack from None
                    if not self._canceled and time.monotonic() + backoff < give_up_at:
                        await asyncio.sleep(backoff)
                        backoff = min(backoff * 2, recording.max_backoff_s)
                        continue
                    log.warning(
                        "chat %d: dropped, the registry never recorded it", self.request.chat_id
                    )
                    return None
                if code in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.NOT_FOUND):
                    log.info("chat %d already ended: %s", self.request.chat_id, err.details())
                    return None
                raise
        if started.restarted and retried:
            # Our own StartRun landed before the registry went away: this runner holds it
            # (the work queue hands a chat to one runner at a time).
            started.restarted = False
        return started

    async def _load_tools(self, config: pb.BotConfig) -> dict[str, Tool]:
        request = self.request
        try:
            tools = await self.deps.registry.call(
                f"chat {request.chat_id}: loading its tools",
                lambda _: self.deps.tools.tools_for(
                    owner_id=request.owner_id,
                    bot_id=request.bot_id,
                    bot_version=request.bot_version,
                    config=config,
                ),
            )
        except grpc.aio.AioRpcError as err:
            log.warning("chat %d: loading tools failed: %s", request.chat_id, err.details())
            raise RunFailed(500, "the bot's tools could not be loaded; please retry") from err
        self._held_by_tools.extend(t for t in tools if isinstance(t, HoldsResources))
        return {tool.definition.name: tool for tool in tools}

    async def _gather_context(
        self,
        config: pb.BotConfig,
        spec: ModelSpec,
        history: Sequence[cpb.Message],
        new_messages: Sequence[InputMessage],
        chat_messages: Sequence[cpb.Message],
    ) -> PromptContext:
        """The knowledge chunks (bots that auto-call datasets) and, for a vision model, the
        images named by file id. Neither may fail the chat: a failed search or file read is
        logged and the model answers without the chunks, or sees the image's note."""
        request = self.request
        source = self.deps.context
        chunks: Sequence[KnowledgeChunk] = ()
        question = latest_question(history, new_messages, chat_messages)
        try:
            chunks = await source.knowledge(
                owner_id=request.owner_id, config=config, query=question
            )
        except Exception as err:
            log.warning(
                "chat %d: knowledge retrieval failed, answering without it: %s",
                request.chat_id,
                err.details() if isinstance(err, grpc.aio.AioRpcError) else repr(err),
            )
        file_urls: Mapping[str, str] = {}
        if spec.vision:
            file_ids = image_file_ids(history, new_messages, chat_messages)
            try:
                file_urls = await source.images(owner_id=request.owner_id, file_ids=file_ids)
            except Exception as err:
                log.warning(
                    "chat %d: reading images failed, the model gets their notes: %r",
                    request.chat_id,
                    err,
                )
        return PromptContext(knowledge=chunks, file_urls=file_urls)

    def _unsaved_input(self, started: cpb.StartRunResponse) -> list[InputMessage]:
        """A resumed chat's input, when the registry kept it rather than saved it."""
        try:
            return decode_input_messages(started.unsaved_input_json)
        except ValueError:
            log.warning("chat %d: its kept input is unreadable", self.request.chat_id)
            return []

    def _build_state(
        self,
        config: pb.BotConfig,
        started: cpb.StartRunResponse,
        context: PromptContext,
        new_messages: Sequence[InputMessage],
    ) -> RunState:
        if not self.request.resumes:
            state = self._new_state(config, started.history, context)
            state.usage.CopyFrom(started.run.usage)
            return state
        # A resumed chat continues from what the registry stored: its own messages (or the
        # input it kept, when the chat saves none), the usage so far and the custom
        # variables it was started with.
        variables = {
            str(k): str(v) for k, v in json_object(started.run.custom_variables_json).items()
        }
        prompt = build_prompt(
            config,
            started.history,
            new_messages,
            variables,
            started.chat_messages,
            knowledge=knowledge_prompt(context.knowledge),
            file_urls=context.file_urls,
        )
        prompt = with_text_before_last_calls(prompt, started.answer_so_far)
        usage = cpb.Usage()
        usage.CopyFrom(started.run.usage)
        # A resumed run has used the rounds its chat's stored calls show.
        rounds = sum(1 for m in stored_messages(started.chat_messages) if m.tool_calls)
        return RunState(
            prompt=prompt,
            usage=usage,
            # What it streamed before the pause: its answer continues that, as it does
            # after a round of server-side tools.
            answer=[started.answer_so_far] if started.answer_so_far else [],
            tool_rounds=rounds,
            custom_variables=variables,
            unsaved_input=list(new_messages),
        )

    def _new_state(
        self, config: pb.BotConfig, history: Sequence[cpb.Message], context: PromptContext
    ) -> RunState:
        """A new chat's: its history window and its input."""
        prompt = build_prompt(
            config,
            history,
            self.request.messages,
            self.request.custom_variables,
            knowledge=knowledge_prompt(context.knowledge),
            file_urls=context.file_urls,
        )
        request = self.request
        return RunState(
            prompt=prompt,
            custom_variables=dict(request.custom_variables),
            unsaved_input=[] if request.auto_save_history else list(request.messages),
        )

    async def _run_loop(
        self,
        config: pb.BotConfig,
        spec: ModelSpec,
        tools: Mapping[str, Tool],
        state: RunState,
        first_call: ModelCall | None = None,
    ) -> tuple[ChatStatus, cpb.ChatError]:
        """Runs the rounds as one task, so a cancel stops a model call or tool calls alike.
        `first_call`: the first round's model call, begun before StartRun came back."""
        self._state = state
        self._loop_task = asyncio.create_task(self._rounds(config, spec, tools, state, first_call))
        if self._canceled or self._abandoned:
            # Stopped between StartRun and here, before there was anything to stop.
            self._loop_task.cancel()
        try:
            try:
                await self._loop_task
            finally:
                if first_call is not None:
                    # Closed already unless the loop was cancelled before it ran.
                    await first_call.aclose()
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # this task itself is being cancelled
            if self._abandoned:
                log.warning(
                    "chat %d: abandoned as the runner shuts down; failing it",
                    self.request.chat_id,
                )
                return ChatStatus.FAILED, SHUTDOWN_ERROR
            if not self._canceled:
                raise
            return ChatStatus.CANCELED, cpb.ChatError()
        except ProviderError as err:
            log.warning("chat %d: model %s failed: %s", self.request.chat_id, spec.id, err.msg)
            return ChatStatus.FAILED, cpb.ChatError(code=err.code, msg=err.msg)
        except RunFailed as failed:
            return ChatStatus.FAILED, failed.error
        if state.pending:
            return ChatStatus.REQUIRES_ACTION, cpb.ChatError()
        return ChatStatus.COMPLETED, cpb.ChatError()

    async def _rounds(
        self,
        config: pb.BotConfig,
        spec: ModelSpec,
        tools: Mapping[str, Tool],
        state: RunState,
        first_call: ModelCall | None,
    ) -> None:
        limit = config.max_tool_rounds or DEFAULT_MAX_TOOL_ROUNDS
        provider = self.deps.provider_for(spec)
        definitions = [tool.definition for tool in tools.values()]
        call = first_call
        while True:
            if call is None:
                call = ModelCall.begin(
                    provider, self._completion_request(config, definitions, state)
                )
            reply = await self._call_model(call, state)
            call = None
            if not reply.tool_calls:
                return
            if state.tool_rounds >= limit:
                raise RunFailed(
                    ROUND_LIMIT_CODE,
                    f"the model asked for tools more than the bot's limit of {limit} rounds "
                    "(max_tool_rounds) in one chat",
                )
            state.tool_rounds += 1
            # What the model said before its calls goes back with them, as its API returned
            # it, so the next round knows it said it.
            said = (TextPart(reply.text),) if reply.text else ()
            calls = tuple(reply.tool_calls)
            state.prompt.append(PromptMessage("assistant", said, tool_calls=calls))
            await self._execute_tools(tools, reply.tool_calls, state)
            if state.pending:
                return
            state.answer_id = self.deps.ids.next_id()
            self.events.renumber_answer(state.answer_id)

    def _said_before_calls(self, state: RunState) -> cpb.RunMessage | None:
        """The text streamed under the answer's id before a round of calls, as an answer
        message of its own, stored and completed ahead of the calls: every answer message's
        deltas then add up to its completed content, as with Coze's several answers of one
        chat. The run's answer goes on under a newer id, after the tool messages."""
        text = "".join(state.answer)
        if not text:
            return None
        return self._run_message(MessageType.ANSWER, text, message_id=state.answer_id)

    def _completion_request(
        self, config: pb.BotConfig, definitions: Sequence[ToolDefinition], state: RunState
    ) -> CompletionRequest:
        model = config.model
        return CompletionRequest(
            messages=list(state.prompt),
            tools=definitions,
            temperature=model.temperature if model.HasField("temperature") else None,
            max_tokens=model.max_tokens if model.HasField("max_tokens") else None,
            top_p=model.top_p if model.HasField("top_p") else None,
            timeout_s=self.deps.model_timeout_s,
        )

    async def _call_model(self, call: ModelCall, state: RunState) -> ModelReply:
        text: list[str] = []
        calls: list[ToolCall] = []
        completion: Completion | None = None
        try:
            async with contextlib.aclosing(call):
                async for item in call:
                    if isinstance(item, TextDelta):
                        if not item.text:
                            continue
                        if not self._first_token_at:
                            self._first_token_at = time.monotonic()
                        text.append(item.text)
                        state.answer.append(item.text)
                        await self.events.answer_delta(item.text)
                    elif isinstance(item, ToolCall):
                        calls.append(item)
                    else:
                        completion = item
        except BaseException:
            # Ended early: count what this call spent, as the provider will not say.
            _add_usage(
                state.usage,
                count_prompt_tokens(call.request.messages),
                count_text_tokens("".join(text)),
            )
            raise
        if completion is None:
            raise ProviderError(500, "the model ended its answer without finishing it")
        _add_usage(state.usage, completion.usage.prompt_tokens, completion.usage.completion_tokens)
        return ModelReply("".join(text), calls, completion)

    async def _execute_tools(
        self, tools: Mapping[str, Tool], calls: Sequence[ToolCall], state: RunState
    ) -> None:
        """Stores and announces the calls, runs the server-side ones concurrently (each with
        a timeout), stores and announces their outputs, and hands them to the model. Calls of
        client-side functions are left pending: the run pauses for them."""
        said = self._said_before_calls(state)
        await self._store_and_publish(
            [
                *([said] if said is not None else []),
                *(
                    self._run_message(
                        MessageType.FUNCTION_CALL,
                        self._function_call_content(tools.get(call.name), call),
                    )
                    for call in calls
                ),
            ]
        )
        if said is not None:
            # Stored: no longer the run's answer (a run that fails from here stores none).
            state.answer.clear()
        server_calls: list[ToolCall] = []
        for call in calls:
            tool = tools.get(call.name)
            if tool is not None and tool.plugin_type == PluginType.LOCAL:
                state.pending.append(call)
            else:
                server_calls.append(call)
        outputs = await asyncio.gather(
            *(self._call_tool(tools.get(call.name), call) for call in server_calls)
        )
        if server_calls:
            await self._store_and_publish(
                [
                    self._run_message(MessageType.TOOL_RESPONSE, output.content, call.id)
                    for call, output in zip(server_calls, outputs, strict=True)
                ]
            )
        for call, output in zip(server_calls, outputs, strict=True):
            state.prompt.append(PromptMessage.tool(call.id, output.content))

    async def _call_tool(self, tool: Tool | None, call: ToolCall) -> ToolOutput:
        """Never raises for the tool's own failures: the model reads what happened."""
        if tool is None:
            return ToolOutput(f"error: the bot has no tool named {call.name!r}", is_error=True)
        try:
            arguments = orjson.loads(call.arguments) if call.arguments.strip() else {}
        except orjson.JSONDecodeError as err:
            return ToolOutput(f"error: the arguments are not valid JSON ({err})", is_error=True)
        if not isinstance(arguments, dict):
            return ToolOutput("error: the arguments must be a JSON object", is_error=True)
        timeout_s = self.deps.tool_timeout_s
        try:
            async with asyncio.timeout(timeout_s):
                return await tool.call(arguments)
        except TimeoutError:
            msg = f"error: {call.name} did not answer within {timeout_s:g}s"
            return ToolOutput(msg, is_error=True)
        except Exception as err:
            log.warning("chat %d: tool %s raised", self.request.chat_id, call.name, exc_info=True)
            return ToolOutput(f"error: {call.name} failed ({type(err).__name__})", is_error=True)

    def _function_call_content(self, tool: Tool | None, call: ToolCall) -> str:
        return function_call_content(
            name=call.name,
            arguments=call.arguments,
            plugin_id=tool.plugin_id if tool is not None else 0,
            api_id=tool.api_id if tool is not None else 0,
            tool_call_id=call.id,
        )

    def _run_message(
        self, kind: str, content: str, tool_call_id: str = "", *, message_id: int = 0
    ) -> cpb.RunMessage:
        """A message of the run's own; a new id unless it has one (the answer's, whose
        deltas went out under it)."""
        return cpb.RunMessage(
            id=message_id or self.deps.ids.next_id(),
            role=MessageRole.ASSISTANT,
            type=kind,
            content=content,
            tool_call_id=tool_call_id,
        )

    async def _store_and_publish(self, messages: Sequence[cpb.RunMessage]) -> None:
        """Stored first, then their events."""
        request = cpb.AppendRunMessagesRequest(
            owner_id=self.request.owner_id, chat_id=self.request.chat_id, messages=messages
        )
        stored = await self.deps.registry.call(
            f"chat {self.request.chat_id}: storing its messages",
            lambda timeout: self.deps.conversations.AppendRunMessages(request, timeout=timeout),
        )
        for message in stored.messages:
            await self.events.message_completed(message)

    # ------------------------------------------------------------------ endings

    def _timings(self) -> tuple[int, int]:
        first_token_ms = (
            int((self._first_token_at - self._started_at) * 1000) if self._first_token_at else 0
        )
        return first_token_ms, int((time.monotonic() - self._started_at) * 1000)

    async def _pause(self, state: RunState) -> None:
        first_token_ms, duration_ms = self._timings()
        request = cpb.PauseRunRequest(
            owner_id=self.request.owner_id,
            chat_id=self.request.chat_id,
            tool_calls=[
                cpb.PendingToolCall(id=c.id, name=c.name, arguments=c.arguments)
                for c in state.pending
            ],
            usage=state.usage,
            custom_variables_json=orjson.dumps(state.custom_variables).decode()
            if state.custom_variables
            else "",
            first_token_ms=first_token_ms,
            duration_ms=duration_ms,
            unsaved_input_json=encode_input_messages(state.unsaved_input)
            if state.unsaved_input
            else "",
            answer_so_far="".join(state.answer),
        )
        try:
            paused = await self.deps.registry.call(
                f"chat {self.request.chat_id}: pausing it",
                lambda timeout: self.deps.conversations.PauseRun(request, timeout=timeout),
                budget_s=UNBOUNDED,
            )
        except grpc.aio.AioRpcError as err:
            if err.code() not in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.NOT_FOUND):
                raise
            log.info("chat %d ended elsewhere: %s", self.request.chat_id, err.details())
            return
        await self.events.ended(paused)

    async def _finish(
        self,
        status: ChatStatus,
        *,
        error: cpb.ChatError | None = None,
        answer: str = "",
        answer_id: int = 0,
        usage: cpb.Usage | None = None,
        budget_s: float = UNBOUNDED,
    ) -> None:
        """Retried until it lands (the answer, streamed already, is stored) or the run is
        found ended elsewhere; the registry takes an identical retry as a success."""
        first_token_ms, duration_ms = self._timings()
        request = cpb.FinishRunRequest(
            owner_id=self.request.owner_id,
            chat_id=self.request.chat_id,
            status=status,
            answer=answer,
            # Minted here, not by the registry, so a retry is recognised as the same.
            answer_message_id=answer_id or self.deps.ids.next_id(),
            usage=usage or cpb.Usage(),
            last_error=error or cpb.ChatError(),
            first_token_ms=first_token_ms,
            duration_ms=duration_ms,
        )
        await self.deps.outcomes.keep(request)
        await self._store_outcome(request, budget_s)

    async def _store_outcome(self, request: cpb.FinishRunRequest, budget_s: float) -> None:
        try:
            finished = await self.deps.registry.call(
                f"chat {self.request.chat_id}: finishing its run",
                lambda timeout: self.deps.conversations.FinishRun(request, timeout=timeout),
                budget_s=budget_s,
            )
        except grpc.aio.AioRpcError as err:
            # Ended elsewhere, or its conversation was deleted meanwhile: nothing to tell.
            if err.code() not in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.NOT_FOUND):
                raise
            log.info("chat %d ended elsewhere: %s", self.request.chat_id, err.details())
            await self.deps.outcomes.forget(self.request.chat_id)
            return
        # The client hears first: forgetting is a JetStream round trip it need not wait for.
        await self.events.ended(finished)
        await self.deps.outcomes.forget(self.request.chat_id)


def _add_usage(usage: cpb.Usage, prompt_tokens: int, completion_tokens: int) -> None:
    usage.prompt_tokens += prompt_tokens
    usage.completion_tokens += completion_tokens
