"""Payload shapes of wire contract section 2, checked against the official SDK's models."""

from __future__ import annotations

import orjson
import pytest
from cozepy import Chat, Message

from cozeplus.chat_protocol import CHAT_COMPLETED, CHAT_FAILED, MESSAGE_COMPLETED, MESSAGE_DELTA
from cozeplus.chat_wire import (
    MessageEvents,
    chat_event,
    chat_object,
    error_event,
    sse_frame,
    stream_trailer,
    wire_json,
)
from cozeplus.rpc.v1 import conversations_pb2 as cpb


def _run(**fields: object) -> cpb.ChatRun:
    fields.setdefault("status", "completed")
    return cpb.ChatRun(
        id=7392,
        conversation_id=7390,
        section_id=7390,
        bot_id=7388,
        created_at=1767225600,
        completed_at=1767225601,
        usage=cpb.Usage(prompt_tokens=10, completion_tokens=20),
        **fields,  # type: ignore[arg-type]
    )


def test_chat_event_is_official_chat_plus_run_record_item() -> None:
    payload = orjson.loads(chat_event(CHAT_COMPLETED, chat_object(_run())))
    assert payload["event"] == CHAT_COMPLETED
    assert payload["id"] == "7392" and payload["conversation_id"] == "7390"
    assert payload["usage"] == {
        "token_count": 30,
        "output_count": 20,
        "input_count": 10,
        "prompt_tokens": 10,
        "completion_tokens": 20,
        "total_tokens": 30,
    }
    assert payload["run_record_item"] == {
        "id": "7392",
        "conversation_id": "7390",
        "status": "completed",
        "usage": {"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30},
    }
    assert payload["meta_data"] == {} and payload["last_error"] == {"code": 0, "msg": ""}
    chat = Chat.model_validate(payload)
    assert chat.usage is not None and chat.usage.token_count == 30


def test_message_events_swap_only_the_content() -> None:
    message = {
        "id": "7391",
        "conversation_id": "7390",
        "section_id": "7390",
        "bot_id": "7388",
        "chat_id": "7392",
        "role": "assistant",
        "type": "answer",
        "content": "",
        "content_type": "text",
        "reasoning_content": "",
        "meta_data": {},
        "created_at": 1,
        "updated_at": 1,
    }
    events = MessageEvents(message)
    first = orjson.loads(events.encode(MESSAGE_DELTA, "你好"))
    second = orjson.loads(events.encode(MESSAGE_DELTA, "!"))
    assert first["content"] == "你好" and first["message_item"]["content"] == "你好"
    assert second["content"] == "!" and second["message_item"]["id"] == "7391"
    assert Message.model_validate(second).content == "!"


def test_failed_stream_trailer_carries_the_error() -> None:
    run = _run(status="failed", last_error=cpb.ChatError(code=503, msg="no runner"))
    trailer = stream_trailer(CHAT_FAILED, chat_object(run))
    assert [name for name, _ in trailer] == ["error", "conversation.stream.done", "done"]
    error = orjson.loads(trailer[0][1])
    assert error == orjson.loads(error_event(503, "no runner"))
    assert error["error"] == {"code": 503, "msg": "no runner"} and error["msg"] == "no runner"
    assert trailer[2][1] == b'{"event":"done"}'


def test_sse_frame_is_exactly_three_lines() -> None:
    assert sse_frame("done", b'{"event":"done"}') == b'event: done\ndata: {"event":"done"}\n\n'


@pytest.mark.parametrize(
    "contents",
    [
        ["你好", "!", ""],
        ['quote " and \\ backslash', "line\nbreak", "one\u2028two\u2029three\x85four"],
        # The layout's own mark as content, and one in the fixed fields, change nothing.
        ["\x00cozeplus-content\x00"],
    ],
)
@pytest.mark.parametrize("meta_value", ["", "\x00cozeplus-content\x00"])
def test_message_events_are_the_bytes_of_the_whole_payload(
    contents: list[str], meta_value: str
) -> None:
    message = {
        "id": "7391",
        "conversation_id": "7390",
        "section_id": "7390",
        "bot_id": "7388",
        "chat_id": "7392",
        "role": "assistant",
        "type": "answer",
        "content": "",
        "content_type": "text",
        "reasoning_content": "",
        "meta_data": {"k": meta_value} if meta_value else {},
        "created_at": 1,
        "updated_at": 1,
    }
    events = MessageEvents(message)
    for content in contents:
        payload = {"event": MESSAGE_DELTA, **message, "content": content}
        payload["message_item"] = {
            "id": "7391",
            "role": "assistant",
            "type": "answer",
            "content": content,
            "content_type": "text",
        }
        assert events.encode(MESSAGE_DELTA, content) == wire_json(payload)
    completed = {**payload, "event": MESSAGE_COMPLETED, "updated_at": 2}  # the same key order
    assert events.encode(MESSAGE_COMPLETED, contents[-1], 2) == wire_json(completed)
    # A delta after a newer updated_at carries it (no stale layout).
    later = {**payload, "updated_at": 2}
    assert events.encode(MESSAGE_DELTA, contents[-1]) == wire_json(later)
