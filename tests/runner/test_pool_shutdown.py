"""The pool's shutdown, in process: a chat fetched but not started when the runner stops is
handed back at once (NAK, StartRun never called); a chat still running when the grace ends is
failed with a clear error (its stream told) and acked, not left to stall."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from cozeplus.chat_protocol import ChatRequest, InputMessage
from cozeplus.vocabulary import ChatStatus
from services.runner.chat_run import SHUTDOWN_ERROR
from services.runner.pool import RunnerPool
from tests.runner.fakes import BOT, CONVERSATION, OWNER, FakeTool, Round, harness


@dataclass
class FakeMsg:
    """A work-queue message: records how the pool settled it."""

    data: bytes
    settled: list[str] = field(default_factory=list)

    async def ack(self) -> None:
        self.settled.append("ack")

    async def nak(self, delay: float | None = None) -> None:
        self.settled.append("nak")

    async def term(self) -> None:
        self.settled.append("term")

    async def in_progress(self) -> None:
        return None


def queued(chat_id: int) -> FakeMsg:
    request = ChatRequest(
        chat_id=chat_id,
        conversation_id=CONVERSATION,
        section_id=CONVERSATION,
        owner_id=OWNER,
        user_id="u",
        bot_id=BOT,
        bot_version=1,
        messages=[InputMessage(role="user", content="q")],
        created_at=0,
    )
    return FakeMsg(request.encode())


async def test_a_chat_fetched_as_the_runner_stops_is_handed_back_unstarted() -> None:
    h = harness([Round(text="never")], [])
    h.conversations.create(1, "q")
    pool = RunnerPool(h.deps, concurrency=4)
    await pool.drain(grace_s=1)  # stopping, with nothing running yet
    msg = queued(1)

    await pool._handle(msg)  # type: ignore[arg-type]

    assert msg.settled == ["nak"]
    assert h.conversations.calls.get("StartRun", 0) == 0
    assert h.conversations.runs[1].status == ChatStatus.CREATED


async def test_a_chat_running_past_the_grace_is_failed_and_acked() -> None:
    # The model calls a tool that never answers: the chat runs until the runner gives up.
    stuck = FakeTool("stuck", hangs=True)
    h = harness([Round(calls=[("stuck", {})])], [stuck])
    h.conversations.create(1, "q")
    pool = RunnerPool(h.deps, concurrency=4)
    msg = queued(1)
    task = asyncio.create_task(pool._handle(msg))  # type: ignore[arg-type]
    pool._tasks.add(task)
    await asyncio.wait_for(stuck.entered.wait(), 5)

    await pool.drain(grace_s=0.05, abandon_s=5)

    assert msg.settled == ["ack"]
    run = h.conversations.runs[1]
    assert run.status == ChatStatus.FAILED
    assert (run.last_error.code, run.last_error.msg) == (SHUTDOWN_ERROR.code, SHUTDOWN_ERROR.msg)
    assert h.events.names()[-1] == "conversation.chat.failed"
