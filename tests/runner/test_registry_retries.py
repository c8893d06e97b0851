"""A run rides out a registry that goes away, in process (the in-memory registry fails calls
as a restarting one does): transient errors are retried inside the run, a call whose reply
was lost is retried and taken as landed, and FinishRun is retried until the answer the
client already saw is stored."""

from __future__ import annotations

import grpc
import pytest

from cozeplus.chat_protocol import ChatRequest, InputMessage
from cozeplus.rpc.v1 import conversations_pb2 as cpb
from cozeplus.vocabulary import ChatStatus
from services.runner.chat_run import ChatRun
from tests.runner.fakes import BOT, CONVERSATION, OWNER, FakeTool, Harness, Round, harness

COMPLETED_EVENTS = [
    "conversation.chat.created",
    "conversation.chat.in_progress",
    "conversation.message.delta",
    "conversation.message.completed",
    "conversation.chat.completed",
]


@pytest.mark.parametrize("fault", ["down", "lost"])
@pytest.mark.parametrize("rpc", ["StartRun", "FinishRun"])
async def test_a_registry_restart_around_a_call_costs_nothing(rpc: str, fault: str) -> None:
    h = harness([Round(text="the answer")], [])
    # Away twice in a row; a lost reply is only lost once (the retry finds it applied).
    h.conversations.faults[rpc] = ["down", "down"] if fault == "down" else ["lost"]

    await h.run(1, "question")

    assert h.conversations.faults[rpc] == [], "every fault was met and retried"
    assert h.events.names() == COMPLETED_EVENTS
    run = h.conversations.runs[1]
    assert run.status == ChatStatus.COMPLETED
    stored = [m.content for m in h.conversations.chat_messages(1) if m.type == "answer"]
    assert stored == ["the answer"]


@pytest.mark.parametrize("fault", ["down", "lost"])
async def test_stored_tool_messages_survive_a_lost_reply(fault: str) -> None:
    weather = FakeTool("get_weather", result="sunny")
    h = harness([Round(calls=[("get_weather", {})]), Round(text="It is sunny.")], [weather])
    h.conversations.faults["AppendRunMessages"] = [fault]

    await h.run(1, "weather?")

    assert h.conversations.runs[1].status == ChatStatus.COMPLETED
    kinds = [m.type for m in h.conversations.chat_messages(1)]
    assert kinds == ["question", "function_call", "tool_response", "answer"]
    assert len(h.events.messages("function_call")) == 1


async def test_a_registry_away_past_the_budget_fails_the_call() -> None:
    h = harness([Round(text="the answer")], [])
    h.conversations.faults["StartRun"] = ["down"] * 10_000

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await h.run(1, "question")

    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
    assert h.conversations.calls["StartRun"] > 3, "retried before giving up"
    assert h.conversations.runs[1].status == ChatStatus.CREATED
    assert h.events.names() == []


async def test_finish_run_is_retried_past_the_budget_until_it_lands() -> None:
    """The answer went out on the stream: it is stored however long the registry is away
    (here far longer than the 1 s budget other calls get)."""
    h = harness([Round(text="the answer")], [])
    h.conversations.faults["FinishRun"] = ["down"] * 700

    await h.run(1, "question")

    assert h.conversations.calls["FinishRun"] == 701
    assert h.conversations.runs[1].status == ChatStatus.COMPLETED
    assert h.events.names() == COMPLETED_EVENTS


class KeptOutcomes:
    """RunOutcomes in memory."""

    def __init__(self) -> None:
        self.kept_requests: dict[int, cpb.FinishRunRequest] = {}
        self.history: list[str] = []

    async def keep(self, request: cpb.FinishRunRequest) -> None:
        self.history.append(f"keep {request.chat_id}")
        self.kept_requests[request.chat_id] = request

    async def kept(self, chat_id: int) -> cpb.FinishRunRequest | None:
        return self.kept_requests.get(chat_id)

    async def forget(self, chat_id: int) -> None:
        self.history.append(f"forget {chat_id}")
        self.kept_requests.pop(chat_id, None)


async def test_an_outcome_is_kept_until_finish_run_lands() -> None:
    h = harness([Round(text="the answer")], [])
    outcomes = KeptOutcomes()
    h.deps.outcomes = outcomes
    h.conversations.faults["FinishRun"] = ["down"]

    await h.run(1, "question")

    assert outcomes.history == ["keep 1", "forget 1"]
    assert outcomes.kept_requests == {}


async def test_a_restarted_run_stores_the_outcome_its_dead_runner_kept() -> None:
    """Runner A streamed the answer, kept the outcome and died before FinishRun landed; the
    chat is redelivered to runner B, whose StartRun says restarted."""
    first = harness([Round(text="the streamed answer")], [])
    outcomes = KeptOutcomes()
    first.deps.outcomes = outcomes
    first.conversations.faults["FinishRun"] = ["down"] * 10_000
    with pytest.raises(grpc.aio.AioRpcError):
        await _run_with_finish_budget(first)
    assert 1 in outcomes.kept_requests

    # Runner B, on the same registry and outcome bucket.
    second = harness([Round(text="a different answer")], [])
    second.deps.outcomes = outcomes
    second.conversations = first.conversations
    second.deps.conversations = first.conversations  # type: ignore[assignment]
    first.conversations.faults["FinishRun"] = []
    await second.run(1, resume=True)

    run = first.conversations.runs[1]
    assert run.status == ChatStatus.COMPLETED
    stored = [m.content for m in first.conversations.chat_messages(1) if m.type == "answer"]
    assert stored == ["the streamed answer"]
    assert second.provider.requests == [], "B did not run the model again"
    assert second.events.names() == ["conversation.chat.completed"]
    assert outcomes.kept_requests == {}


async def test_a_restarted_run_without_a_kept_outcome_fails_as_lost() -> None:
    h = harness([Round(text="x")], [])
    h.deps.outcomes = KeptOutcomes()
    h.conversations.create(1, "q")
    h.conversations.runs[1].status = ChatStatus.IN_PROGRESS

    await h.run(1, resume=True)

    assert h.conversations.runs[1].status == ChatStatus.FAILED
    assert "runner running this chat was lost" in h.conversations.runs[1].last_error.msg


async def _run_with_finish_budget(h: Harness) -> None:
    """Runs a chat whose FinishRun gives up after the retry budget (a runner's crash there)."""
    h.conversations.create(1, "question")
    original = ChatRun._store_outcome

    async def bounded(run: ChatRun, request: cpb.FinishRunRequest, budget_s: float) -> None:
        await original(run, request, 0.05)

    ChatRun._store_outcome = bounded  # type: ignore[method-assign]
    try:
        run = ChatRun(h.deps, _request(1), _no_keepalive)
        await run._execute()
    finally:
        ChatRun._store_outcome = original  # type: ignore[method-assign]


async def _no_keepalive() -> None:
    return None


def _request(chat_id: int) -> ChatRequest:
    return ChatRequest(
        chat_id=chat_id,
        conversation_id=CONVERSATION,
        section_id=CONVERSATION,
        owner_id=OWNER,
        user_id="u",
        bot_id=BOT,
        bot_version=1,
        messages=[InputMessage(role="user", content="question")],
        created_at=0,
    )
