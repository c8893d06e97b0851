"""A run rides out a registry that goes away, in process (the in-memory registry fails calls
as a restarting one does): transient errors are retried inside the run, a call whose reply
was lost is retried and taken as landed, and FinishRun is retried until the answer the
client already saw is stored."""

from __future__ import annotations

import grpc
import pytest

from cozeplus.vocabulary import ChatStatus
from tests.runner.fakes import FakeTool, Round, harness

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
