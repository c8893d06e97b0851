"""The chat and conversation routes in /openapi.json, and their documented shapes held to the
builders that really make the payloads (cozeplus.chat_wire)."""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import BaseModel

from cozeplus.chat_wire import chat_object, message_object
from cozeplus.rpc.v1 import conversations_pb2 as cpb
from services.edge.chat_gateway import ChatOutcome, answer_data
from services.edge.schemas.chat import ApiChatAnswerView, ChatAnswerView, ChatView, MessageView
from tests.edge.test_openapi import resolve

# (method, path, JSON request body, top-level fields of the 200 answer)
ENVELOPE = {"code", "msg", "data"}
ROUTES = [
    ("post", "/v3/chat", True, ENVELOPE),
    ("post", "/v3/chat/cancel", True, ENVELOPE),
    ("get", "/v3/chat/retrieve", False, ENVELOPE),
    ("post", "/v3/chat/retrieve", False, ENVELOPE),
    ("get", "/v3/chat/message/list", False, ENVELOPE),
    ("post", "/api/conversation/chat", True, ENVELOPE),
    ("post", "/v1/conversation/create", True, ENVELOPE),
    ("get", "/v1/conversation/retrieve", False, ENVELOPE),
    ("get", "/v1/conversations", False, ENVELOPE),
    ("put", "/v1/conversations/{conversation_id}", True, ENVELOPE),
    ("delete", "/v1/conversations/{conversation_id}", False, ENVELOPE),
    ("post", "/v1/conversations/{conversation_id}/clear", False, ENVELOPE),
    ("post", "/v1/conversation/message/create", True, ENVELOPE),
    (
        "post",
        "/v1/conversation/message/list",
        True,
        ENVELOPE | {"first_id", "last_id", "has_more"},
    ),
    ("get", "/v1/conversation/message/list", False, ENVELOPE | {"first_id", "last_id", "has_more"}),
    ("get", "/v1/conversation/message/retrieve", False, ENVELOPE),
    ("post", "/v1/conversation/message/modify", True, ENVELOPE | {"message"}),
    ("post", "/v1/conversation/message/delete", False, ENVELOPE),
]


def test_every_chat_route_is_documented(edge_url: str) -> None:
    schema = httpx.get(f"{edge_url}/openapi.json").json()
    for method, path, has_body, top_level in ROUTES:
        operation = schema["paths"][path][method]
        responses = operation["responses"]
        assert "422" not in responses, (method, path)
        assert {"400", "401", "404"} <= set(responses), (method, path)
        ok = resolve(schema, responses["200"]["content"]["application/json"]["schema"])
        assert set(ok["properties"]) == top_level, (method, path)
        if has_body:
            body = operation["requestBody"]["content"]["application/json"]["schema"]
            if "anyOf" in body:  # optional body
                body = next(option for option in body["anyOf"] if "$ref" in option)
            assert resolve(schema, body)["properties"], (method, path)

    for path in ("/v3/chat", "/api/conversation/chat"):
        content = schema["paths"][path]["post"]["responses"]["200"]["content"]
        assert "text/event-stream" in content, path
    chat = resolve(schema, {"$ref": "#/components/schemas/ChatBody"})
    assert {"bot_id", "user_id"} <= set(chat["required"])
    assert {"additional_messages", "query", "stream", "auto_save_history"} <= set(
        chat["properties"]
    )
    assert "HTTPValidationError" not in schema["components"]["schemas"]


def fields(model: type[BaseModel]) -> set[str]:
    return set(model.model_fields)


def sample_run() -> cpb.ChatRun:
    return cpb.ChatRun(id=1, conversation_id=2, bot_id=3, section_id=2, status="completed")


def test_documented_shapes_match_the_payload_builders() -> None:
    chat: dict[str, Any] = chat_object(sample_run())
    # required_action is there only while a chat waits in requires_action.
    assert fields(ChatView) - {"required_action"} == set(chat)
    paused = sample_run()
    paused.status = "requires_action"
    paused.pending_tool_calls.add(id="call_1", name="f", arguments="{}")
    assert fields(ChatView) == set(chat_object(paused))
    ChatView.model_validate(chat_object(paused))
    answer = answer_data(ChatOutcome("conversation.chat.completed", chat, "hi"))
    assert fields(ChatAnswerView) - {"required_action"} == set(answer)
    assert fields(ApiChatAnswerView) - {"required_action"} == set(answer)
    assert fields(MessageView) == set(message_object(cpb.Message(id=1)))
    # The views accept what the builders make.
    ChatAnswerView.model_validate(answer)
    MessageView.model_validate(message_object(cpb.Message(id=1, role="user")))
