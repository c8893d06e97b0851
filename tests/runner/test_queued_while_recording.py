"""A chat the edge queued while the registry was still recording it (a new conversation):
the runner's StartRun may find nothing yet. It asks again until the chat is there, and drops
the chat (publishing nothing) when the edge cancels it or it is never recorded. A chat queued
after it was recorded that StartRun cannot find has ended: dropped at once, as before."""

from __future__ import annotations

import asyncio

from cozeplus.vocabulary import ChatStatus
from services.runner.registry_calls import RecordingWait
from tests.runner.fakes import ANSWERED, Harness, Round, harness

QUICK = RecordingWait(wait_s=0.2, first_backoff_s=0.001, max_backoff_s=0.01)


def _record_at_call(h: Harness, call: int, chat_id: int, question: str) -> None:
    def before_start(calls: int) -> None:
        if calls == call:
            h.conversations.create(chat_id, question)

    h.conversations.before_start = before_start


async def test_start_run_asks_again_until_the_chat_is_recorded_and_the_chat_runs() -> None:
    h = harness([Round(text="the answer")], [])
    h.deps.recording = QUICK
    _record_at_call(h, 3, 1, "new question")

    await h.run(1, "new question", history=[], recorded=False)

    assert h.conversations.calls["StartRun"] == 3
    assert h.events.names() == ANSWERED
    assert len(h.provider.requests) == 1, "the model was asked once, early"
    assert h.conversations.runs[1].status == ChatStatus.COMPLETED


async def test_a_chat_never_recorded_is_dropped_with_nothing_published() -> None:
    h = harness([Round(text="never streamed")], [])
    h.deps.recording = QUICK

    run = await h.run(1, "new question", history=[], recorded=False)

    assert h.conversations.calls["StartRun"] > 1, "it was asked again"
    assert not run.holding
    assert h.events.names() == []
    assert 1 not in h.conversations.runs


async def test_a_cancel_from_the_edge_ends_the_wait_at_once() -> None:
    h = harness([Round(text="never streamed")], [])
    h.deps.recording = RecordingWait(wait_s=60.0, first_backoff_s=0.001, max_backoff_s=0.001)
    run = h.chat_run(1, "new question", history=[], recorded=False)

    def before_start(calls: int) -> None:
        if calls == 3:
            run.cancel()  # the edge's registry refused the chat: runners drop it

    h.conversations.before_start = before_start

    await asyncio.wait_for(run.execute(), timeout=10)

    assert h.conversations.calls["StartRun"] == 3, "not asked again after the cancel"
    assert h.events.names() == []


async def test_a_recorded_chat_start_run_cannot_find_has_ended_and_is_not_asked_again() -> None:
    h = harness([Round(text="never streamed")], [])
    h.deps.recording = QUICK
    h.conversations.create = lambda *args, **kwargs: None  # type: ignore[method-assign]

    await h.run(1, "new question", history=[])

    assert h.conversations.calls["StartRun"] == 1
    assert h.events.names() == []
