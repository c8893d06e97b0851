"""In-process fakes for the agent loop's fast tier: the registry's Conversations RPCs as an
in-memory store, a NATS publisher that records events, scripted model providers and tools."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
import orjson

from cozeplus.chat_protocol import (
    EVENT_HEADER,
    HEARTBEAT_EVENT,
    ChatRequest,
    HistoryMessage,
    InputMessage,
)
from cozeplus.ids import IdGenerator
from cozeplus.model_catalog import ModelCatalog, ModelSpec
from cozeplus.rpc.v1 import conversations_pb2 as cpb
from cozeplus.rpc.v1 import registry_pb2 as pb
from cozeplus.vocabulary import ChatStatus, PluginType
from services.runner.chat_run import ChatRun, RunnerDeps
from services.runner.providers.base import (
    Completion,
    CompletionRequest,
    ProviderUnavailable,
    StreamItem,
    TextDelta,
    Usage,
)
from services.runner.registry_calls import RegistryRetry
from services.runner.tools.base import ToolCall, ToolDefinition, ToolOutput

OWNER, BOT, CONVERSATION = 7, 70, 700
# What a chat answered in one round publishes, in order.
ANSWERED = [
    "conversation.chat.created",
    "conversation.chat.in_progress",
    "conversation.message.delta",
    "conversation.message.completed",
    "conversation.chat.completed",
]


class FakeRpcError(grpc.aio.AioRpcError):
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details)


class Events:
    """Records what a run publishes: (event name, decoded payload)."""

    def __init__(self) -> None:
        self.items: list[tuple[str, Any]] = []

    async def publish(
        self,
        subject: str,
        payload: bytes = b"",
        reply: str = "",
        headers: dict[str, str] | None = None,
    ) -> None:
        name = (headers or {}).get(EVENT_HEADER, "")
        if name != HEARTBEAT_EVENT:
            self.items.append((name, orjson.loads(payload)))

    def names(self) -> list[str]:
        return [name for name, _ in self.items]

    def messages(self, kind: str) -> list[Any]:
        return [
            p for n, p in self.items if n.startswith("conversation.message") and p["type"] == kind
        ]


class Conversations:
    """The Conversations RPCs a run calls, on an in-memory chat (one conversation)."""

    def __init__(self) -> None:
        self.runs: dict[int, cpb.ChatRun] = {}
        self.messages: list[cpb.Message] = []
        self.ids = itertools.count(10_000)
        # Injected faults, per RPC name, consumed in order: "down" fails the call before it
        # applies (the registry is away), "lost" applies it and then fails (its reply lost).
        self.faults: dict[str, list[str]] = {}
        self.calls: dict[str, int] = {}
        self.start_requests: list[cpb.StartRunRequest] = []
        # When set, StartRun waits for it (to see what a run does meanwhile).
        self.start_gate: asyncio.Event | None = None
        # Called with StartRun's call count before it looks the chat up: a test records a
        # chat late here (one the edge queued while the registry was recording it).
        self.before_start: Callable[[int], None] | None = None
        # What PauseRun kept of a chat that saves no input (auto_save_history false).
        self.unsaved_inputs: dict[int, str] = {}
        # The answer text a paused run had streamed.
        self.paused_answers: dict[int, str] = {}

    def _fault(self, rpc: str, when: str) -> None:
        """Raises UNAVAILABLE if the next fault planned for `rpc` is `when`."""
        planned = self.faults.get(rpc)
        if planned and planned[0] == when:
            planned.pop(0)
            raise FakeRpcError(grpc.StatusCode.UNAVAILABLE, f"{rpc}: registry {when}")

    def create(
        self,
        chat_id: int,
        question: str,
        content_type: str = "text",
        auto_save_history: bool = True,
    ) -> None:
        self.runs[chat_id] = cpb.ChatRun(
            id=chat_id,
            conversation_id=CONVERSATION,
            section_id=CONVERSATION,
            owner_id=OWNER,
            bot_id=BOT,
            status=ChatStatus.CREATED,
            auto_save_history=auto_save_history,
        )
        if auto_save_history:
            self._add(chat_id, "user", "question", question, content_type=content_type)

    def _add(
        self,
        chat_id: int,
        role: str,
        kind: str,
        content: str,
        message_id: int = 0,
        meta: str = "",
        content_type: str = "text",
    ) -> cpb.Message:
        message = cpb.Message(
            id=message_id or next(self.ids),
            conversation_id=CONVERSATION,
            section_id=CONVERSATION,
            chat_id=chat_id,
            bot_id=BOT,
            role=role,
            type=kind,
            content=content,
            content_type=content_type,
            meta_data_json=meta or "{}",
        )
        self.messages.append(message)
        return message

    def chat_messages(self, chat_id: int) -> list[cpb.Message]:
        return [m for m in self.messages if m.chat_id == chat_id]

    async def StartRun(
        self,
        request: cpb.StartRunRequest,
        timeout: float | None = None,  # noqa: ASYNC109 (gRPC's)
    ) -> cpb.StartRunResponse:
        self.calls["StartRun"] = self.calls.get("StartRun", 0) + 1
        self.start_requests.append(request)
        if self.start_gate is not None:
            await self.start_gate.wait()
        self._fault("StartRun", "down")
        if self.before_start is not None:
            self.before_start(self.calls["StartRun"])
        found = self.runs.get(request.chat_id)
        if found is None:
            raise FakeRpcError(grpc.StatusCode.NOT_FOUND, f"chat {request.chat_id} not found")
        run = found
        history = [m for m in self.messages if m.chat_id != run.id]
        chat_messages = self.chat_messages(run.id)
        if request.without_messages:
            history, chat_messages = [], []
        kept = self.unsaved_inputs.get(run.id, "")
        answer_so_far = self.paused_answers.get(run.id, "")
        if run.status == ChatStatus.IN_PROGRESS:
            return cpb.StartRunResponse(
                run=run,
                history=history,
                chat_messages=chat_messages,
                restarted=True,
                unsaved_input_json=kept,
                answer_so_far=answer_so_far,
            )
        if run.status != ChatStatus.CREATED:
            raise FakeRpcError(grpc.StatusCode.FAILED_PRECONDITION, f"chat already {run.status}")
        run.status = ChatStatus.IN_PROGRESS
        self._fault("StartRun", "lost")
        return cpb.StartRunResponse(
            run=run,
            history=history,
            chat_messages=chat_messages,
            unsaved_input_json=kept,
            answer_so_far=answer_so_far,
        )

    async def AppendRunMessages(
        self,
        request: cpb.AppendRunMessagesRequest,
        timeout: float | None = None,  # noqa: ASYNC109 (gRPC's)
    ) -> cpb.AppendRunMessagesResponse:
        self._fault("AppendRunMessages", "down")
        run = self.runs[request.chat_id]
        known = {m.id: m for m in self.messages}
        if all(m.id in known for m in request.messages):
            return cpb.AppendRunMessagesResponse(messages=[known[m.id] for m in request.messages])
        if run.status != ChatStatus.IN_PROGRESS:
            raise FakeRpcError(grpc.StatusCode.FAILED_PRECONDITION, "not in_progress")
        stored = [
            self._add(
                run.id,
                m.role,
                m.type,
                m.content,
                m.id,
                orjson.dumps({"tool_call_id": m.tool_call_id}).decode() if m.tool_call_id else "",
            )
            for m in request.messages
        ]
        self._fault("AppendRunMessages", "lost")
        return cpb.AppendRunMessagesResponse(messages=stored)

    async def PauseRun(
        self,
        request: cpb.PauseRunRequest,
        timeout: float | None = None,  # noqa: ASYNC109 (gRPC's)
    ) -> cpb.ChatRun:
        run = self.runs[request.chat_id]
        assert run.status == ChatStatus.IN_PROGRESS
        run.status = ChatStatus.REQUIRES_ACTION
        del run.pending_tool_calls[:]
        run.pending_tool_calls.extend(request.tool_calls)
        run.usage.CopyFrom(request.usage)
        run.custom_variables_json = request.custom_variables_json
        self.unsaved_inputs[run.id] = request.unsaved_input_json
        self.paused_answers[run.id] = request.answer_so_far
        return run

    def submit(self, chat_id: int, outputs: Mapping[str, str]) -> None:
        run = self.runs[chat_id]
        assert run.status == ChatStatus.REQUIRES_ACTION
        for call in run.pending_tool_calls:
            self._add(
                chat_id,
                "assistant",
                "tool_response",
                outputs[call.id],
                meta=orjson.dumps({"tool_call_id": call.id}).decode(),
            )
        del run.pending_tool_calls[:]
        run.status = ChatStatus.CREATED

    async def FinishRun(
        self,
        request: cpb.FinishRunRequest,
        timeout: float | None = None,  # noqa: ASYNC109 (gRPC's)
    ) -> cpb.ChatRun:
        self.calls["FinishRun"] = self.calls.get("FinishRun", 0) + 1
        self._fault("FinishRun", "down")
        run = self.runs[request.chat_id]
        if run.status != ChatStatus.IN_PROGRESS:
            answers = [m for m in self.chat_messages(run.id) if m.type == "answer"]
            if run.status == request.status and [(m.id, m.content) for m in answers] == (
                [(request.answer_message_id, request.answer)] if request.answer else []
            ):
                return run  # an identical retry, as the registry takes it
            raise FakeRpcError(grpc.StatusCode.FAILED_PRECONDITION, f"chat already {run.status}")
        run.status = request.status
        run.usage.CopyFrom(request.usage)
        run.last_error.CopyFrom(request.last_error)
        if request.answer:
            self._add(run.id, "assistant", "answer", request.answer, request.answer_message_id)
        self._fault("FinishRun", "lost")
        return run


class BotConfigs:
    def __init__(self, config: pb.BotConfig) -> None:
        self.config = config

    async def get(
        self, owner_id: int, bot_id: int, version: int, timeout_s: float | None = None
    ) -> pb.BotConfig:
        return self.config


# A model round: text to stream and/or tool calls ((name, arguments) pairs).
@dataclass
class Round:
    text: str = ""
    calls: Sequence[tuple[str, Mapping[str, Any]]] = ()
    usage: tuple[int, int] = (10, 5)
    fail: bool = False


@dataclass
class ScriptedProvider:
    """Plays one Round per model call (the last one again past the end); records requests."""

    rounds: list[Round]
    requests: list[CompletionRequest] = field(default_factory=list)
    # Streams closed before their end (a cancel, or an early call nobody reads).
    closed_early: int = 0
    spec: ModelSpec = field(default_factory=lambda: ModelSpec(id="fake", provider="echo"))
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    async def stream(self, request: CompletionRequest) -> AsyncGenerator[StreamItem, None]:
        plan = self.rounds[min(len(self.requests), len(self.rounds) - 1)]
        self.requests.append(request)
        finished = False
        try:
            await asyncio.sleep(0)
            if plan.fail:
                raise ProviderUnavailable("model 'fake' failed (HTTP 500)")
            if plan.text:
                yield TextDelta(plan.text)
            for name, arguments in plan.calls:
                yield ToolCall(
                    id=f"call_{next(self._ids)}",
                    name=name,
                    arguments=orjson.dumps(arguments).decode(),
                )
            finished = True
            yield Completion(
                Usage(*plan.usage), finish_reason="tool_calls" if plan.calls else "stop"
            )
        finally:
            if not finished:
                self.closed_early += 1

    async def aclose(self) -> None:
        return None


@dataclass
class FakeTool:
    """A server-side (or, with plugin_type LOCAL, client-side) tool with a scripted body."""

    name: str
    result: str = "ok"
    plugin_type: PluginType = PluginType.OPENAPI
    delay: asyncio.Event | None = None
    raises: bool = False
    hangs: bool = False
    calls: list[Mapping[str, Any]] = field(default_factory=list)
    running: list[int] = field(default_factory=lambda: [0, 0])  # now, most at once
    plugin_id: int = 7401
    api_id: int = 7402
    # Set when the tool is called.
    entered: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def definition(self) -> ToolDefinition:
        return ToolDefinition(self.name, f"the {self.name} tool", {"type": "object"})

    async def call(self, arguments: Mapping[str, Any]) -> ToolOutput:
        self.calls.append(arguments)
        self.entered.set()
        self.running[0] += 1
        self.running[1] = max(self.running)
        try:
            if self.hangs:
                await asyncio.Event().wait()
            if self.delay is not None:
                await self.delay.wait()
            if self.raises:
                raise RuntimeError("boom")
            return ToolOutput(self.result)
        finally:
            self.running[0] -= 1


@dataclass
class HeldTool(FakeTool):
    """A tool that holds something for its run (as MCP tools hold a session)."""

    closed: int = 0
    close_fails: bool = False

    async def aclose(self) -> None:
        self.closed += 1
        if self.close_fails:
            raise RuntimeError("the session would not close")


@dataclass
class Tools:
    tools: list[FakeTool]
    # Loads that fail first (a registry fault, not retried), one each.
    failures: int = 0

    async def tools_for(
        self, *, owner_id: int, bot_id: int, bot_version: int, config: pb.BotConfig
    ) -> Sequence[FakeTool]:
        if self.failures:
            self.failures -= 1
            raise FakeRpcError(grpc.StatusCode.INTERNAL, "registry fault")
        return self.tools


@dataclass
class Harness:
    conversations: Conversations
    events: Events
    provider: ScriptedProvider
    deps: RunnerDeps

    async def run(self, chat_id: int, question: str = "", **kwargs: Any) -> ChatRun:
        run = self.chat_run(chat_id, question, **kwargs)
        await run.execute()
        return run

    def chat_run(
        self,
        chat_id: int,
        question: str = "",
        *,
        resume: bool = False,
        custom_variables: dict[str, str] | None = None,
        content_type: str = "text",
        history: list[HistoryMessage] | None = None,
        first_delivery: bool = True,
        recorded: bool = True,
        auto_save_history: bool = True,
    ) -> ChatRun:
        """The run of one chat, not executed yet. `recorded=False`: queued while the registry
        records it, so the chat is not created here (a test records it through
        `conversations.before_start`, or never)."""
        if not resume and recorded:
            self.conversations.create(chat_id, question, content_type, auto_save_history)
        if resume:
            auto_save_history = self.conversations.runs[chat_id].auto_save_history
        request = ChatRequest(
            chat_id=chat_id,
            conversation_id=CONVERSATION,
            section_id=CONVERSATION,
            owner_id=OWNER,
            user_id="u",
            bot_id=BOT,
            bot_version=1,
            messages=[]
            if resume
            else [InputMessage(role="user", content=question, content_type=content_type)],
            custom_variables=custom_variables or {},
            created_at=0,
            resume_id=1 if resume else 0,
            history=history,
            recorded=recorded,
            auto_save_history=auto_save_history,
        )

        async def keepalive() -> None:
            return None

        return ChatRun(self.deps, request, keepalive, first_delivery=first_delivery)


def harness(
    rounds: list[Round],
    tools: list[FakeTool],
    *,
    max_tool_rounds: int = 0,
    tool_timeout_s: float = 5.0,
    prompt: str = "You help. {{city}}",
) -> Harness:
    conversations, events = Conversations(), Events()
    provider = ScriptedProvider(rounds)
    config = pb.BotConfig(prompt=prompt, history_rounds=10, max_tool_rounds=max_tool_rounds)
    config.model.model_id = "fake"
    deps = RunnerDeps(
        events=events,
        bots=None,  # type: ignore[arg-type]
        conversations=conversations,  # type: ignore[arg-type]
        catalog=ModelCatalog([provider.spec]),
        ids=IdGenerator(1),
        bot_configs=BotConfigs(config),  # type: ignore[arg-type]
        provider_for=lambda spec: provider,
        tools=Tools(tools),
        model_timeout_s=5.0,
        heartbeat_s=60.0,
        tool_timeout_s=tool_timeout_s,
        registry=RegistryRetry(budget_s=1.0, first_backoff_s=0.001, max_backoff_s=0.002),
    )
    return Harness(conversations, events, provider, deps)
