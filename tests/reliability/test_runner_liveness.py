"""The runner's side of run liveness against real processes: a runner heartbeats every run
it holds, so a chat that streams far longer than the registry's silence window completes."""

from __future__ import annotations

from pathlib import Path

import pytest

from cozeplus.embedded_nats import EmbeddedNats
from tests.reliability.stack import Stack, in_threads, stream_chat, temp_dir

# The silence window is far shorter than the chat (14 tokens 500 ms apart: 7 s): without
# heartbeats the sweeper would end it as lost. Progress is stored in whole seconds, so the
# window leaves room for that rounding and a late heartbeat on a busy machine.
SILENCE = {
    "COZEPLUS_REGISTRY_RUN_SILENCE_S": "3",
    "COZEPLUS_REGISTRY_RUN_SWEEP_INTERVAL_S": "0.2",
}
SLOW_MODEL = "mock-slower"


@pytest.fixture
def slow_models(tmp_path: Path, models_file: Path, mock_llm_port: int) -> Path:
    path = tmp_path / "models.toml"
    path.write_text(
        models_file.read_text() + f'[models.{SLOW_MODEL}]\nprovider = "openai"\n'
        f'base_url = "http://127.0.0.1:{mock_llm_port}/v1"\nmodel = "mock-inter-token-500"\n'
    )
    return path


def test_a_chat_streaming_longer_than_the_silence_window_completes(
    nats: EmbeddedNats, slow_models: Path, mock_llm: str
) -> None:
    stack = Stack(
        temp_dir("cozeplus-heartbeats-"),
        nats.url,
        models_file=slow_models,
        registry_env=SILENCE,
        runner_env={"COZEPLUS_RUNNER_REGISTRY_HEARTBEAT_S": "0.5"},
    )
    stack.start(runners=1)
    try:
        account = stack.account()
        bot_id = stack.bot(account, SLOW_MODEL)
        results = in_threads(4, lambda i: stream_chat(stack.url, account, bot_id, f"chat {i}"))()
        for result in results:
            assert result.status == 200, result
            assert result.terminal == "completed", result.events[-3:]
            assert result.streamed_answer
            assert stack.stored_answer(account, result.chat_id) == result.streamed_answer
        assert "ended by the run sweeper" not in stack.registry.log_tail(500)
    finally:
        stack.stop()
