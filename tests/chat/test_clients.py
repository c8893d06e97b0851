"""Clients that must work unchanged: the product document's samples and cozepy, plus the
internal chat route's JSON answer over plain HTTP."""

from __future__ import annotations

import contextlib
import io
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from cozepy import (
    COZE_CN_BASE_URL,
    ChatEventType,
    ChatStatus,
    Coze,
    CozeAPIError,
    Message,
    TokenAuth,
)

from tests.chat.conftest import user_message
from tests.conftest import Account

# The product document's Python client, verbatim (the document loses its indentation; it is
# restored here), usage line included. Before running it the tests change only the URL, the key
# and, in the usage line, the bot id: see `product_doc_python`.
PRODUCT_DOC_PYTHON_SAMPLE = """
import requests
import json
def chat_with_bot(bot_id, message):
    url = 'https://your-domain.com/v3/chat'
    headers = {
        'Content-Type': 'application/json',
        'Authorization': 'Bearer your_api_key'
    }
    data = {
        'bot_id': str(bot_id),
        'user_id': 'user_001',
        'stream': True,
        'additional_messages': [
            {
                'role': 'user',
                'content': message,
                'content_type': 'text'
            }
        ]
    }
    response = requests.post(url, headers=headers, json=data, stream=True)
    for line in response.iter_lines():
        if line:
            line_str = line.decode('utf-8')
            if line_str.startswith('event: '):
                event_type = line_str[7:].strip()
                print(f'事件类型: {event_type}')
            elif line_str.startswith('data: '):
                data = json.loads(line_str[6:])
                # 处理不同事件类型
                event = data.get('event')
                if event == 'conversation.message.delta':
                    # 消息增量
                    print(data.get('message_item', {}).get('content', ''), end='', flush=True)
                elif event == 'conversation.message.completed':
                    # 消息完成
                    print(f"\\n消息完成: {data.get('message_item', {}).get('content')}")
                elif event == 'conversation.chat.completed':
                    # 对话完成
                    print(f"对话完成, Token 使用: {data.get('run_record_item', {}).get('usage')}")
                elif event == 'conversation.error':
                    # 错误
                    print(f"错误: {data.get('error')}")
                elif event == 'conversation.stream.done':
                    # 流结束
                    print('流结束')
# 使用示例
chat_with_bot(123456789, '你好,请介绍一下你自己')
"""

# The product document's JavaScript client, character for character (the document does not
# indent it), usage line included. Before running it the tests change only the URL
# (`fetch('/v3/chat'` has no host, so it becomes absolute), the key and, in the usage line,
# the bot id: see `product_doc_js`.
PRODUCT_DOC_JS_SAMPLE = """
const chatWithBot = async (botId, message) => {
const response = await fetch('/v3/chat', {
method: 'POST',
headers: {
'Content-Type': 'application/json',
'Authorization': 'Bearer your_api_key'
},
body: JSON.stringify({
bot_id: String(botId),
user_id: 'user_001',
stream: true,
additional_messages: [
{
role: 'user',
content: message,
content_type: 'text'
}
]
})
});
const reader = response.body.getReader();
const decoder = new TextDecoder();
while (true) {
const { done, value } = await reader.read();
if (done) break;
const chunk = decoder.decode(value);
const lines = chunk.split('\\n');
for (const line of lines) {
if (line.startsWith('event: ')) {
const eventType = line.slice(7).trim();
console.log('事件类型:', eventType);
} else if (line.startsWith('data: ')) {
const data = JSON.parse(line.slice(6));
// 处理不同事件类型
switch(data.event) {
case 'conversation.message.delta':
// 消息增量
process.stdout.write(data.message_item?.content || '');
break;
case 'conversation.message.completed':
// 消息完成
console.log('\\n消息完成:', data.message_item?.content);
break;
case 'conversation.chat.completed':
// 对话完成
console.log('对话完成, Token 使用:', data.run_record_item?.usage);
break;
case 'conversation.error':
// 错误
console.error('错误:', data.error);
break;
case 'conversation.stream.done':
// 流结束
console.log('流结束');
break;
}
}
}
}
};
// 使用示例
chatWithBot(123456789, '你好,请介绍一下你自己');
"""


# The bot id in both samples' usage line. No bot has it here, so as written they are refused.
DOC_BOT_ID = "123456789"


def _replace_once(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, old
    return text.replace(old, new)


def product_doc_python(base_url: str, token: str, bot_id: str = DOC_BOT_ID) -> str:
    """The Python sample with only the URL, the key and the usage line's bot id changed."""
    source = _replace_once(PRODUCT_DOC_PYTHON_SAMPLE, "https://your-domain.com", base_url)
    source = _replace_once(source, "your_api_key", token)
    return _replace_once(source, f"chat_with_bot({DOC_BOT_ID},", f"chat_with_bot({bot_id},")


def run_product_doc_python(source: str) -> tuple[str, Exception | None]:
    """Run the sample as a script; return what it printed and what it raised, if anything."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            exec(compile(source, "product-doc-sample.py", "exec"), {})
        except Exception as exc:  # the tests assert on exactly what it raised
            return out.getvalue(), exc
    return out.getvalue(), None


def product_doc_js(base_url: str, token: str, bot_id: str = DOC_BOT_ID) -> str:
    """The JavaScript sample with only the URL, the key and the usage line's bot id changed."""
    source = _replace_once(PRODUCT_DOC_JS_SAMPLE, "fetch('/v3/chat'", f"fetch('{base_url}/v3/chat'")
    source = _replace_once(source, "your_api_key", token)
    return _replace_once(source, f"chatWithBot({DOC_BOT_ID},", f"chatWithBot({bot_id},")


def run_product_doc_js(source: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "sample.mjs"
    script.write_text(source)
    return subprocess.run(
        ["node", str(script)], capture_output=True, text=True, timeout=60, check=False
    )


needs_node = pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")


def failed_chat_error(api: httpx.Client, bot_id: str) -> dict[str, Any]:
    """How a chat with this bot fails, learnt from a non-streaming chat: `last_error`."""
    response = api.post(
        "/v3/chat",
        json={"bot_id": bot_id, "user_id": "probe", "additional_messages": [user_message("x")]},
    )
    assert response.status_code == 200, response.text
    chat = response.json()["data"]
    assert chat["status"] == "failed" and chat["last_error"]["code"] != 0
    return dict(chat["last_error"])


def assert_refused_before_the_run(api: httpx.Client, bot_id: str) -> None:
    """The request both samples send for this bot is refused with the JSON 404 envelope."""
    response = api.post(
        "/v3/chat",
        json={
            "bot_id": bot_id,
            "user_id": "user_001",
            "stream": True,
            "additional_messages": [user_message("你好")],
        },
    )
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"code": 404, "msg": f"bot {bot_id} not found", "data": None}


def test_product_document_python_sample(
    chat_system: str, account: Account, make_bot: Callable[..., str]
) -> None:
    bot_id = make_bot(model="mock-echo")
    printed, raised = run_product_doc_python(product_doc_python(chat_system, account.token, bot_id))
    # The stream ends with `event: done` / `data: {"event":"done"}`, an object: the sample
    # calls `.get` on every parsed data line, and so runs to its end.
    assert raised is None
    assert printed.startswith("事件类型: conversation.chat.created\n")
    assert "\n消息完成: 你好,请介绍一下你自己\n" in printed
    assert re.search(
        r"\n对话完成, Token 使用: \{'prompt_tokens': \d+, 'completion_tokens': \d+, "
        r"'total_tokens': \d+\}\n",
        printed,
    )
    assert printed.endswith("事件类型: conversation.stream.done\n流结束\n事件类型: done\n")
    assert "错误" not in printed


def test_product_document_python_sample_on_a_failing_model(
    chat_system: str, account: Account, make_bot: Callable[..., str], api: httpx.Client
) -> None:
    bot_id = make_bot(model="mock-fail")
    error = failed_chat_error(api, bot_id)
    printed, raised = run_product_doc_python(product_doc_python(chat_system, account.token, bot_id))
    # It prints the error from `data.error`, then, as on success, runs to its end.
    assert raised is None
    assert "事件类型: conversation.message.delta\n" in printed
    assert printed.endswith(
        "事件类型: conversation.chat.failed\n"
        "事件类型: error\n"
        f"错误: {error}\n"
        "事件类型: conversation.stream.done\n"
        "流结束\n"
        "事件类型: done\n"
    )
    assert "消息完成" not in printed and "对话完成" not in printed


def test_product_document_python_sample_prints_nothing_when_refused(
    chat_system: str, account: Account, api: httpx.Client
) -> None:
    # Run exactly as written but for the URL and key: its usage line's bot 123456789 is unknown.
    assert_refused_before_the_run(api, DOC_BOT_ID)
    printed, raised = run_product_doc_python(product_doc_python(chat_system, account.token))
    # The sample never looks at the HTTP status, and the JSON error body has no `event: ` or
    # `data: ` line: it prints nothing and returns normally, so the caller never learns of it.
    assert (printed, raised) == ("", None)


@needs_node
def test_product_document_javascript_sample(
    chat_system: str, account: Account, make_bot: Callable[..., str], tmp_path: Path
) -> None:
    bot_id = make_bot(model="mock-echo")
    result = run_product_doc_js(product_doc_js(chat_system, account.token, bot_id), tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    out = result.stdout
    assert out.startswith("事件类型: conversation.chat.created\n")
    assert "\n消息完成: 你好,请介绍一下你自己\n" in out
    # console.log prints the usage object the way Node inspects it.
    usage = re.search(
        r"\n对话完成, Token 使用: \{ prompt_tokens: (\d+), completion_tokens: (\d+), "
        r"total_tokens: (\d+) \}\n",
        out,
    )
    assert usage is not None
    prompt, completion, total = map(int, usage.groups())
    assert total == prompt + completion > 0
    # `data: {"event":"done"}` matches no case of the sample's switch: it ignores it.
    assert out.endswith("事件类型: conversation.stream.done\n流结束\n事件类型: done\n")


@needs_node
def test_product_document_javascript_sample_on_a_failing_model(
    chat_system: str,
    account: Account,
    make_bot: Callable[..., str],
    api: httpx.Client,
    tmp_path: Path,
) -> None:
    bot_id = make_bot(model="mock-fail")
    error = failed_chat_error(api, bot_id)
    result = run_product_doc_js(product_doc_js(chat_system, account.token, bot_id), tmp_path)
    assert result.returncode == 0, result.stderr
    # console.error prints `data.error` as Node inspects it: `{ code: 503, msg: "..." }`, over
    # several lines when it is long.
    printed_error = " ".join(result.stderr.split())
    assert printed_error.startswith(f"错误: {{ code: {error['code']}, msg: ")
    assert printed_error.endswith(" }") and error["msg"] in printed_error
    out = result.stdout
    assert "事件类型: conversation.message.delta\n" in out
    assert out.endswith(
        "事件类型: conversation.chat.failed\n"
        "事件类型: error\n"
        "事件类型: conversation.stream.done\n"
        "流结束\n"
        "事件类型: done\n"
    )
    assert "消息完成" not in out and "对话完成" not in out


@needs_node
def test_product_document_javascript_sample_prints_nothing_when_refused(
    chat_system: str, account: Account, api: httpx.Client, tmp_path: Path
) -> None:
    # Run exactly as written but for the URL and key: its usage line's bot 123456789 is unknown.
    assert_refused_before_the_run(api, DOC_BOT_ID)
    result = run_product_doc_js(product_doc_js(chat_system, account.token), tmp_path)
    # No status check, no `event: `/`data: ` line in the JSON body: silence, exit code 0.
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


@pytest.fixture
def coze(chat_system: str, account: Account) -> Coze:
    assert chat_system != COZE_CN_BASE_URL
    return Coze(auth=TokenAuth(account.token), base_url=chat_system)


def test_cozepy_chat_stream(coze: Coze, make_bot: Callable[..., str]) -> None:
    bot_id = make_bot(model="mock-echo")
    answer = ""
    completed = None
    for event in coze.chat.stream(
        bot_id=bot_id,
        user_id="sdk-user",
        additional_messages=[Message.build_user_question_text("hey sdk")],
    ):
        if event.event == ChatEventType.CONVERSATION_MESSAGE_DELTA:
            assert event.message is not None
            answer += event.message.content
        if event.event == ChatEventType.CONVERSATION_CHAT_COMPLETED:
            completed = event.chat
    assert "hey sdk" in answer
    assert completed is not None and completed.status == ChatStatus.COMPLETED
    assert completed.usage is not None and completed.usage.token_count > 0


def test_cozepy_create_and_poll(coze: Coze, make_bot: Callable[..., str]) -> None:
    bot_id = make_bot(model="mock-echo")
    poll = coze.chat.create_and_poll(
        bot_id=bot_id,
        user_id="sdk-user",
        additional_messages=[Message.build_user_question_text("poll me")],
    )
    assert poll.chat.status == ChatStatus.COMPLETED
    assert poll.messages is not None
    answers = [m for m in poll.messages if m.type == "answer"]
    assert answers and "poll me" in answers[0].content
    retrieved = coze.chat.retrieve(conversation_id=poll.chat.conversation_id, chat_id=poll.chat.id)
    assert retrieved.status == ChatStatus.COMPLETED and retrieved.usage is not None


def test_cozepy_conversations_and_message_pagination(
    coze: Coze, make_bot: Callable[..., str]
) -> None:
    bot_id = make_bot(model="mock-echo")
    conversation = coze.conversations.create(
        bot_id=bot_id,
        messages=[Message.build_user_question_text(f"m{i}") for i in range(7)],
        meta_data={"k": "v"},
    )
    assert coze.conversations.retrieve(conversation_id=conversation.id).id == conversation.id
    listed = coze.conversations.list(bot_id=bot_id, page_size=1)
    assert conversation.id in [c.id for c in listed]
    pages = coze.conversations.messages.list(conversation_id=conversation.id, limit=3)
    contents = [m.content for m in pages]
    assert sorted(contents) == sorted(f"m{i}" for i in range(7))
    assert len(contents) == 7


def test_cozepy_cancel_and_chat_messages_list(coze: Coze, make_bot: Callable[..., str]) -> None:
    bot_id = make_bot(model="mock-stream-slow")
    stream = coze.chat.stream(
        bot_id=bot_id,
        user_id="sdk-user",
        additional_messages=[Message.build_user_question_text("long")],
    )
    seen = []
    canceled = None
    for event in stream:
        seen.append(event.event)
        if event.event == ChatEventType.CONVERSATION_MESSAGE_DELTA and canceled is None:
            assert event.message is not None
            chat_id, conversation_id = event.message.chat_id, event.message.conversation_id
            assert chat_id and conversation_id
            canceled = coze.chat.cancel(conversation_id=conversation_id, chat_id=chat_id)
    assert canceled is not None and canceled.status == ChatStatus.CANCELED
    # cozepy does not know the canceled event: it yields it as UNKNOWN, then the stream ends.
    assert ChatEventType.UNKNOWN in seen
    assert ChatEventType.CONVERSATION_CHAT_COMPLETED not in seen
    messages = coze.chat.messages.list(conversation_id=conversation_id, chat_id=chat_id)
    assert [m.type for m in messages] == ["question", "answer"]
    assert messages[1].content  # the partial answer is kept


def test_cozepy_chat_stream_on_a_failing_model(coze: Coze, make_bot: Callable[..., str]) -> None:
    bot_id = make_bot(model="mock-fail")
    seen: list[ChatEventType] = []
    failed = None
    stream = coze.chat.stream(
        bot_id=bot_id,
        user_id="sdk-user",
        additional_messages=[Message.build_user_question_text("x")],
    )
    # cozepy yields `conversation.chat.failed`, then turns the `error` event that follows into a
    # bare Exception (its _chat_stream_handler): `conversation.stream.done` and `done` are
    # never seen, and the caller must catch Exception itself.
    with pytest.raises(Exception) as raised:  # cozepy raises exactly Exception
        for event in stream:
            seen.append(event.event)
            if event.event == ChatEventType.CONVERSATION_CHAT_FAILED:
                failed = event.chat
    assert type(raised.value) is Exception
    assert seen[:2] == [
        ChatEventType.CONVERSATION_CHAT_CREATED,
        ChatEventType.CONVERSATION_CHAT_IN_PROGRESS,
    ]
    assert seen[-1] == ChatEventType.CONVERSATION_CHAT_FAILED
    assert ChatEventType.CONVERSATION_MESSAGE_DELTA in seen
    assert failed is not None and failed.status == ChatStatus.FAILED and failed.failed_at
    assert failed.last_error is not None and failed.last_error.code != 0
    code, msg = failed.last_error.code, failed.last_error.msg
    payload = {"event": "conversation.error", "code": code, "msg": msg}
    payload["error"] = {"code": code, "msg": msg}
    assert str(raised.value) == "error event: " + orjson.dumps(payload).decode()

    poll = coze.chat.create_and_poll(
        bot_id=bot_id,
        user_id="sdk-user",
        additional_messages=[Message.build_user_question_text("x")],
    )
    assert poll.chat.status == ChatStatus.FAILED
    assert poll.chat.last_error is not None
    assert (poll.chat.last_error.code, poll.chat.last_error.msg) == (code, msg)


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "create"])
def test_cozepy_refused_chat_raises_coze_api_error(coze: Coze, stream: bool) -> None:
    question = [Message.build_user_question_text("x")]
    with pytest.raises(CozeAPIError) as raised:
        if stream:
            next(iter(coze.chat.stream(bot_id="123456", user_id="u", additional_messages=question)))
        else:
            coze.chat.create(bot_id="123456", user_id="u", additional_messages=question)
    error = raised.value
    assert (error.code, error.msg) == (404, "bot 123456 not found")
    assert error.logid and re.fullmatch(r"[0-9A-F]{30}", error.logid)
    assert str(error) == f"code: 404, msg: bot 123456 not found, logid: {error.logid}"


def test_internal_chat_route_answers_json_with_numeric_ids(
    api: httpx.Client, make_bot: Callable[..., str]
) -> None:
    # A draft (never published): the route runs the draft, which /v3/chat refuses.
    bot_id = make_bot(model="mock-echo", publish=False)
    response = api.post("/api/conversation/chat", json={"agent_id": int(bot_id), "query": "q1"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert (body["code"], body["msg"]) == (0, "success")
    first = body["data"]
    for key in ("id", "conversation_id", "bot_id", "section_id"):
        assert type(first[key]) is int and 0 < first[key] < 2**53, key
    assert first["bot_id"] == int(bot_id)
    assert first["status"] == "completed" and first["failed_at"] == 0
    assert first["last_error"] == {"code": 0, "msg": ""}
    assert (first["role"], first["type"], first["content_type"]) == ("assistant", "answer", "text")
    assert first["content"] == "q1"  # mock-echo repeats the question
    usage = first["usage"]
    assert usage["token_count"] == usage["input_count"] + usage["output_count"] > 0
    assert usage["total_tokens"] == usage["token_count"]

    # The numeric conversation id, sent back as a string, continues the conversation.
    again = api.post(
        "/api/conversation/chat",
        json={
            "agent_id": bot_id,
            "query": "q2",
            "conversation_id": str(first["conversation_id"]),
        },
    )
    assert again.status_code == 200, again.text
    second = again.json()["data"]
    assert second["conversation_id"] == first["conversation_id"] and second["id"] != first["id"]
    messages = api.post(
        "/v1/conversation/message/list",
        params={"conversation_id": first["conversation_id"]},
        json={"order": "asc"},
    ).json()["data"]
    assert [m["content"] for m in messages] == ["q1", "q1", "q2", "q2"]
    # The same chat read back on /v3 has the same ids, as strings.
    retrieved = api.get(
        "/v3/chat/retrieve",
        params={"conversation_id": first["conversation_id"], "chat_id": first["id"]},
    ).json()["data"]
    assert retrieved["id"] == str(first["id"]) and retrieved["status"] == "completed"
