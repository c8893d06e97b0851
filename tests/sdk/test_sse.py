"""The SDK's strict reader of the wire contract's SSE framing, and how wire events become the
user's events. Pure functions: no server needed."""

from __future__ import annotations

import json
from typing import Any

import pytest

from coze import CozeStreamError, DoneEvent, ErrorEvent
from coze._sse import SSEDecoder, SSEEvent
from coze._stream import ChatEventTranslator


def test_events_split_anywhere_even_inside_a_character() -> None:
    data = (
        'event: conversation.message.delta\ndata: {"content":"你好"}\n\n'
        'event: done\ndata: {"event":"done"}\n\n'
    ).encode()
    for cut in range(1, len(data)):
        decoder = SSEDecoder()
        events = decoder.feed(data[:cut]) + decoder.feed(data[cut:])
        decoder.close()
        assert events == [
            SSEEvent("conversation.message.delta", {"content": "你好"}),
            SSEEvent("done", {"event": "done"}),
        ]


@pytest.mark.parametrize(
    "raw",
    [
        b": ping\n\n",  # comments
        b"id: 1\nevent: x\ndata: {}\n\n",  # ids
        b"event: x\nretry: 10\n\n",  # retry
        b"event: x\ndata: {\ndata: }\n\n",  # multi-line data
        b"event: x\r\ndata: {}\r\n\r\n",  # CRLF
        b"event: x\ndata: not json\n\n",
        b"data: {}\n\n",  # data without event
    ],
)
def test_anything_but_event_data_blank_is_rejected(raw: bytes) -> None:
    with pytest.raises(CozeStreamError):
        SSEDecoder().feed(raw)


def test_a_truncated_event_is_rejected_at_the_end() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b'event: done\ndata: "[DONE]"') == []
    with pytest.raises(CozeStreamError):
        decoder.close()


def feed(translator: ChatEventTranslator, name: str, data: Any) -> list[str]:
    return [e.type for e in translator.feed(SSEEvent(name, data))]


CHAT = {"id": "2", "conversation_id": "1", "status": "in_progress"}


def test_a_failure_announced_twice_is_one_error_event() -> None:
    translator = ChatEventTranslator()
    assert feed(translator, "conversation.chat.created", {**CHAT, "status": "created"}) == [
        "created"
    ]
    failed = {**CHAT, "status": "failed", "last_error": {"code": 5001, "msg": "model down"}}
    events = translator.feed(SSEEvent("conversation.chat.failed", failed))
    assert events == [ErrorEvent(code=5001, msg="model down", conversation_id="1", chat_id="2")]
    error = {"event": "conversation.error", "code": 5001, "msg": "model down"}
    assert feed(translator, "error", error) == []
    assert feed(translator, "conversation.stream.done", {}) == []
    assert feed(translator, "done", {"event": "done"}) == []
    assert translator.finished


def test_a_product_document_shaped_stream_is_understood() -> None:
    # Only `message_item` and `run_record_item`, as the product document's SSE sample shows.
    translator = ChatEventTranslator()
    item = {"id": "m1", "content": "你好", "role": "assistant"}
    assert feed(translator, "conversation.message.delta", {"message_item": item}) == ["message"]
    record = {"conversation_id": "c1", "usage": {"prompt_tokens": 10, "total_tokens": 30}}
    assert feed(translator, "conversation.chat.completed", {"run_record_item": record}) == []
    # Coze cloud's done marker, the string "[DONE]", is understood as well as ours.
    [done] = translator.feed(SSEEvent("done", "[DONE]"))
    assert isinstance(done, DoneEvent)
    assert (done.conversation_id, done.content, done.usage.total_tokens) == ("c1", "你好", 30)


def test_done_must_carry_the_done_marker() -> None:
    with pytest.raises(CozeStreamError):
        ChatEventTranslator().feed(SSEEvent("done", json.loads('"DONE"')))
    with pytest.raises(CozeStreamError):
        ChatEventTranslator().feed(SSEEvent("done", {"event": "conversation.stream.done"}))
