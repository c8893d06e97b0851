"""Clients that must work unchanged: the product document's samples and cozepy."""

from __future__ import annotations

import contextlib
import io
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from cozepy import COZE_CN_BASE_URL, ChatEventType, ChatStatus, Coze, Message, TokenAuth

from tests.conftest import Account

# The product document's Python client, verbatim but for the URL and key it is given.
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
"""

# The product document's JavaScript client, verbatim but for the URL and key.
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
switch(data.event) {
case 'conversation.message.delta':
process.stdout.write(data.message_item?.content || '');
break;
case 'conversation.message.completed':
console.log('\\n消息完成:', data.message_item?.content);
break;
case 'conversation.chat.completed':
console.log('对话完成, Token 使用:', JSON.stringify(data.run_record_item?.usage));
break;
case 'conversation.error':
console.error('错误:', data.error);
break;
case 'conversation.stream.done':
console.log('流结束');
break;
}
}
}
}
};
"""


def test_product_document_python_sample(
    chat_system: str, account: Account, make_bot: Callable[..., str]
) -> None:
    bot_id = make_bot(model="mock-echo")
    source = PRODUCT_DOC_PYTHON_SAMPLE.replace("https://your-domain.com", chat_system).replace(
        "your_api_key", account.token
    )
    namespace: dict[str, object] = {}
    exec(compile(source, "product-doc-sample.py", "exec"), namespace)
    out = io.StringIO()
    # The wire contract ends every stream with `event: done` / `data: "[DONE]"`. The sample
    # calls `.get` on every parsed data line, so on that last marker, and only there, it
    # raises: a conflict between the product document and the contract, reported upstream.
    with contextlib.redirect_stdout(out), pytest.raises(AttributeError, match="'str' object"):
        namespace["chat_with_bot"](int(bot_id), "你好,请介绍一下你自己")  # type: ignore[operator]
    printed = out.getvalue()
    assert "事件类型: conversation.chat.created" in printed
    assert "消息完成: " in printed and "你好,请介绍一下你自己" in printed
    assert "对话完成, Token 使用: {'prompt_tokens':" in printed
    assert printed.rstrip().endswith("流结束\n事件类型: done")
    assert "错误" not in printed


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")
def test_product_document_javascript_sample(
    chat_system: str, account: Account, make_bot: Callable[..., str], tmp_path: Path
) -> None:
    bot_id = make_bot(model="mock-echo")
    source = PRODUCT_DOC_JS_SAMPLE.replace("fetch('/v3/chat'", f"fetch('{chat_system}/v3/chat'")
    source = source.replace("your_api_key", account.token)
    script = tmp_path / "sample.mjs"
    script.write_text(source + f"\nawait chatWithBot({bot_id}, '你好,请介绍一下你自己');\n")
    result = subprocess.run(
        ["node", str(script)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "消息完成: " in result.stdout and "你好,请介绍一下你自己" in result.stdout
    assert '对话完成, Token 使用: {"prompt_tokens":' in result.stdout
    assert "流结束" in result.stdout
    assert result.stderr == ""


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
