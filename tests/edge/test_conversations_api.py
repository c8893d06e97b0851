"""Conversations and messages over HTTP (/v1, the official shapes) and through cozepy."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from cozepy import Coze, Message, MessageContentType, MessageRole, TokenAuth

from tests.conftest import Account
from tests.edge.envelope import assert_error, assert_log_id, data_of

CONVERSATION_KEYS = {
    "id",
    "name",
    "bot_id",
    "created_at",
    "updated_at",
    "meta_data",
    "last_section_id",
}
MESSAGE_KEYS = {
    "id",
    "conversation_id",
    "section_id",
    "bot_id",
    "chat_id",
    "role",
    "type",
    "content",
    "content_type",
    "reasoning_content",
    "meta_data",
    "created_at",
    "updated_at",
}


@pytest.fixture
def bot_id(client: httpx.Client) -> str:
    return str(data_of(client.post("/api/draftbot/create", json={"name": "talker"}))["bot_id"])


def text(content: str, role: str = "user") -> dict[str, str]:
    return {"role": role, "content": content, "content_type": "text"}


def listed(response: httpx.Response) -> dict[str, Any]:
    """A message list: the official shape puts the cursor beside `data`."""
    assert response.status_code == 200, response.text
    assert_log_id(response)
    body: dict[str, Any] = response.json()
    assert set(body) == {"code", "msg", "data", "first_id", "last_id", "has_more"}, body
    assert body["code"] == 0
    return body


def test_conversation_lifecycle(client: httpx.Client, bot_id: str) -> None:
    created = data_of(
        client.post(
            "/v1/conversation/create",
            json={"bot_id": bot_id, "name": "first", "meta_data": {"k": "v"}, "id": None},
        )
    )
    assert set(created) == CONVERSATION_KEYS
    assert all(isinstance(created[k], str) for k in ("id", "bot_id", "last_section_id"))
    assert created["bot_id"] == bot_id and created["meta_data"] == {"k": "v"}
    conversation_id = created["id"]

    retrieved = data_of(
        client.get("/v1/conversation/retrieve", params={"conversation_id": conversation_id})
    )
    assert retrieved == created

    renamed = data_of(client.put(f"/v1/conversations/{conversation_id}", json={"name": "second"}))
    assert renamed["name"] == "second" and renamed["id"] == conversation_id

    section = data_of(client.post(f"/v1/conversations/{conversation_id}/clear"))
    assert section["conversation_id"] == conversation_id
    assert section["id"] != created["last_section_id"]
    after_clear = data_of(
        client.get("/v1/conversation/retrieve", params={"conversation_id": conversation_id})
    )
    assert after_clear["last_section_id"] == section["id"]

    assert data_of(client.delete(f"/v1/conversations/{conversation_id}")) == {}
    assert_error(
        client.get("/v1/conversation/retrieve", params={"conversation_id": conversation_id}), 404
    )


def test_a_bodyless_create_makes_an_empty_conversation(client: httpx.Client) -> None:
    created = data_of(client.post("/v1/conversation/create"))
    assert created["meta_data"] == {} and created["bot_id"] == "0"


def test_listing_conversations_pages_with_has_more(client: httpx.Client, bot_id: str) -> None:
    ids = [
        data_of(client.post("/v1/conversation/create", json={"bot_id": bot_id}))["id"]
        for _ in range(3)
    ]
    seen: list[str] = []
    page_num = 1
    while True:
        page = data_of(
            client.get(
                "/v1/conversations",
                params={"bot_id": bot_id, "page_num": page_num, "page_size": 2},
            )
        )
        assert set(page) == {"has_more", "conversations"}
        seen += [c["id"] for c in page["conversations"]]
        if not page["has_more"]:
            break
        page_num += 1
    assert seen == ids[::-1]  # newest first by default
    oldest_first = data_of(
        client.get("/v1/conversations", params={"bot_id": bot_id, "sort_order": "ASC"})
    )
    assert [c["id"] for c in oldest_first["conversations"]] == ids
    assert_error(client.get("/v1/conversations", params={"bot_id": bot_id, "page_size": 51}), 400)
    assert_error(client.get("/v1/conversations"), 400, "bot_id")


def test_message_lifecycle(client: httpx.Client, bot_id: str) -> None:
    conversation_id = data_of(
        client.post(
            "/v1/conversation/create",
            json={"bot_id": bot_id, "messages": [text("hello"), text("hi!", "assistant")]},
        )
    )["id"]
    query = {"conversation_id": conversation_id}
    created = data_of(
        client.post(
            "/v1/conversation/message/create",
            params=query,
            json={**text("one more"), "meta_data": {"source": "test"}},
        )
    )
    assert set(created) == MESSAGE_KEYS
    assert created["type"] == "question" and created["chat_id"] == "0"
    assert created["meta_data"] == {"source": "test"}

    everything = listed(client.post("/v1/conversation/message/list", params=query))
    assert [m["content"] for m in everything["data"]] == ["one more", "hi!", "hello"]
    assert [m["type"] for m in everything["data"]] == ["question", "answer", "question"]
    assert everything["first_id"] == created["id"] and everything["has_more"] is False
    via_get = listed(client.get("/v1/conversation/message/list", params={**query, "order": "asc"}))
    assert [m["content"] for m in via_get["data"]] == ["hello", "hi!", "one more"]

    message_ids = {**query, "message_id": created["id"]}
    assert data_of(client.get("/v1/conversation/message/retrieve", params=message_ids)) == created

    response = client.post(
        "/v1/conversation/message/modify", params=message_ids, json={"content": "changed"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"code", "msg", "data", "message"}
    assert body["message"] == body["data"] and body["message"]["content"] == "changed"

    deleted = data_of(client.post("/v1/conversation/message/delete", params=message_ids))
    assert deleted["id"] == created["id"]
    assert_error(client.get("/v1/conversation/message/retrieve", params=message_ids), 404)


def test_paging_messages_with_after_id_terminates(client: httpx.Client, bot_id: str) -> None:
    conversation_id = data_of(
        client.post(
            "/v1/conversation/create",
            json={"bot_id": bot_id, "messages": [text(f"m{i}") for i in range(5)]},
        )
    )["id"]
    contents: list[str] = []
    after_id = ""
    for _ in range(10):
        page = listed(
            client.post(
                "/v1/conversation/message/list",
                params={"conversation_id": conversation_id},
                json={"limit": 2, "after_id": after_id or None},
            )
        )
        contents += [m["content"] for m in page["data"]]
        if not page["has_more"]:
            break
        after_id = page["last_id"]
    assert contents == [f"m{i}" for i in range(4, -1, -1)]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"role": "robot", "content": "x"}, "role"),
        ({"role": "user"}, "content"),
        ({"role": "user", "content": "x", "content_type": "video"}, "content_type"),
        ({"role": "user", "content": "{", "content_type": "object_string"}, "object_string"),
        ({"role": "user", "content": "x", "meta_data": {"k": 1}}, "meta_data.k"),
    ],
)
def test_message_input_errors_name_the_field(
    client: httpx.Client, bot_id: str, body: dict[str, Any], field: str
) -> None:
    conversation_id = data_of(client.post("/v1/conversation/create", json={"bot_id": bot_id}))["id"]
    msg = assert_error(
        client.post(
            "/v1/conversation/message/create",
            params={"conversation_id": conversation_id},
            json=body,
        ),
        400,
    )
    assert field in msg


def test_another_tenants_conversation_is_404(
    client: httpx.Client, bot_id: str, edge_url: str, other_account: Account
) -> None:
    conversation_id = data_of(
        client.post("/v1/conversation/create", json={"bot_id": bot_id, "messages": [text("x")]})
    )["id"]
    query = {"conversation_id": conversation_id}
    with httpx.Client(base_url=edge_url, headers=other_account.headers, timeout=30) as other:
        assert_error(other.get("/v1/conversation/retrieve", params=query), 404)
        assert_error(other.post("/v1/conversation/message/list", params=query), 404)
        assert_error(
            other.post("/v1/conversation/message/create", params=query, json=text("mine now")),
            404,
        )
        assert_error(other.put(f"/v1/conversations/{conversation_id}", json={"name": "x"}), 404)
        assert_error(other.post(f"/v1/conversations/{conversation_id}/clear"), 404)
        assert_error(other.delete(f"/v1/conversations/{conversation_id}"), 404)
    assert len(listed(client.post("/v1/conversation/message/list", params=query))["data"]) == 1


def test_cozepy_conversation_and_message_calls(
    edge_url: str, account: Account, bot_id: str
) -> None:
    coze = Coze(auth=TokenAuth(account.token), base_url=edge_url)
    conversation = coze.conversations.create(
        bot_id=bot_id, messages=[Message.build_user_question_text("from the sdk")]
    )
    assert coze.conversations.update(conversation_id=conversation.id, name="sdk").name == "sdk"
    message = coze.conversations.messages.create(
        conversation_id=conversation.id,
        role=MessageRole.ASSISTANT,
        content="an answer",
        content_type=MessageContentType.TEXT,
        meta_data={"a": "b"},
    )
    assert message.type == "answer" and message.meta_data == {"a": "b"}
    updated = coze.conversations.messages.update(
        conversation_id=conversation.id, message_id=message.id, content="a better answer"
    )
    assert updated.content == "a better answer"
    fetched = coze.conversations.messages.retrieve(
        conversation_id=conversation.id, message_id=message.id
    )
    assert fetched.content == "a better answer"
    coze.conversations.messages.delete(conversation_id=conversation.id, message_id=message.id)
    remaining = list(coze.conversations.messages.list(conversation_id=conversation.id))
    assert [m.content for m in remaining] == ["from the sdk"]
    section = coze.conversations.clear(conversation_id=conversation.id)
    assert section.conversation_id == conversation.id
    coze.conversations.delete(conversation_id=conversation.id)
