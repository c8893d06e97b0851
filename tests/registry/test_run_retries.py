"""A runner retries a registry call whose reply it lost (the registry restarted, a deadline
passed): the retry of an identical StartRun, AppendRunMessages, PauseRun or FinishRun that
already landed succeeds with what was stored; a different one is still refused. On each
database backend."""

from __future__ import annotations

import grpc

from cozeplus.rpc.v1 import conversations_pb2 as cpb
from tests.registry.rpc_expect import expect_status
from tests.registry.test_conversations import Fixture
from tests.registry.test_paused_runs import _ids, append, call_message, f, pause

__all__ = ["f"]

PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION
ALREADY_EXISTS = grpc.StatusCode.ALREADY_EXISTS


async def test_an_identical_finish_retried_returns_the_run(f: Fixture) -> None:
    chat = await f.chat()
    await f.start(chat.id)
    answer_id = _ids.next_id()
    fields = {
        "answer": "the answer",
        "answer_message_id": answer_id,
        "usage": cpb.Usage(prompt_tokens=3, completion_tokens=2),
    }
    finished = await f.finish(chat.id, **fields)
    again = await f.finish(chat.id, **fields)
    assert again == finished
    assert [m.id for m in await f.chat_messages(chat.id) if m.type == "answer"] == [answer_id]
    # Another outcome is no retry: refused, nothing stored.
    await expect_status(f.finish(chat.id, answer="other"), PRECONDITION, "chat already completed")
    await expect_status(f.finish(chat.id, "failed"), PRECONDITION, "chat already completed")
    await expect_status(
        f.finish(chat.id, answer="the answer", answer_message_id=_ids.next_id()),
        PRECONDITION,
        "chat already completed",
    )
    assert len(await f.chat_messages(chat.id)) == 2


async def test_an_identical_failed_finish_retried_returns_the_run(f: Fixture) -> None:
    chat = await f.chat()
    await f.start(chat.id)
    error = cpb.ChatError(code=503, msg="runner shutting down")
    finished = await f.finish(chat.id, "failed", last_error=error)
    assert await f.finish(chat.id, "failed", last_error=error) == finished
    await expect_status(
        f.finish(chat.id, "failed", last_error=cpb.ChatError(code=500, msg="x")),
        PRECONDITION,
        "chat already failed",
    )


async def test_a_retried_start_carries_the_history_and_is_marked_restarted(f: Fixture) -> None:
    chat = await f.chat()
    first = await f.start(chat.id)
    again = await f.start(chat.id)
    assert again.restarted and not first.restarted
    assert list(again.chat_messages) == list(first.chat_messages)
    assert [m.content for m in again.chat_messages] == ["hello"]


async def test_an_identical_append_and_pause_retried_return_what_was_stored(f: Fixture) -> None:
    chat = await f.chat()
    await f.start(chat.id)
    message = call_message("c1")
    stored = await append(f, chat.id, message)
    assert (await append(f, chat.id, message)).messages == stored.messages
    assert [m.type for m in await f.chat_messages(chat.id)] == ["question", "function_call"]
    changed = cpb.RunMessage()
    changed.CopyFrom(message)
    changed.content = "{}"
    await expect_status(append(f, chat.id, changed), ALREADY_EXISTS, str(message.id))

    paused = await pause(f, chat.id, "c1")
    assert await pause(f, chat.id, "c1") == paused
    await expect_status(pause(f, chat.id, "c2"), PRECONDITION, "not in_progress")
