"""The SDK's chat against the real system: edge -> NATS -> runner -> mock LLM over HTTP."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from coze import (
    AsyncCozeClient,
    ChatAnswer,
    ChatCreatedEvent,
    ChatEvent,
    ChatFailedError,
    ConflictError,
    CozeClient,
    DoneEvent,
    ErrorEvent,
    InputMessage,
    MessageCompletedEvent,
    MessageEvent,
)
from tests.conftest import Account
from tests.sdk.conftest import last_prompt

# The product document's "Python SDK" sample, verbatim but for the URL, key and bot id.
PRODUCT_DOC_SDK_SAMPLE = """
from coze import CozeClient

client = CozeClient(
    api_key='your_api_key',
    base_url='https://your-domain.com'
)

# 对话
response = client.chat(
    bot_id=123456789,
    query='你好',
    stream=True
)

for event in response:
    if event.type == 'message':
        print('收到消息:', event.delta)
    elif event.type == 'done':
        print('对话完成,用量:', event.usage)
    elif event.type == 'error':
        print('错误:', event.msg)

# 获取智能体信息
bot_info = client.bots.get(123456789)
print('智能体信息:', bot_info)
"""


def types(events: list[ChatEvent]) -> list[str]:
    """Event types with runs of `message` folded into one."""
    out: list[str] = []
    for event in events:
        if not (event.type == "message" and out and out[-1] == "message"):
            out.append(event.type)
    return out


def test_product_document_sdk_sample_runs_verbatim(
    chat_system: str, account: Account, make_bot: Callable[..., str], tmp_path: Path
) -> None:
    bot_id = make_bot(model="mock-echo")
    source = (
        PRODUCT_DOC_SDK_SAMPLE.replace("https://your-domain.com", chat_system)
        .replace("your_api_key", account.token)
        .replace("123456789", bot_id)
    )
    script = tmp_path / "sample.py"
    script.write_text(source, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    deltas = [line.removeprefix("收到消息: ") for line in lines if line.startswith("收到消息: ")]
    assert "".join(deltas).strip() == "你好"  # mock-echo answers with the question
    assert any(line.startswith("对话完成,用量: token_count=") for line in lines), result.stdout
    assert lines[-1].startswith(f"智能体信息: bot_id='{bot_id}'"), result.stdout
    assert "错误" not in result.stdout


def test_stream_yields_typed_events_and_ends_after_done(
    client: CozeClient, make_bot: Callable[..., str]
) -> None:
    bot_id = make_bot(model="mock-echo")
    stream = client.chat(bot_id=int(bot_id), query="hello stream", stream=True)
    events = list(stream)
    assert types(events) == ["created", "message", "message_completed", "done"]

    created = events[0]
    assert isinstance(created, ChatCreatedEvent)
    assert created.chat.status == "created" and created.chat.bot_id == bot_id

    deltas = [e for e in events if isinstance(e, MessageEvent)]
    answer = "".join(e.delta for e in deltas)
    assert "hello stream" in answer
    assert {e.chat_id for e in deltas} == {created.chat_id}
    assert {e.conversation_id for e in deltas} == {created.conversation_id}
    assert len({e.message_id for e in deltas}) == 1

    completed = events[-2]
    assert isinstance(completed, MessageCompletedEvent)
    assert completed.content == answer and completed.message.type == "answer"

    done = events[-1]
    assert isinstance(done, DoneEvent)
    assert done.status == "completed"
    assert done.conversation_id == created.conversation_id and done.chat_id == created.chat_id
    assert done.content == answer
    usage = done.usage
    assert usage.prompt_tokens > 0 and usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert usage.token_count == usage.total_tokens
    assert usage.input_count == usage.prompt_tokens
    assert usage.output_count == usage.completion_tokens

    assert stream.conversation_id == created.conversation_id and stream.chat_id == created.chat_id
    assert stream.log_id
    assert stream.response.is_closed


def test_non_stream_returns_the_answer(client: CozeClient, make_bot: Callable[..., str]) -> None:
    bot_id = make_bot(model="mock-echo")
    answer = client.chat(bot_id=bot_id, query="hi there", user_id="u-1")
    assert isinstance(answer, ChatAnswer)
    assert answer.status == "completed"
    assert "hi there" in answer.content
    assert answer.conversation_id and answer.chat_id == answer.id
    assert answer.usage.total_tokens > 0 and answer.usage.token_count == answer.usage.total_tokens
    # The same conversation continues when its id is passed back.
    again = client.chat(
        bot_id=bot_id, query="second", conversation_id=answer.conversation_id, user_id="u-1"
    )
    assert again.conversation_id == answer.conversation_id
    assert again.chat_id != answer.chat_id


def test_additional_messages_images_and_options_reach_the_model(
    client: CozeClient, make_bot: Callable[..., str], mock_llm: str
) -> None:
    bot_id = make_bot(model="mock-vision")
    answer = client.chat(
        bot_id=bot_id,
        query="what is in the picture?",
        images=["https://img.example/cat.png"],
        additional_messages=[
            InputMessage.user("earlier question"),
            {"role": "assistant", "content": "earlier answer", "content_type": "text"},
        ],
        meta_data={"source": "sdk-test"},
        custom_variables={"name": "Ada"},
    )
    assert answer.status == "completed"
    assert answer.meta_data == {"source": "sdk-test"}
    prompt = last_prompt(mock_llm)
    flat = json.dumps(prompt, ensure_ascii=False)
    assert "earlier question" in flat and "earlier answer" in flat
    last = prompt[-1]["content"]
    assert isinstance(last, list), last
    assert {"type": "image_url", "image_url": {"url": "https://img.example/cat.png"}} in [
        {k: v for k, v in part.items() if k in ("type", "image_url")} for part in last
    ]
    assert any(part.get("text") == "what is in the picture?" for part in last)


def test_auto_save_history_false_stores_nothing(
    client: CozeClient, make_bot: Callable[..., str]
) -> None:
    bot_id = make_bot(model="mock-echo")
    answer = client.chat(bot_id=bot_id, query="forget me", auto_save_history=False)
    assert answer.status == "completed" and "forget me" in answer.content
    assert list(client.messages.list(answer.conversation_id)) == []


def test_failing_model_yields_exactly_one_error_then_ends(
    client: CozeClient, make_bot: Callable[..., str]
) -> None:
    bot_id = make_bot(model="mock-fail")  # the mock drops the connection after 3 tokens
    events = list(client.chat(bot_id=bot_id, query="break please", stream=True))
    assert types(events)[0] == "created"
    assert types(events)[-1] == "error"
    assert [e.type for e in events].count("error") == 1
    assert "done" not in types(events)
    error = events[-1]
    assert isinstance(error, ErrorEvent)
    assert error.code != 0 and error.msg
    assert error.conversation_id == events[0].conversation_id  # type: ignore[union-attr]
    assert error.chat_id == events[0].chat_id  # type: ignore[union-attr]


def test_model_http_error_yields_one_error(
    client: CozeClient, make_bot: Callable[..., str]
) -> None:
    bot_id = make_bot(model="mock-error")  # the mock answers HTTP 500
    events = list(client.chat(bot_id=bot_id, query="x", stream=True))
    assert types(events) == ["created", "error"]


def test_failed_non_stream_chat_raises_chat_failed_error(
    client: CozeClient, make_bot: Callable[..., str]
) -> None:
    # mock-slow never sends a first token; the test runners give up after 3 s (code 504).
    bot_id = make_bot(model="mock-slow")
    with pytest.raises(ChatFailedError) as caught:
        client.chat(bot_id=bot_id, query="anyone?")
    error = caught.value
    assert error.code == 504 and error.msg and error.http_status == 200
    assert error.answer.status == "failed" and error.answer.failed_at > 0
    assert error.log_id


def test_cancel_while_streaming_ends_with_canceled_done(
    client: CozeClient, make_bot: Callable[..., str]
) -> None:
    bot_id = make_bot(model="mock-stream-slow")
    with client.chat(bot_id=bot_id, query="a long answer please", stream=True) as stream:
        deltas = 0
        events: list[ChatEvent] = []
        for event in stream:
            events.append(event)
            deltas += event.type == "message"
            if deltas == 2:
                break
        assert stream.conversation_id is not None and stream.chat_id is not None
        chat = client.cancel(stream.conversation_id, stream.chat_id)
        assert chat.status == "canceled" and chat.id == stream.chat_id
        events.extend(stream)
    done = events[-1]
    assert isinstance(done, DoneEvent), types(events)
    assert done.status == "canceled"
    assert done.content.startswith("".join(e.delta for e in events if isinstance(e, MessageEvent)))
    with pytest.raises(ConflictError) as caught:
        client.cancel(done.conversation_id, done.chat_id)
    assert caught.value.code == 409 and caught.value.http_status == 409


def test_cancel_with_only_the_conversation_id(
    client: CozeClient, make_bot: Callable[..., str]
) -> None:
    bot_id = make_bot(model="mock-stream-slow")
    stream = client.chat(bot_id=bot_id, query="long", stream=True)
    first = next(stream)
    assert isinstance(first, ChatCreatedEvent)
    chat = client.cancel(first.conversation_id)
    assert chat.status == "canceled" and chat.id == first.chat_id
    rest = list(stream)
    assert isinstance(rest[-1], DoneEvent) and rest[-1].status == "canceled"


def test_closing_a_stream_early_releases_the_connection(
    client: CozeClient, make_bot: Callable[..., str]
) -> None:
    bot_id = make_bot(model="mock-stream-slow")
    stream = client.chat(bot_id=bot_id, query="long", stream=True)
    next(stream)
    stream.close()
    assert stream.response.is_closed
    assert list(stream) == []
    # The run goes on without the client (wire contract); cancel it so the runner is free.
    assert stream.conversation_id is not None
    client.cancel(stream.conversation_id, stream.chat_id)


def test_conversation_helper_keeps_context(
    client: CozeClient, make_bot: Callable[..., str], mock_llm: str
) -> None:
    bot_id = make_bot(model="mock-echo")
    conv = client.conversation(bot_id, user_id="helper-user")
    assert conv.id is None
    first = conv.chat("my name is Ada")
    assert conv.id == first.conversation_id
    second = conv.chat("请继续")
    assert second.conversation_id == first.conversation_id
    prompt = last_prompt(mock_llm)
    assert [m["content"] for m in prompt if m["role"] != "system"] == [
        "my name is Ada",
        first.content,
        "请继续",
    ]
    # Streaming turns continue the same conversation.
    events = list(conv.chat("and now?", stream=True))
    done = events[-1]
    assert isinstance(done, DoneEvent) and done.conversation_id == first.conversation_id
    assert [m.content for m in conv.messages()] == [
        "my name is Ada",
        first.content,
        "请继续",
        second.content,
        "and now?",
        done.content,
    ]


def test_conversation_helper_learns_the_id_from_a_first_streaming_turn(
    client: CozeClient, make_bot: Callable[..., str], mock_llm: str
) -> None:
    bot_id = make_bot(model="mock-echo")
    conv = client.conversation(bot_id)
    stream = conv.chat("remember the number 42", stream=True)
    first = next(stream)
    # Known as soon as the first event arrives, even if the caller stops reading here.
    assert isinstance(first, ChatCreatedEvent) and conv.id == first.conversation_id
    list(stream)
    answer = conv.chat("which number?")
    assert answer.conversation_id == first.conversation_id
    assert "remember the number 42" in json.dumps(last_prompt(mock_llm), ensure_ascii=False)
    # A cleared conversation starts a fresh context.
    section = conv.clear()
    assert section is not None and section.conversation_id == conv.id
    conv.chat("fresh start")
    assert [m["content"] for m in last_prompt(mock_llm) if m["role"] != "system"] == ["fresh start"]


# ------------------------------------------------------------------------------ async


async def test_async_stream_and_non_stream(
    aclient: AsyncCozeClient, make_bot: Callable[..., str]
) -> None:
    bot_id = make_bot(model="mock-echo")
    stream = await aclient.chat(bot_id=bot_id, query="async hello", stream=True)
    events = [event async for event in stream]
    assert types(events) == ["created", "message", "message_completed", "done"]
    done = events[-1]
    assert isinstance(done, DoneEvent)
    assert "async hello" in done.content and done.usage.total_tokens > 0
    assert stream.response.is_closed

    answer = await aclient.chat(
        bot_id=bot_id, query="async again", conversation_id=done.conversation_id
    )
    assert answer.conversation_id == done.conversation_id and "async again" in answer.content


async def test_async_error_event_and_cancel(
    aclient: AsyncCozeClient, make_bot: Callable[..., str]
) -> None:
    failing = make_bot(model="mock-fail")
    events = [e async for e in await aclient.chat(bot_id=failing, query="x", stream=True)]
    assert [e.type for e in events].count("error") == 1 and events[-1].type == "error"

    slow = make_bot(model="mock-stream-slow")
    async with await aclient.chat(bot_id=slow, query="long", stream=True) as stream:
        seen: list[ChatEvent] = []
        async for event in stream:
            seen.append(event)
            if event.type == "message":
                assert stream.conversation_id is not None
                chat = await aclient.cancel(stream.conversation_id, stream.chat_id)
                assert chat.status == "canceled"
                break
        seen.extend([e async for e in stream])
    assert isinstance(seen[-1], DoneEvent) and seen[-1].status == "canceled"


async def test_async_conversation_helper(
    aclient: AsyncCozeClient, make_bot: Callable[..., str], mock_llm: str
) -> None:
    bot_id = make_bot(model="mock-echo")
    conv = aclient.conversation(bot_id, user_id="async-helper")
    stream = await conv.chat("first async turn", stream=True)
    [event async for event in stream]
    assert conv.id is not None
    answer = await conv.chat("second async turn")
    assert answer.conversation_id == conv.id
    contents = [m["content"] for m in last_prompt(mock_llm) if m["role"] != "system"]
    assert contents[0] == "first async turn" and contents[-1] == "second async turn"
    assert [m.role async for m in conv.messages()] == ["user", "assistant"] * 2
