"""The official Node SDK, @coze/api, against the running system (skipped without Node)."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Account

COZE_API_VERSION = "1.3.9"
HERE = Path(__file__).parent

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or shutil.which("npm") is None,
    reason="Node.js and npm are not installed",
)


@pytest.fixture(scope="session")
def coze_js(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder the test owns with @coze/api installed from the npm registry."""
    folder = tmp_path_factory.mktemp("coze-js")
    (folder / "package.json").write_text(
        '{"name": "coze-js-check", "private": true, "type": "module"}'
    )
    installed = subprocess.run(
        # axios is a peer dependency of @coze/api.
        ["npm", "install", "--no-audit", "--no-fund", f"@coze/api@{COZE_API_VERSION}", "axios"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert installed.returncode == 0, installed.stderr
    shutil.copy(HERE / "coze_api_check.mjs", folder / "check.mjs")
    return folder


def test_coze_api_stream_create_and_poll_and_bots_retrieve(
    coze_js: Path, chat_system: str, account: Account, make_bot: Callable[..., str]
) -> None:
    bot_id = make_bot(model="mock-echo")
    result = subprocess.run(
        ["node", "check.mjs", chat_system, account.token, bot_id],
        cwd=coze_js,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)

    assert out["onlineInfo"]["bot_id"] == bot_id and out["onlineInfo"]["version"] == "1"
    assert out["bot"]["bot_id"] == bot_id and out["bot"]["name"] == "chat bot"

    stream = out["stream"]
    assert stream["events"][:2] == ["conversation.chat.created", "conversation.chat.in_progress"]
    assert stream["events"][-3:] == [
        "conversation.chat.completed",
        "conversation.stream.done",
        "done",
    ]
    assert "hello from js" in stream["answer"]
    assert stream["completed"]["usage"]["token_count"] > 0

    poll = out["poll"]
    assert poll["status"] == "completed"
    answers = [m for m in poll["messages"] if m["type"] == "answer"]
    assert answers and "poll from js" in answers[0]["content"]
