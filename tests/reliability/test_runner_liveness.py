"""The runner's side of run liveness against real processes: a runner heartbeats every run
it holds, so a chat that streams far longer than the registry's silence window completes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cozeplus.embedded_nats import EmbeddedNats
from tests.reliability.stack import Stack, in_threads, stream_chat, temp_dir

# The silence window is far shorter than the chat (mock-stream-slow streams for seconds):
# without heartbeats the sweeper would end it as lost.
SILENCE = {
    "COZEPLUS_REGISTRY_RUN_SILENCE_S": "1",
    "COZEPLUS_REGISTRY_RUN_SWEEP_INTERVAL_S": "0.2",
}


@pytest.fixture
def nats(tmp_path: Path) -> Iterator[EmbeddedNats]:
    with EmbeddedNats(tmp_path / "nats") as server:
        yield server


def test_a_chat_streaming_longer_than_the_silence_window_completes(
    nats: EmbeddedNats, models_file: Path, mock_llm: str
) -> None:
    stack = Stack(
        temp_dir("cozeplus-heartbeats-"),
        nats.url,
        models_file=models_file,
        registry_env=SILENCE,
        runner_env={"COZEPLUS_RUNNER_REGISTRY_HEARTBEAT_S": "0.2"},
    )
    stack.start(runners=1)
    try:
        account = stack.account()
        bot_id = stack.bot(account, "mock-stream-slow")
        results = in_threads(4, lambda i: stream_chat(stack.url, account, bot_id, f"chat {i}"))()
        for result in results:
            assert result.status == 200, result
            assert result.terminal == "completed", result.events[-3:]
            assert result.streamed_answer
            assert stack.stored_answer(account, result.chat_id) == result.streamed_answer
        assert "ended by the run sweeper" not in stack.registry.log_tail(500)
    finally:
        stack.stop()
