"""The chat routes' HTTP behaviour that needs no model: validation, tenancy, and chats that no
runner takes (an edge on a NATS of its own, where none listens)."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cozeplus.embedded_nats import EmbeddedNats
from services.cli.system import ServiceProcess, edge_process, free_port
from tests.chat.sse import CANCEL_TAIL, names, parse_stream
from tests.conftest import Account
from tests.edge.envelope import assert_error, assert_log_id, data_of

QUEUE_TIMEOUT_S = 3


@pytest.fixture(scope="module")
def idle_edge_url(
    work_dir: Path, registry_addr: str, start_service: Callable[[ServiceProcess], ServiceProcess]
) -> Iterator[str]:
    """An edge whose chats stay queued: no runner listens on its NATS."""
    with EmbeddedNats(work_dir / f"idle-nats-{secrets.token_hex(3)}") as server:
        edge = start_service(
            edge_process(
                port=free_port(),
                registry_addr=registry_addr,
                nats_url=server.url,
                log_dir=work_dir / "logs",
                name="idle-edge",
                extra_env={"COZEPLUS_EDGE_CHAT_QUEUE_TIMEOUT_S": str(QUEUE_TIMEOUT_S)},
            )
        )
        yield f"http://127.0.0.1:{edge.env['COZEPLUS_EDGE_PORT']}"
        edge.stop()


@pytest.fixture
def idle(idle_edge_url: str, account: Account) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=idle_edge_url, headers=account.headers, timeout=30) as http:
        yield http


def published_bot(client: httpx.Client, **fields: Any) -> str:
    created = data_of(client.post("/api/draftbot/create", json={"name": "b", **fields}))
    data_of(client.post("/api/draftbot/publish", json={"bot_id": created["bot_id"]}))
    return str(created["bot_id"])


def test_canceling_a_queued_chat_ends_its_stream(idle: httpx.Client) -> None:
    bot_id = published_bot(idle)
    conversation = data_of(idle.post("/v1/conversation/create", json={"bot_id": bot_id}))
    with idle.stream(
        "POST",
        "/v3/chat",
        params={"conversation_id": conversation["id"]},
        json={"bot_id": bot_id, "user_id": "u", "stream": True, "query": "anyone?"},
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
        assert_log_id(response)
        # The product document's cancel: the conversation only.
        canceled = data_of(
            idle.post("/v3/chat/cancel", json={"conversation_id": int(conversation["id"])})
        )
        raw = response.read()
    events = parse_stream(raw)
    assert names(events) == CANCEL_TAIL
    chat = events[0].data
    assert chat["status"] == "canceled" and chat["id"] == canceled["id"]
    assert canceled["status"] == "canceled"
    assert canceled["conversation_id"] == conversation["id"]

    again = idle.post(
        "/v3/chat/cancel", json={"conversation_id": conversation["id"], "chat_id": chat["id"]}
    )
    assert_error(again, 409)
    retrieved = data_of(
        idle.get(
            "/v3/chat/retrieve",
            params={"conversation_id": conversation["id"], "chat_id": chat["id"]},
        )
    )
    assert retrieved["status"] == "canceled"
    # The question was stored when the chat was created.
    listed = idle.get(
        "/v1/conversation/message/list", params={"conversation_id": conversation["id"]}
    ).json()
    assert [m["content"] for m in listed["data"]] == ["anyone?"]


def test_a_chat_no_runner_takes_is_a_503_without_streaming(idle: httpx.Client) -> None:
    bot_id = published_bot(idle)
    response = idle.post("/v3/chat", json={"bot_id": bot_id, "user_id": "u", "query": "hello?"})
    assert_error(response, 503, "no runner")


def test_the_draft_route_validates_and_needs_the_callers_bot(idle: httpx.Client) -> None:
    created = data_of(idle.post("/api/draftbot/create", json={"name": "draft only"}))
    response = idle.post("/api/conversation/chat", json={"agent_id": created["bot_id"]})
    assert_error(response, 400, "query")
    response = idle.post(
        "/api/conversation/chat", json={"agent_id": 1, "query": "who?", "stream": True}
    )
    assert_error(response, 404)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"meta_data": {f"k{i}": "v" for i in range(17)}}, "meta_data"),
        ({"meta_data": {"k": 1}}, "meta_data.k"),
        ({"custom_variables": {"name": ["x"]}}, "custom_variables.name"),
        ({"ConversationID": "abc"}, "ConversationID"),
        ({"conversation_id": -3}, "conversation_id"),
        ({"additional_messages": {"role": "user"}}, "additional_messages"),
        (
            {"additional_messages": [{"role": "user", "content": "x", "content_type": "video"}]},
            "additional_messages[0].content_type",
        ),
        ({"additional_messages": [{"role": "user", "content": "  "}]}, "content"),
        ({"additional_messages": [{"role": "user"}]}, "additional_messages[0].content"),
        (
            {"additional_messages": [{"role": "user", "content": "x", "type": "Not A Type"}]},
            "type",
        ),
        (
            {
                "additional_messages": [
                    {"role": "user", "content": "[]", "content_type": "object_string"}
                ]
            },
            "object_string",
        ),
        ({"stream": "sometimes"}, "stream"),
        ({"query": 5}, "query"),
        ({"user_id": ""}, "user_id"),
    ],
)
def test_chat_input_errors_name_the_field(
    client: httpx.Client, body: dict[str, Any], field: str
) -> None:
    base = {"bot_id": "1", "user_id": "u", "query": "q"}
    msg = assert_error(client.post("/v3/chat", json={**base, **body}), 400)
    assert field in msg, msg


def test_conversation_id_in_the_query_must_be_an_id(client: httpx.Client) -> None:
    response = client.post(
        "/v3/chat?conversation_id=abc", json={"bot_id": "1", "user_id": "u", "query": "q"}
    )
    assert_error(response, 400, "conversation_id")


def test_chats_need_a_published_bot_of_the_caller(
    client: httpx.Client, other_account: Account, edge_url: str
) -> None:
    draft = data_of(client.post("/api/draftbot/create", json={"name": "unpublished"}))
    body = {"bot_id": draft["bot_id"], "user_id": "u", "stream": True, "query": "q"}
    assert_error(client.post("/v3/chat", json=body), 404)
    bot_id = published_bot(client)
    with httpx.Client(base_url=edge_url, headers=other_account.headers, timeout=30) as other:
        assert_error(other.post("/v3/chat", json={**body, "bot_id": bot_id}), 404)
        assert_error(
            other.post("/api/conversation/chat", json={"agent_id": bot_id, "query": "q"}), 404
        )


def test_unknown_chats_and_conversations_are_404(client: httpx.Client) -> None:
    ids = {"conversation_id": "123456789", "chat_id": "987654321"}
    assert_error(client.get("/v3/chat/retrieve", params=ids), 404)
    assert_error(client.post("/v3/chat/retrieve", params=ids), 404)
    assert_error(client.get("/v3/chat/message/list", params=ids), 404)
    assert_error(client.post("/v3/chat/cancel", json=ids), 404)
    assert_error(client.post("/v3/chat/cancel", json={"chat_id": "1"}), 400, "conversation_id")
    assert_error(client.get("/v3/chat/retrieve", params={"chat_id": "1"}), 400, "conversation_id")


def test_chat_routes_need_credentials(edge_url: str) -> None:
    with httpx.Client(base_url=edge_url, timeout=30) as anon:
        assert_error(anon.post("/v3/chat", json={"bot_id": "1", "user_id": "u", "query": "q"}), 401)
        assert_error(anon.post("/v3/chat/cancel", json={"conversation_id": "1"}), 401)
        assert_error(anon.post("/api/conversation/chat", json={"agent_id": 1, "query": "q"}), 401)
