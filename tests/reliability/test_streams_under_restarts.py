"""Streams under restarts, against real processes: NATS restarted while chats stream (every
client's deltas checked against the stored answer: equal, or the stream says it lost events),
a runner SIGTERMed with a short grace while chats run (each ends failed with a clear error,
nothing hangs), and a runner that dies between streaming an answer and storing it."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import nats as nats_client
import pytest
from nats.aio.msg import Msg
from nats.js.errors import KeyNotFoundError

from cozeplus.chat_protocol import EVENT_HEADER, MESSAGE_DELTA
from cozeplus.embedded_nats import EmbeddedNats
from cozeplus.subjects import chat_events
from services.cli.system import free_port
from services.runner.run_outcomes import OUTCOME_BUCKET
from tests.reliability.stack import Stack, StreamResult, in_threads, stream_chat, temp_dir
from tests.reliability.test_run_deadlines import _count_in_progress

WAIT_S = 60
STREAM_INCOMPLETE_CODE = 5100


@pytest.fixture
def nats_port() -> int:
    return free_port()


@pytest.fixture
def servers(tmp_path: Path, nats_port: int) -> Iterator[list[EmbeddedNats]]:
    """The NATS servers a test ran on the port, first one started; all stopped after."""
    started = [EmbeddedNats(tmp_path / "nats", port=nats_port)]
    started[0].start()
    yield started
    for server in started:
        server.stop()


@pytest.fixture
def nats(servers: list[EmbeddedNats]) -> EmbeddedNats:
    return servers[0]


def _sqlite(stack: Stack) -> str:
    return f"sqlite:///{stack.root / 'registry' / 'registry.db'}"


def _wait_running(stack: Stack, count: int) -> None:
    deadline = time.monotonic() + WAIT_S
    while _count_in_progress(_sqlite(stack)) < count:
        assert time.monotonic() < deadline, stack.runners[0].log_tail()
        time.sleep(0.05)


def _loss_errors(result: StreamResult) -> list[dict[str, object]]:
    return [
        e.data
        for e in result.events
        if e.name == "error" and e.data.get("code") == STREAM_INCOMPLETE_CODE
    ]


def test_nats_restarted_under_streaming_load_never_alters_an_answer_silently(
    servers: list[EmbeddedNats], nats_port: int, tmp_path: Path, models_file: Path, mock_llm: str
) -> None:
    nats = servers[0]
    stack = Stack(
        temp_dir("cozeplus-nats-load-"),
        nats.url,
        models_file=models_file,
        # A chat whose every event was lost ends when this watchdog asks the registry.
        edge_env={
            "COZEPLUS_EDGE_CHAT_RUNNER_LOST_S": "5",
        },
    )
    stack.start(runners=1)
    try:
        account = stack.account()
        bot_id = stack.bot(account, "mock-stream-slow")
        chats = 24
        join = in_threads(
            chats, lambda i: stream_chat(stack.url, account, bot_id, f"chat {i} go on")
        )
        _wait_running(stack, chats)
        # NATS goes down mid-stream and comes back on the same port with its storage. The
        # edge is frozen meanwhile so that it reconnects last: the runner's events sent
        # between its own reconnect and the edge's find no subscriber and are lost.
        assert stack.edge.process is not None
        os.kill(stack.edge.process.pid, signal.SIGSTOP)
        try:
            nats.stop()
            time.sleep(0.5)
            servers.append(EmbeddedNats(tmp_path / "nats", port=nats_port))
            servers[-1].start()
            time.sleep(1.5)
        finally:
            os.kill(stack.edge.process.pid, signal.SIGCONT)
        results: list[StreamResult] = join()

        assert [r.status for r in results] == [200] * chats, [r.error for r in results]
        runs = stack.wait_all_terminal(account, [r.chat_id for r in results], WAIT_S)
        told: list[tuple[int, bool]] = []
        silent: list[int] = []
        for result in results:
            # Every stream ends as its chat is stored (no "runner lost" for a chat that ran).
            assert result.terminal == runs[result.chat_id].status, result.events[-3:]
            stored = stack.stored_answer(account, result.chat_id)
            if _loss_errors(result):
                told.append((result.chat_id, result.streamed_answer == stored))
            elif result.terminal == "completed" and result.streamed_answer != stored:
                silent.append(result.chat_id)
        # The one thing that must never happen: a stream that differs from its stored
        # answer without an error saying so.
        assert silent == [], f"{len(silent)} streams differ silently from the stored answer"
        # Events were lost, and every such stream was repaired (or told).
        edge_log = stack.edge.log_path.read_text(errors="replace")
        repaired = edge_log.count("stream repaired from the stored chat")
        assert repaired + len(told) > 0, "the restart cost no events: the test proved nothing"
        completed = [i for i, run in runs.items() if run.status == "completed"]
        differing = sum(1 for _, same in told if not same)
        print(
            f"{len(completed)}/{chats} completed; {repaired} streams repaired, "
            f"{len(told)} told of lost events "
            f"({differing} of them with deltas that differ from the stored answer)"
        )
    finally:
        stack.stop()


def test_a_runner_sigtermed_with_a_short_grace_fails_its_chats_clearly(
    nats: EmbeddedNats, models_file: Path, mock_llm: str
) -> None:
    stack = Stack(
        temp_dir("cozeplus-runner-sigterm-"),
        nats.url,
        models_file=models_file,
        runner_env={"COZEPLUS_RUNNER_SHUTDOWN_GRACE_S": "1"},
    )
    stack.start(runners=1)
    try:
        account = stack.account()
        bot_id = stack.bot(account, "mock-slow")  # its model waits 60 s for a first token
        chats = 6
        join = in_threads(chats, lambda i: stream_chat(stack.url, account, bot_id, f"chat {i}"))
        _wait_running(stack, chats)
        runner = stack.runners[0]
        started = time.monotonic()
        assert runner.stop(timeout=30) == 0
        stopped_in = time.monotonic() - started
        results: list[StreamResult] = join()

        for result in results:
            assert result.status == 200, result
            assert [e.name for e in result.events][-4:] == [
                "conversation.chat.failed",
                "error",
                "conversation.stream.done",
                "done",
            ]
            failed = result.events[-4].data
            assert failed["last_error"]["code"] == 503
            assert "shut down before it finished" in failed["last_error"]["msg"]
        runs = stack.chats(account, [r.chat_id for r in results])
        assert {run.status for run in runs.values()} == {"failed"}
        assert {run.last_error.code for run in runs.values()} == {503}
        log = runner.log_tail(500)
        for result in results:
            assert f"chat {result.chat_id}: still running after the 1s shutdown grace" in log
        # Nothing hung: the runner stopped within the grace and the abandon window.
        assert stopped_in < 25, stopped_in
    finally:
        stack.stop()


def _outcome_kept(nats_url: str, chat_id: int) -> bool:
    async def look() -> bool:
        nc = await nats_client.connect(nats_url)
        try:
            kv = await nc.jetstream().key_value(OUTCOME_BUCKET)
            try:
                await kv.get(str(chat_id))
            except KeyNotFoundError:
                return False
            return True
        finally:
            await nc.close()

    return asyncio.run(look())


def _streaming(nats_url: str, chat_id: int, timeout_s: float) -> bool:
    """Whether the chat's runner publishes a delta within `timeout_s`: it publishes only once
    StartRun has answered it, so freezing the registry after this cannot catch StartRun's
    reply on its way (the run committed in_progress, the runner still waiting)."""

    async def look() -> bool:
        nc = await nats_client.connect(nats_url)
        heard = asyncio.Event()

        async def on_event(msg: Msg) -> None:
            if (msg.headers or {}).get(EVENT_HEADER) == MESSAGE_DELTA:
                heard.set()

        try:
            await nc.subscribe(chat_events(chat_id), cb=on_event)
            try:
                await asyncio.wait_for(heard.wait(), timeout_s)
            except TimeoutError:
                return False
            return True
        finally:
            await nc.close()

    return asyncio.run(look())


def _in_progress_ids(stack: Stack) -> list[int]:
    with sqlite3.connect(stack.root / "registry" / "registry.db") as db:
        rows = db.execute("SELECT id FROM chat_runs WHERE status = 'in_progress'").fetchall()
    return [int(r[0]) for r in rows]


def test_a_runner_that_dies_before_storing_a_streamed_answer_leaves_it_to_the_next(
    nats: EmbeddedNats, models_file: Path, mock_llm: str
) -> None:
    """The runner streamed the whole answer, then could not store it (the registry frozen) and
    died. The chat is redelivered to another runner, which stores the outcome the first one
    kept: the client's stream and the store agree, and the chat is completed, not lost."""
    stack = Stack(temp_dir("cozeplus-kept-outcome-"), nats.url, models_file=models_file)
    stack.start(runners=1)
    try:
        account = stack.account()
        bot_id = stack.bot(account, "mock-stream-slow")
        join = in_threads(1, lambda _: stream_chat(stack.url, account, bot_id, "tell me"))
        deadline = time.monotonic() + WAIT_S
        while not (running := _in_progress_ids(stack)):
            assert time.monotonic() < deadline, stack.runners[0].log_tail()
            time.sleep(0.05)
        (chat_id,) = running
        assert _streaming(nats.url, chat_id, WAIT_S), stack.runners[0].log_tail()
        registry = stack.registry.process
        assert registry is not None
        os.kill(registry.pid, signal.SIGSTOP)
        try:
            # The answer is streamed; its FinishRun waits on the frozen registry.
            while not _outcome_kept(nats.url, chat_id):
                assert time.monotonic() < deadline, stack.runners[0].log_tail()
                time.sleep(0.1)
            stack.runners[0].kill()
            stack.add_runner()
        finally:
            os.kill(registry.pid, signal.SIGCONT)
        (result,) = join()
        assert result.terminal == "completed", result.events[-3:]
        assert result.streamed_answer
        assert stack.stored_answer(account, chat_id) == result.streamed_answer
        assert stack.chats(account, [chat_id])[chat_id].status == "completed"
        assert "storing the outcome its lost runner kept" in stack.runners[1].log_tail(200)
    finally:
        stack.stop()
