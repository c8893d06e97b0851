"""Run deadlines against real processes: the registry's sweeper ends runs that nobody will
finish (an edge killed between CreateChat and queueing), a registry restarted under streaming
load (SQLite and PostgreSQL) costs no chat and no stored answer, and cancel ends a run no
runner holds."""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from cozeplus.embedded_nats import EmbeddedNats
from tests.registry.conftest import database_for_backend
from tests.reliability.stack import (
    Stack,
    StackAccount,
    StreamResult,
    in_threads,
    stream_chat,
    temp_dir,
)

CREATED_S = 4
SILENCE_S = 5
SWEEP_S = 0.5
FAST_DEADLINES = {
    "COZEPLUS_REGISTRY_RUN_CREATED_S": str(CREATED_S),
    "COZEPLUS_REGISTRY_RUN_SILENCE_S": str(SILENCE_S),
    "COZEPLUS_REGISTRY_RUN_SWEEP_INTERVAL_S": str(SWEEP_S),
}
FAST_EDGE = {
    "COZEPLUS_EDGE_CHAT_QUEUE_TIMEOUT_S": "10",
    "COZEPLUS_EDGE_CHAT_RUNNER_LOST_S": "5",
}
# Whatever a run's status when the registry came back, its deadline has passed by then (plus
# sweeps, and slack for a loaded CI machine). A bound on waiting, not a speed requirement.
ALL_DEADLINES_S = max(CREATED_S, SILENCE_S) + 20
WAIT_S = 60


def _created_runs(database: Path, owner_id: int) -> list[int]:
    with sqlite3.connect(database) as db:
        rows = db.execute(
            "SELECT id FROM chat_runs WHERE owner_id = ? AND status = 'created'", (owner_id,)
        ).fetchall()
    return [int(r[0]) for r in rows]


def test_an_edge_killed_between_create_and_queue_leaves_a_run_the_sweeper_ends(
    nats: EmbeddedNats,
) -> None:
    stack = Stack(temp_dir("cozeplus-edge-kill-"), nats.url, registry_env=FAST_DEADLINES)
    stack.start(runners=0)
    try:
        account = stack.account()
        bot_id = stack.bot(account, "echo")
        assert nats.process is not None
        # NATS freezes: the edge's CreateChat goes through (the registry needs no NATS for
        # it), then its publish to the work queue waits for an acknowledgement...
        os.kill(nats.process.pid, signal.SIGSTOP)
        try:
            join = in_threads(1, lambda _: stream_chat(stack.url, account, bot_id, "hi"))
            deadline = time.monotonic() + WAIT_S
            database = stack.root / "registry" / "registry.db"
            while not (created := _created_runs(database, account.user_id)):
                assert time.monotonic() < deadline, stack.edge.log_tail()
                time.sleep(0.02)
            # ...and the edge dies right there, before queueing or failing the chat.
            stack.edge.kill()
        finally:
            os.kill(nats.process.pid, signal.SIGCONT)
        (result,) = join()
        assert result.status == 0  # the client lost its connection with the edge
        (chat_id,) = created
        run = stack.wait_all_terminal(account, [chat_id], ALL_DEADLINES_S)[chat_id]
        assert run.status == "failed"
        assert run.last_error.code == 503
        assert f"no runner started this chat within {CREATED_S}s" in run.last_error.msg
        assert f"chat {chat_id}: ended by the run sweeper as failed" in stack.registry.log_tail(200)
    finally:
        stack.stop()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_registry_killed_under_streaming_load_leaves_no_run_unfinished(
    backend: str, nats: EmbeddedNats, models_file: Path, mock_llm: str
) -> None:
    with database_for_backend(backend) as database_url:
        stack = Stack(
            temp_dir(f"cozeplus-registry-kill-{backend}-"),
            nats.url,
            database_url=database_url,
            models_file=models_file,
            registry_env=FAST_DEADLINES,
            edge_env=FAST_EDGE,
            # Heartbeats well inside the short silence window.
            runner_env={"COZEPLUS_RUNNER_REGISTRY_HEARTBEAT_S": "1"},
        )
        stack.start(runners=1)
        try:
            _registry_restart_under_load(stack, database_url)
        finally:
            stack.stop()


def _sqlite_url(stack: Stack) -> str:
    return f"sqlite:///{stack.root / 'registry' / 'registry.db'}"


def _count_in_progress(database_url: str) -> int:
    engine = sa.create_engine(database_url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as connection:
            return int(
                connection.execute(
                    sa.text("SELECT count(*) FROM chat_runs WHERE status = 'in_progress'")
                ).scalar_one()
            )
    except sa.exc.OperationalError:  # not migrated yet
        return 0
    finally:
        engine.dispose()


def _registry_restart_under_load(stack: Stack, database_url: str) -> None:
    account = stack.account()
    bot_id = stack.bot(account, "mock-stream-slow")
    chats = 16
    join = in_threads(
        chats, lambda i: stream_chat(stack.url, account, bot_id, f"chat {i} tell me more")
    )
    # Once every stream is going, the registry is gone for 3 s.
    deadline = time.monotonic() + WAIT_S
    while _count_in_progress(database_url or _sqlite_url(stack)) < chats:
        assert time.monotonic() < deadline, stack.runners[0].log_tail()
        time.sleep(0.05)
    stack.registry.kill()
    time.sleep(3.0)
    stack.restart_registry()
    results: list[StreamResult] = join()

    # Every client got a stream (each was recorded before the registry went away).
    assert [r.status for r in results] == [200] * chats, [r.error for r in results]
    streams = results
    chat_ids = [r.chat_id for r in streams]
    assert all(chat_ids)
    # No run stays unfinished past its deadline.
    runs = stack.wait_all_terminal(account, chat_ids, ALL_DEADLINES_S)

    # The runner rides the restart out (registry calls retried, FinishRun until it lands):
    # every stream completed with its full answer, and that answer is the stored one.
    assert [r.terminal for r in streams] == ["completed"] * len(streams), [
        (r.chat_id, r.events[-3:]) for r in streams if r.terminal != "completed"
    ]
    assert all(r.streamed_answer for r in streams)
    mismatched = [
        r.chat_id for r in streams if stack.stored_answer(account, r.chat_id) != r.streamed_answer
    ]
    assert mismatched == []
    assert {run.status for run in runs.values()} == {"completed"}
    # ...and it did have to: the restart fell inside the runs.
    assert "registry UNAVAILABLE; retrying" in stack.runners[0].log_tail(2000)


def test_cancel_ends_a_run_whose_runner_died(
    nats: EmbeddedNats, models_file: Path, mock_llm: str
) -> None:
    # The sweeper effectively off after its first round, so that only cancel can end the run.
    stack = Stack(
        temp_dir("cozeplus-cancel-stuck-"),
        nats.url,
        models_file=models_file,
        registry_env={
            "COZEPLUS_REGISTRY_RUN_SILENCE_S": str(SILENCE_S),
            "COZEPLUS_REGISTRY_RUN_SWEEP_INTERVAL_S": "3600",
        },
    )
    stack.start(runners=1)
    try:
        account = stack.account()
        bot_id = stack.bot(account, "mock-slow")  # its model waits 60 s for a first token
        join = in_threads(1, lambda _: stream_chat(stack.url, account, bot_id, "hello"))
        deadline = time.monotonic() + WAIT_S
        while not (running := _in_progress(stack, account)):
            assert time.monotonic() < deadline, stack.runners[0].log_tail()
            time.sleep(0.1)
        ((chat_id, conversation_id),) = running
        # The runner dies holding the chat; no other runner will take it.
        stack.runners[0].kill()
        # Past the silence window nothing holds the run: cancel ends it at once.
        time.sleep(SILENCE_S + 0.5)
        with httpx.Client(base_url=stack.url, headers=account.headers, timeout=30) as http:
            response = http.post(
                "/v3/chat/cancel",
                json={"conversation_id": str(conversation_id), "chat_id": str(chat_id)},
            )
        assert response.status_code == 200, response.text
        assert response.json()["data"]["status"] == "canceled"
        (result,) = join()
        assert result.terminal == "canceled"
        # A runner that shows up for it later finds it ended and leaves it so.
        stack.add_runner()
        runner = stack.runners[-1]
        deadline = time.monotonic() + WAIT_S
        while f"chat {chat_id} already ended" not in runner.log_tail(50):
            assert time.monotonic() < deadline, runner.log_tail()
            time.sleep(0.2)
        assert stack.chats(account, [chat_id])[chat_id].status == "canceled"
    finally:
        stack.stop()


def _in_progress(stack: Stack, account: StackAccount) -> list[tuple[int, int]]:
    database = stack.root / "registry" / "registry.db"
    with sqlite3.connect(database) as db:
        rows = db.execute(
            "SELECT id, conversation_id FROM chat_runs WHERE owner_id = ? AND status = "
            "'in_progress'",
            (account.user_id,),
        ).fetchall()
    return [(int(a), int(b)) for a, b in rows]


def test_a_stream_whose_runner_died_is_ended_by_the_sweeper(
    nats: EmbeddedNats, models_file: Path, mock_llm: str
) -> None:
    # The edge's own watchdog set far off: the registry's word must end the stream.
    stack = Stack(
        temp_dir("cozeplus-sweeper-ends-stream-"),
        nats.url,
        models_file=models_file,
        registry_env=FAST_DEADLINES,
        edge_env={"COZEPLUS_EDGE_CHAT_RUNNER_LOST_S": "600"},
    )
    stack.start(runners=1)
    try:
        account = stack.account()
        bot_id = stack.bot(account, "mock-slow")  # its model waits 60 s for a first token
        join = in_threads(1, lambda _: stream_chat(stack.url, account, bot_id, "hello"))
        deadline = time.monotonic() + WAIT_S
        while not (running := _in_progress(stack, account)):
            assert time.monotonic() < deadline, stack.runners[0].log_tail()
            time.sleep(0.1)
        ((chat_id, _),) = running
        stack.runners[0].kill()
        (result,) = join()
        assert [e.name for e in result.events][-4:] == [
            "conversation.chat.failed",
            "error",
            "conversation.stream.done",
            "done",
        ]
        failed = result.events[-4].data
        assert failed["id"] == str(chat_id)
        assert failed["last_error"]["code"] == 500
        assert failed["last_error"]["msg"].startswith(
            f"run lost: no progress from its runner for {SILENCE_S}s"
        )
        assert result.events[-3].data["msg"] == failed["last_error"]["msg"]
        assert stack.chats(account, [chat_id])[chat_id].status == "failed"
    finally:
        stack.stop()


def test_cancel_that_no_runner_confirms_ends_the_run_through_the_registry(
    nats: EmbeddedNats, models_file: Path, mock_llm: str
) -> None:
    """The runner holding the chat hangs (frozen): the edge's cancel request goes unheard,
    so after CHAT_CANCEL_WAIT_S the edge ends the run through RunLiveness.EndRun; the runner,
    once it wakes, learns the run ended and leaves it so."""
    stack = Stack(
        temp_dir("cozeplus-cancel-unconfirmed-"),
        nats.url,
        models_file=models_file,
        edge_env={"COZEPLUS_EDGE_CHAT_CANCEL_WAIT_S": "1"},
        runner_env={"COZEPLUS_RUNNER_REGISTRY_HEARTBEAT_S": "0.5"},
    )
    stack.start(runners=1)
    try:
        account = stack.account()
        bot_id = stack.bot(account, "mock-slow")  # its model waits 60 s for a first token
        join = in_threads(1, lambda _: stream_chat(stack.url, account, bot_id, "hello"))
        deadline = time.monotonic() + WAIT_S
        while not (running := _in_progress(stack, account)):
            assert time.monotonic() < deadline, stack.runners[0].log_tail()
            time.sleep(0.1)
        ((chat_id, conversation_id),) = running
        runner = stack.runners[0].process
        assert runner is not None
        os.kill(runner.pid, signal.SIGSTOP)
        try:
            with httpx.Client(base_url=stack.url, headers=account.headers, timeout=30) as http:
                response = http.post(
                    "/v3/chat/cancel",
                    json={"conversation_id": str(conversation_id), "chat_id": str(chat_id)},
                )
            assert response.status_code == 200, response.text
            assert response.json()["data"]["status"] == "canceled"
            (result,) = join()
            assert result.terminal == "canceled"
        finally:
            os.kill(runner.pid, signal.SIGCONT)
        assert "did not confirm the cancel in time; ending it" in stack.edge.log_tail(100)
        # The runner wakes and stops the run: told by its heartbeat that the run ended, or
        # by the cancel request that was waiting for it, whichever it reads first.
        deadline = time.monotonic() + WAIT_S
        while f"chat {chat_id}: canceled" not in stack.runners[0].log_tail(100):
            assert time.monotonic() < deadline, stack.runners[0].log_tail()
            time.sleep(0.2)
        assert stack.chats(account, [chat_id])[chat_id].status == "canceled"
    finally:
        stack.stop()
