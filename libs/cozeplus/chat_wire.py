"""The wire shapes of chats and messages (wire contract sections 2 and 3).

Chat and Message objects are the official SDK shapes (every id a string) with the
product document's fields beside them (`message_item`, `run_record_item`), so both
kinds of client read the same payload. Runners build stream events with these; the
edge builds JSON responses and the events it must synthesize (a chat that never
reached a runner) with the same functions.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

import orjson

from cozeplus.chat_protocol import (
    CHAT_CANCELED,
    CHAT_COMPLETED,
    CHAT_FAILED,
    CHAT_REQUIRES_ACTION,
    DONE,
    ERROR,
    STREAM_DONE,
)
from cozeplus.rpc.v1 import conversations_pb2 as cpb
from cozeplus.vocabulary import ChatStatus, ContentType, MessageRole, MessageType

STREAM_DONE_DATA = b'{"event":"conversation.stream.done"}'
# An object, not Coze cloud's string "[DONE]": the product document's Python sample calls
# `.get` on every parsed data line, and neither official SDK reads done's data.
DONE_DATA = b'{"event":"done"}'

# JSON allows these raw inside strings, but line readers that split like str.splitlines
# (cozepy's, through httpx) would cut the one-line `data:` in two. Escaped once, here,
# where payloads are encoded, so the edge forwards them untouched.
_LINE_BREAKS = (
    (b"\xc2\x85", b"\\u0085"),
    (b"\xe2\x80\xa8", b"\\u2028"),
    (b"\xe2\x80\xa9", b"\\u2029"),
)


def wire_json(value: Any) -> bytes:
    """One line of JSON for every line reader."""
    return _escape_line_breaks(orjson.dumps(value))


def _escape_line_breaks(data: bytes) -> bytes:
    for raw, escaped in _LINE_BREAKS:
        if raw in data:
            data = data.replace(raw, escaped)
    return data


# Between a chat's answer messages where they are one text (a non-streaming chat's `content`,
# gRPC's ChatAnswer, the OpenAI-compatible routes): a model that spoke before a round of tool
# calls said two things, and run together ("Let me check.It is 21.") they read as one.
ANSWER_SEPARATOR = "\n\n"


def join_answers(texts: Iterable[str]) -> str:
    return ANSWER_SEPARATOR.join(t for t in texts if t)


def json_object(raw: str) -> dict[str, Any]:
    if not raw:
        return {}
    value = orjson.loads(raw)
    return value if isinstance(value, dict) else {}


def usage_object(usage: cpb.Usage) -> dict[str, int]:
    prompt, completion = usage.prompt_tokens, usage.completion_tokens
    return {
        "token_count": prompt + completion,
        "output_count": completion,
        "input_count": prompt,
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def required_action_object(calls: Iterable[cpb.PendingToolCall]) -> dict[str, Any]:
    """What a chat in requires_action waits for (wire contract section 7); `arguments` is
    the JSON text the model wrote."""
    return {
        "type": "submit_tool_outputs",
        "submit_tool_outputs": {
            "tool_calls": [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments},
                }
                for call in calls
            ]
        },
    }


def function_call_content(
    *, name: str, arguments: str, plugin_id: int, api_id: int, tool_call_id: str
) -> str:
    """A function_call message's content: JSON text with the arguments as an object."""
    try:
        parsed: Any = orjson.loads(arguments) if arguments else {}
    except orjson.JSONDecodeError:
        parsed = arguments  # the model wrote broken JSON: show it as it was
    return orjson.dumps(
        {
            "name": name,
            "arguments": parsed,
            "plugin_id": str(plugin_id),
            "api_id": str(api_id),
            "tool_call_id": tool_call_id,
        }
    ).decode()


def answer_message(
    *, message_id: int, run: cpb.ChatRun, chat_id: int, bot_id: int, now: int
) -> dict[str, Any]:
    """The Message object of a run's answer before any content (its deltas fill it)."""
    return {
        "id": str(message_id),
        "conversation_id": str(run.conversation_id),
        "section_id": str(run.section_id),
        "bot_id": str(bot_id),
        "chat_id": str(chat_id),
        "role": MessageRole.ASSISTANT,
        "type": MessageType.ANSWER,
        "content": "",
        "content_type": ContentType.TEXT,
        "reasoning_content": "",
        "meta_data": {},
        "created_at": now,
        "updated_at": now,
    }


def message_event(event: str, message: cpb.Message) -> bytes:
    """A conversation.message.* payload of a stored message (function_call, tool_response)."""
    payload = message_object(message)
    item = {
        "id": payload["id"],
        "role": payload["role"],
        "type": payload["type"],
        "content": payload["content"],
        "content_type": payload["content_type"],
    }
    return wire_json({"event": event, **payload, "message_item": item})


def chat_object(run: cpb.ChatRun, meta_data: dict[str, Any] | None = None) -> dict[str, Any]:
    chat = _chat_fields(run, meta_data)
    if run.status == ChatStatus.REQUIRES_ACTION:
        chat["required_action"] = required_action_object(run.pending_tool_calls)
    return chat


def _chat_fields(run: cpb.ChatRun, meta_data: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "id": str(run.id),
        "conversation_id": str(run.conversation_id),
        "bot_id": str(run.bot_id),
        "section_id": str(run.section_id),
        "status": run.status,
        "created_at": run.created_at,
        "completed_at": run.completed_at,
        "failed_at": run.failed_at,
        "meta_data": json_object(run.meta_data_json) if meta_data is None else meta_data,
        "last_error": {"code": run.last_error.code, "msg": run.last_error.msg},
        "usage": usage_object(run.usage),
    }


def message_object(message: cpb.Message) -> dict[str, Any]:
    return {
        "id": str(message.id),
        "conversation_id": str(message.conversation_id),
        "section_id": str(message.section_id),
        "bot_id": str(message.bot_id),
        "chat_id": str(message.chat_id),
        "role": message.role,
        "type": message.type,
        "content": message.content,
        "content_type": message.content_type,
        "reasoning_content": message.reasoning_content,
        "meta_data": json_object(message.meta_data_json),
        "created_at": message.created_at,
        "updated_at": message.updated_at,
    }


def chat_event(event: str, chat: dict[str, Any]) -> bytes:
    """A conversation.chat.* payload from a `chat_object`."""
    usage = chat["usage"]
    record = {
        "id": chat["id"],
        "conversation_id": chat["conversation_id"],
        "status": chat["status"],
        "usage": {
            "prompt_tokens": usage["prompt_tokens"],
            "completion_tokens": usage["completion_tokens"],
            "total_tokens": usage["total_tokens"],
        },
    }
    return wire_json({"event": event, **chat, "run_record_item": record})


# Stands in for the content while an event's fixed bytes are laid out (MessageEvents).
_CONTENT_MARK = "\x00cozeplus-content\x00"
_ENCODED_MARK = orjson.dumps(_CONTENT_MARK)


class MessageEvents:
    """Encodes the delta and completed events of one answer message.

    Every event of one name differs only in its content (twice: the message's and its
    `message_item`'s), so the bytes around the content are encoded once per event name and
    each event joins them with the encoded content: the same bytes as encoding the whole
    payload, for a fraction of the work per streamed token.
    """

    def __init__(self, message: dict[str, Any]) -> None:
        self._payload: dict[str, Any] = {"event": "", **message}
        self._item: dict[str, Any] = {
            "id": message["id"],
            "role": message["role"],
            "type": message["type"],
            "content": "",
            "content_type": message["content_type"],
        }
        self._payload["message_item"] = self._item
        # event name -> the bytes before, between and after the two contents (None: the
        # mark also occurs elsewhere in the payload, so the whole payload is encoded).
        self._layouts: dict[str, list[bytes] | None] = {}

    def encode(self, event: str, content: str, updated_at: int | None = None) -> bytes:
        if updated_at is not None and updated_at != self._payload["updated_at"]:
            self._payload["updated_at"] = updated_at
            self._layouts.clear()
        if event in self._layouts:
            layout = self._layouts[event]
        else:
            layout = self._layouts[event] = self._layout(event)
        if layout is None:
            return self._encode_whole(event, content)
        encoded = _escape_line_breaks(orjson.dumps(content))
        return layout[0] + encoded + layout[1] + encoded + layout[2]

    def _layout(self, event: str) -> list[bytes] | None:
        parts = self._encode_whole(event, _CONTENT_MARK).split(_ENCODED_MARK)
        return parts if len(parts) == 3 else None

    def _encode_whole(self, event: str, content: str) -> bytes:
        self._payload["event"] = event
        self._payload["content"] = content
        self._item["content"] = content
        return wire_json(self._payload)


def error_event(code: int, msg: str) -> bytes:
    error = {"code": code, "msg": msg}
    return wire_json({"event": "conversation.error", **error, "error": error})


def stream_trailer(terminal_event: str, chat: dict[str, Any]) -> list[tuple[str, bytes]]:
    """The events that close a stream after its chat's terminal event."""
    tail = [(STREAM_DONE, STREAM_DONE_DATA), (DONE, DONE_DATA)]
    if terminal_event == CHAT_FAILED:
        error = chat["last_error"]
        return [(ERROR, error_event(error["code"] or 500, error["msg"] or "chat failed")), *tail]
    if terminal_event in (CHAT_COMPLETED, CHAT_CANCELED, CHAT_REQUIRES_ACTION):
        return tail
    raise ValueError(f"{terminal_event} does not end a chat")


def sse_frame(event: str, data: bytes) -> bytes:
    """Exactly `event:`, `data:` and a blank line: the SDKs reject anything else."""
    return _frame_head(event) + data + b"\n\n"


@functools.lru_cache(maxsize=64)
def _frame_head(event: str) -> bytes:
    # A chat has a handful of event names and thousands of events.
    return b"event: " + event.encode() + b"\ndata: "
