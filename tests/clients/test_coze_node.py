"""The product document's Node.js SDK (libs/coze-node, installed as `@coze/api` through an npm
alias): built here from source with its dev dependencies, then driven by node. Skipped, with
the reason, where Node.js or npm is absent.

- The product document's "Node.js SDK" sample runs verbatim (URL, key and bot id aside)
  against the running system.
- coze_node_check.mjs checks retries, timeouts, aborts, typed errors and the async iterator
  against a scripted server it starts itself.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Account

HERE = Path(__file__).parent
PACKAGE = HERE.parent.parent / "libs" / "coze-node"

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or shutil.which("npm") is None,
    reason="Node.js and npm are not installed",
)

# The product document's "Node.js SDK" sample, character for character.
NODE_SDK_SAMPLE = """\
const CozeClient = require('@coze/api');
const client = new CozeClient({
apiKey: 'your_api_key',
baseURL: 'https://your-domain.com'
});
// 对话
const response = await client.chat({
botId: 123456789,
query: '你好',
stream: true,
onMessage: (data) => {
console.log('收到消息:', data.delta);
},
onDone: (data) => {
console.log('对话完成,用量:', data.usage);
},
onError: (error) => {
console.error('错误:', error);
}
});
// 获取智能体信息
const botInfo = await client.bots.get(123456789);
console.log('智能体信息:', botInfo);
"""
# The sample uses both `require` and top-level `await`, which no single Node module kind
# allows; it runs as an ES module, with `require` provided the standard way.
ESM_PROLOGUE = (
    "import { createRequire } from 'node:module';\n"
    "const require = createRequire(import.meta.url);\n"
)


def _npm(args: list[str], cwd: Path) -> None:
    done = subprocess.run(
        ["npm", *args, "--no-audit", "--no-fund"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(scope="session")
def coze_node(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with the SDK built from libs/coze-node and installed as @coze/api."""
    source = tmp_path_factory.mktemp("coze-node-src")
    shutil.copytree(
        PACKAGE, source, dirs_exist_ok=True, ignore=shutil.ignore_patterns("node_modules", "dist")
    )
    _npm(["install"], source)  # the dev dependencies: typescript, @types/node
    _npm(["pack", "--pack-destination", str(source)], source)  # prepack builds dist/
    [tarball] = source.glob("cozeplus-sdk-*.tgz")
    app = tmp_path_factory.mktemp("coze-node-app")
    (app / "package.json").write_text('{"name": "coze-node-app", "private": true}')
    # The name the product document's sample requires, through an npm alias.
    _npm(["install", f"@coze/api@file:{tarball}"], app)
    installed = json.loads((app / "node_modules/@coze/api/package.json").read_text())
    assert installed["name"] == "@cozeplus/sdk"
    shutil.copy(HERE / "coze_node_check.mjs", app / "check.mjs")
    return app


def _node(app: Path, script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["node", script], cwd=app, capture_output=True, text=True, timeout=120, check=False
    )


def test_product_document_node_sample_runs_verbatim(
    coze_node: Path, chat_system: str, account: Account, make_bot: Callable[..., str]
) -> None:
    bot_id = make_bot(model="mock-echo", prompt="你是一个客服助手。")
    sample = (
        NODE_SDK_SAMPLE.replace("your_api_key", account.token, 1)
        .replace("https://your-domain.com", chat_system, 1)
        .replace("123456789", bot_id)
    )
    assert sample.count(bot_id) == 2
    (coze_node / "sample.mjs").write_text(ESM_PROLOGUE + sample)
    result = _node(coze_node, "sample.mjs")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    out = result.stdout
    deltas = re.findall(r"^收到消息: (.*)$", out, flags=re.M)
    assert "".join(deltas) == "你好"  # mock-echo answers with the question
    usage = re.search(
        r"^对话完成,用量: \{\n  token_count: (\d+),\n  output_count: (\d+),\n  input_count: (\d+),",
        out,
        flags=re.M,
    )
    assert usage is not None
    total, output, input_ = map(int, usage.groups())
    assert total == output + input_ > 0
    assert out.index("对话完成") < out.index("智能体信息")
    assert f"bot_id: '{bot_id}'" in out and "prompt: '你是一个客服助手。'" in out


def test_product_document_node_sample_reports_errors_through_on_error(
    coze_node: Path, chat_system: str, account: Account
) -> None:
    # As written, its bot 123456789 does not exist: the chat's 404 goes to onError, then
    # bots.get rejects with the SDK's NotFoundError.
    sample = NODE_SDK_SAMPLE.replace("your_api_key", account.token, 1).replace(
        "https://your-domain.com", chat_system, 1
    )
    (coze_node / "refused.mjs").write_text(ESM_PROLOGUE + sample)
    result = _node(coze_node, "refused.mjs")
    assert result.returncode == 1
    assert result.stdout == ""
    first_line = "错误: NotFoundError: HTTP 404: code 404, bot 123456789 not found"
    assert result.stderr.startswith(first_line)
    assert "NotFoundError: HTTP 404" in result.stderr.split("\n", 1)[1]


@pytest.fixture(scope="module")
def checks(coze_node: Path) -> dict[str, Any]:
    result = _node(coze_node, "check.mjs")
    assert result.returncode == 0, result.stderr
    out: dict[str, Any] = json.loads(result.stdout)
    return out


def test_429_and_503_are_retried_with_backoff(checks: dict[str, Any]) -> None:
    assert checks["retriedThenOk"] == {"value": {"bot_id": "7"}, "hits": 3}
    assert checks["firstRequest"] == {
        "method": "GET",
        "url": "/v1/bots/7",
        "auth": "Bearer pat_test",
        "body": None,
    }
    exhausted = checks["retriesExhausted"]
    # maxRetries 2: three attempts, then the last 429 as a typed error with its Retry-After.
    assert exhausted["hits"] == 3
    assert exhausted["error"] == {
        "name": "RateLimitError",
        "status": 429,
        "code": 429,
        "msg": "too many requests",
        "logId": "LOG123",
        "retryAfter": 0,
    }
    assert exhausted["classes"]["rateLimit"]


def test_other_errors_are_typed_and_not_retried(checks: dict[str, Any]) -> None:
    not_found, unauthorized = checks["notRetried"], checks["unauthorized"]
    assert not_found["hits"] == 1 and not_found["classes"]["notFound"]
    assert not_found["error"]["msg"] == "bot 7 not found"
    assert unauthorized["hits"] == 1 and unauthorized["classes"]["auth"]


def test_timeouts_and_aborts_through_abort_signal(checks: dict[str, Any]) -> None:
    assert checks["timeout"]["error"]["name"] == "CozeTimeoutError"
    assert checks["timeout"]["classes"]["timeout"]
    assert checks["aborted"]["error"]["name"] == "CozeAbortError"
    assert checks["aborted"]["classes"]["abort"]


def test_stream_as_async_iterator_and_non_stream(checks: dict[str, Any]) -> None:
    events = checks["iterator"]["value"]
    assert [e["type"] for e in events] == [
        "created",
        "message",
        "message",
        "message_completed",
        "done",
    ]
    assert [e.get("delta") for e in events[1:3]] == ["Hel", "lo"]
    assert events[-1]["content"] == "Hello" and events[-1]["usage"]["token_count"] == 5
    assert checks["chatRequest"] == {
        "bot_id": "7",
        "user_id": "sdk_user",
        "stream": True,
        "additional_messages": [{"role": "user", "content": "hi", "content_type": "text"}],
    }
    non_stream = checks["nonStream"]["value"]
    assert (non_stream["status"], non_stream["content"]) == ("completed", "Hello")
    # A failed chat goes to onError as a ChatFailedError, and the promise resolves.
    assert checks["callbackFailure"] == {"hits": 1}
    assert checks["callbackFailureSeen"] == [
        {"name": "ChatFailedError", "code": 503, "msg": "model down"}
    ]
    assert checks["truncated"]["error"]["name"] == "CozeStreamError"
