"""A queued chat that brings its history window asks the model while StartRun is under way
(time to first token without the second registry round trip), and publishes nothing until
StartRun says this runner holds the run."""

from __future__ import annotations

import asyncio

import grpc

from cozeplus.chat_protocol import HistoryMessage
from cozeplus.vocabulary import ChatStatus
from tests.runner.fakes import (
    ANSWERED,
    FakeRpcError,
    FakeTool,
    Harness,
    Round,
    Tools,
    harness,
)

HISTORY = [
    HistoryMessage(role="user", type="question", content="earlier question"),
    HistoryMessage(role="assistant", type="answer", content="earlier answer"),
]


async def _until(condition: object, what: str) -> None:
    """Lets the run's tasks go on until `condition()` holds (no clock involved)."""
    for _ in range(1000):
        if condition():  # type: ignore[operator]
            return
        await asyncio.sleep(0)
    raise AssertionError(f"never happened: {what}")


async def _gated_run(h: Harness, **kwargs: object) -> asyncio.Task[object]:
    h.conversations.start_gate = asyncio.Event()
    task: asyncio.Task[object] = asyncio.create_task(h.run(1, "new question", **kwargs))  # type: ignore[arg-type]
    await _until(lambda: h.conversations.calls.get("StartRun"), "StartRun called")
    return task


async def _gated_run_existing(h: Harness, status: ChatStatus) -> asyncio.Task[object]:
    """A chat the registry already holds in `status` when the runner takes it."""
    h.conversations.create(1, "new question")
    h.conversations.runs[1].status = status
    h.conversations.create = lambda *args, **kwargs: None  # type: ignore[method-assign]
    return await _gated_run(h, history=list(HISTORY))


async def test_the_model_is_asked_before_start_run_returns_and_nothing_is_published_meanwhile() -> (
    None
):
    h = harness([Round(text="the answer")], [])
    task = await _gated_run(h, history=list(HISTORY))

    await _until(lambda: h.provider.requests, "the model asked while StartRun waits")
    assert h.events.names() == [], "nothing published before the run is held"
    prompt = [(m.role, m.parts[0].text) for m in h.provider.requests[0].messages[1:]]
    assert prompt == [
        ("user", "earlier question"),
        ("assistant", "earlier answer"),
        ("user", "new question"),
    ]

    assert h.conversations.start_gate is not None
    h.conversations.start_gate.set()
    await task
    assert h.events.names() == ANSWERED
    assert len(h.provider.requests) == 1, "the early call is the first round's"
    assert h.conversations.runs[1].status == ChatStatus.COMPLETED
    # The registry was spared reading what the queue brought.
    assert [r.without_messages for r in h.conversations.start_requests] == [True]


async def test_an_early_call_that_could_not_be_prepared_starts_with_the_stored_history() -> None:
    h = harness([Round(text="hi")], [])
    h.conversations.create(9, "stored question")
    assert isinstance(h.deps.tools, Tools)
    h.deps.tools.failures = 1  # the early preparation's load; the usual order's works
    await h.run(1, "new question", history=list(HISTORY))
    assert [r.without_messages for r in h.conversations.start_requests] == [False]
    [request] = h.provider.requests
    prompt = [(m.role, m.parts[0].text) for m in request.messages[1:]]
    assert prompt == [("user", "stored question"), ("user", "new question")]
    assert h.conversations.runs[1].status == ChatStatus.COMPLETED


async def test_an_empty_history_is_a_known_one_the_new_conversation_case() -> None:
    h = harness([Round(text="hi")], [])
    task = await _gated_run(h, history=[])
    await _until(lambda: h.provider.requests, "the model asked while StartRun waits")
    assert h.conversations.start_gate is not None
    h.conversations.start_gate.set()
    await task
    assert h.conversations.runs[1].status == ChatStatus.COMPLETED


async def test_without_a_history_or_on_a_redelivery_the_model_waits_for_start_run() -> None:
    for kwargs in ({}, {"history": list(HISTORY), "first_delivery": False}):
        h = harness([Round(text="hi")], [])
        task = await _gated_run(h, **kwargs)
        for _ in range(50):
            await asyncio.sleep(0)
        assert h.provider.requests == [], kwargs
        assert h.conversations.start_gate is not None
        h.conversations.start_gate.set()
        await task
        assert len(h.provider.requests) == 1


async def test_a_chat_ended_while_queued_closes_the_early_call_unread() -> None:
    h = harness([Round(text="never shown")], [])
    task = await _gated_run_existing(h, ChatStatus.CANCELED)
    await _until(lambda: h.provider.requests, "the model asked while StartRun waits")
    assert h.conversations.start_gate is not None
    h.conversations.start_gate.set()
    await task
    assert h.events.names() == [], "a canceled chat tells nobody anything"
    assert h.provider.closed_early == 1


async def test_a_run_started_elsewhere_closes_the_early_call_and_fails_as_lost() -> None:
    h = harness([Round(text="a second, different answer")], [])
    task = await _gated_run_existing(h, ChatStatus.IN_PROGRESS)
    await _until(lambda: h.provider.requests, "the model asked while StartRun waits")
    assert h.conversations.start_gate is not None
    h.conversations.start_gate.set()
    await task
    assert h.provider.closed_early == 1
    assert "conversation.message.delta" not in h.events.names()
    assert h.conversations.runs[1].status == ChatStatus.FAILED


async def test_tools_of_the_early_call_behave_as_usual() -> None:
    weather = FakeTool("get_weather", result='{"temp": 21}')
    h = harness(
        [Round(calls=[("get_weather", {"city": "Paris"})]), Round(text="It is 21.")], [weather]
    )
    await h.run(1, "weather in Paris?", history=[])
    assert weather.calls == [{"city": "Paris"}]
    assert [t.name for t in h.provider.requests[0].tools] == ["get_weather"]
    assert len(h.provider.requests) == 2
    assert h.conversations.runs[1].status == ChatStatus.COMPLETED


async def test_a_start_run_that_fails_closes_the_early_call() -> None:
    h = harness([Round(text="never shown")], [])

    async def broken_start(*args: object, **kwargs: object) -> object:
        raise FakeRpcError(grpc.StatusCode.PERMISSION_DENIED, "no")

    h.conversations.StartRun = broken_start  # type: ignore[method-assign]
    try:
        await h.run(1, "q", history=[])
    except grpc.aio.AioRpcError as err:
        assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    else:
        raise AssertionError("the StartRun error propagates (the pool redelivers)")
    await _until(lambda: h.provider.closed_early == 1, "the early call closed")
    assert h.events.names() == []
