"""Chat events as typed messages.

Built from the very payload the SSE stream forwards: each runner payload (the wire's JSON,
built by cozeplus.chat_wire) is parsed once, with protobuf's JSON mapping, into the message
whose fields carry the same names (cozeplus/api/v1/types.proto). A field added to the wire
shows up here as soon as the proto has it (until then it is ignored, never an error), and a
value can never differ between the two transports, because there is one source. The HTTP
path does not parse anything: it writes the payload bytes as they came.
"""

from __future__ import annotations

from typing import Any

import orjson
from google.protobuf import json_format

from cozeplus.api.v1 import chat_pb2 as api
from cozeplus.api.v1 import types_pb2 as types
from cozeplus.chat_protocol import ERROR
from services.edge.core.session import ChatEvent

_CHAT_PREFIX = "conversation.chat."
_MESSAGE_PREFIX = "conversation.message."


def typed_chat(payload: dict[str, Any]) -> types.Chat:
    return json_format.ParseDict(payload, types.Chat(), ignore_unknown_fields=True)


def typed_message(payload: dict[str, Any]) -> types.Message:
    return json_format.ParseDict(payload, types.Message(), ignore_unknown_fields=True)


def typed_event(event: ChatEvent) -> api.ChatEvent:
    typed = api.ChatEvent(event=event.name)
    if event.name.startswith(_CHAT_PREFIX):
        typed.chat.CopyFrom(typed_chat(orjson.loads(event.data)))
    elif event.name.startswith(_MESSAGE_PREFIX):
        typed.message.CopyFrom(typed_message(orjson.loads(event.data)))
    elif event.name == ERROR:
        error = orjson.loads(event.data).get("error") or {}
        typed.error.CopyFrom(types.LastError(code=error.get("code", 0), msg=error.get("msg", "")))
    # conversation.stream.done and done carry nothing beyond their name.
    return typed
