"""The history window: only the last N rounds of the current section reach the model."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

from cozeplus.rpc.v1 import conversations_pb2 as cpb
from cozeplus.rpc.v1.conversations_pb2_grpc import ConversationsStub
from cozeplus.service_auth import service_channel
from tests.conftest import Account


@pytest.fixture(scope="module")
def conversations(registry_addr: str) -> Iterator[ConversationsStub]:
    with service_channel(registry_addr) as channel:
        yield ConversationsStub(channel)


def _sent_messages(mock_llm: str) -> list[dict[str, object]]:
    messages: list[dict[str, object]] = httpx.get(f"{mock_llm}/mock/requests").json()[-1][
        "messages"
    ]
    return messages


def test_a_thousand_message_conversation_sends_only_n_rounds(
    api: httpx.Client,
    account: Account,
    make_bot: Callable[..., str],
    conversations: ConversationsStub,
    mock_llm: str,
) -> None:
    bot_id = make_bot(model="mock-echo", prompt="system prompt", history_rounds=3)
    old = [
        cpb.NewMessage(
            role="user" if i % 2 == 0 else "assistant",
            type="question" if i % 2 == 0 else "answer",
            content=f"message {i}",
            content_type="text",
        )
        for i in range(1000)
    ]
    conversation = conversations.CreateConversation(
        cpb.CreateConversationRequest(
            owner_id=account.user_id, user_id="u", bot_id=int(bot_id), messages=old
        )
    )
    response = api.post(
        f"/v3/chat?conversation_id={conversation.id}",
        json={"bot_id": bot_id, "user_id": "u", "query": "the new question"},
    )
    assert response.status_code == 200, response.text
    sent = _sent_messages(mock_llm)
    assert [m["role"] for m in sent] == ["system"] + ["user", "assistant"] * 3 + ["user"]
    assert [m["content"] for m in sent[1:-1]] == [f"message {i}" for i in range(994, 1000)]
    assert sent[-1]["content"] == "the new question"


def test_clearing_the_conversation_starts_a_fresh_context(
    api: httpx.Client, make_bot: Callable[..., str], mock_llm: str
) -> None:
    bot_id = make_bot(model="mock-echo", prompt="", history_rounds=5)
    first = api.post("/v3/chat", json={"bot_id": bot_id, "user_id": "u", "query": "remember me"})
    conversation_id = first.json()["data"]["conversation_id"]
    cleared = api.post(f"/v1/conversations/{conversation_id}/clear")
    assert cleared.status_code == 200, cleared.text
    assert cleared.json()["data"]["conversation_id"] == conversation_id
    api.post(
        f"/v3/chat?conversation_id={conversation_id}",
        json={"bot_id": bot_id, "user_id": "u", "query": "who am I?"},
    )
    sent = _sent_messages(mock_llm)
    assert [m["content"] for m in sent] == ["who am I?"]


def test_auto_save_history_false_saves_no_messages(
    api: httpx.Client, make_bot: Callable[..., str], mock_llm: str
) -> None:
    bot_id = make_bot(model="mock-echo", prompt="", history_rounds=5)
    first = api.post(
        "/v3/chat",
        json={
            "bot_id": bot_id,
            "user_id": "u",
            "query": "off the record",
            "auto_save_history": False,
        },
    )
    assert first.status_code == 200, first.text
    assert "off the record" in first.json()["data"]["content"]
    conversation_id = first.json()["data"]["conversation_id"]
    listed = api.post("/v1/conversation/message/list", params={"conversation_id": conversation_id})
    assert listed.status_code == 200, listed.text
    assert listed.json()["data"] == []
    api.post(
        f"/v3/chat?conversation_id={conversation_id}",
        json={"bot_id": bot_id, "user_id": "u", "query": "next"},
    )
    assert [m["content"] for m in _sent_messages(mock_llm)] == ["next"]


def test_a_history_window_too_large_for_the_queue_reaches_the_model_through_start_run(
    api: httpx.Client,
    account: Account,
    make_bot: Callable[..., str],
    conversations: ConversationsStub,
    mock_llm: str,
) -> None:
    # The edge queues a chat with its history window when the message can carry it (the
    # runner then asks the model while StartRun is under way); 4 × 300 KB cannot.
    bot_id = make_bot(model="mock-echo", prompt="", history_rounds=2)
    old = [
        cpb.NewMessage(
            role="user" if i % 2 == 0 else "assistant",
            type="question" if i % 2 == 0 else "answer",
            content=f"{i}" + "长" * 99_000,
            content_type="text",
        )
        for i in range(4)
    ]
    conversation = conversations.CreateConversation(
        cpb.CreateConversationRequest(
            owner_id=account.user_id, user_id="u", bot_id=int(bot_id), messages=old
        )
    )
    response = api.post(
        f"/v3/chat?conversation_id={conversation.id}",
        json={"bot_id": bot_id, "user_id": "u", "query": "and now?"},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    sent = _sent_messages(mock_llm)
    assert [str(m["content"])[:1] for m in sent[:-1]] == ["0", "1", "2", "3"]
    assert all(len(str(m["content"])) == 99_001 for m in sent[:-1])
    assert sent[-1]["content"] == "and now?"
