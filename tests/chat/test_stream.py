"""POST /v3/chat end to end: edge -> NATS -> runner -> mock LLM over HTTP -> SSE."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import httpx
import orjson
import pytest
from google.protobuf.field_mask_pb2 import FieldMask

from cozeplus.rpc.v1 import registry_pb2 as pb
from cozeplus.rpc.v1.registry_pb2_grpc import BotRegistryStub
from tests.chat.conftest import user_message
from tests.chat.sse import CANCEL_TAIL, FAILURE_TAIL, SUCCESS, collapse_deltas, names, parse_stream
from tests.conftest import Account

MOCK_REPLY_PREFIX = ""


def stream_chat(api: httpx.Client, bot_id: str, text: str, **extra: object) -> httpx.Response:
    body = {
        "bot_id": bot_id,
        "user_id": "end-user-1",
        "stream": True,
        "additional_messages": [user_message(text)],
        **extra,
    }
    return api.post("/v3/chat", json=body)


def test_stream_follows_the_framing_rules_byte_for_byte(
    api: httpx.Client, make_bot: Callable[..., str]
) -> None:
    bot_id = make_bot(model="mock-echo")
    response = stream_chat(api, bot_id, "hello framing")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-accel-buffering"] == "no"
    assert response.headers["x-tt-logid"] == response.headers["x-log-id"]

    raw = response.content
    events = parse_stream(raw)
    assert collapse_deltas(events) == SUCCESS
    # No comments, ids or retries anywhere, and every line ends in \n.
    for line in raw.split(b"\n")[:-1]:
        assert line == b"" or line.startswith((b"event: ", b"data: ")), line
    assert b"\r" not in raw

    deltas = [e.data for e in events if e.name == "conversation.message.delta"]
    completed = next(e.data for e in events if e.name == "conversation.message.completed")
    answer = "".join(d["content"] for d in deltas)
    assert "hello framing" in answer
    assert completed["content"] == answer
    assert completed["message_item"]["content"] == answer
    assert all(d["message_item"]["content"] == d["content"] for d in deltas)
    assert {d["id"] for d in deltas} == {completed["id"]}
    assert all(isinstance(d["id"], str) and isinstance(d["chat_id"], str) for d in deltas)

    chat = next(e.data for e in events if e.name == "conversation.chat.completed")
    assert chat["status"] == "completed"
    assert chat["usage"]["token_count"] > 0
    assert (
        chat["usage"]["token_count"] == chat["usage"]["input_count"] + chat["usage"]["output_count"]
    )
    assert chat["run_record_item"]["usage"]["total_tokens"] == chat["usage"]["token_count"]
    assert events[-2].data == {"event": "conversation.stream.done"}
    assert events[-1].raw == b'event: done\ndata: {"event":"done"}\n\n'


def test_non_stream_returns_chat_merged_with_answer(
    api: httpx.Client, make_bot: Callable[..., str]
) -> None:
    bot_id = make_bot(model="mock-echo")
    response = api.post(
        "/v3/chat",
        json={"bot_id": int(bot_id), "user_id": "u1", "additional_messages": [user_message("hi")]},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["code"] == 0 and body["msg"] == "success"
    data = body["data"]
    assert data["status"] == "completed"
    assert data["role"] == "assistant" and data["type"] == "answer"
    assert "hi" in data["content"]
    assert data["usage"]["token_count"] > 0
    assert isinstance(data["id"], str) and isinstance(data["conversation_id"], str)


def test_query_shorthand_and_conversation_id_in_body_keep_context(
    api: httpx.Client, make_bot: Callable[..., str], mock_llm: str
) -> None:
    bot_id = make_bot(model="mock-echo")
    first = api.post("/v3/chat", json={"bot_id": bot_id, "user_id": "u2", "query": "first turn"})
    assert first.status_code == 200, first.text
    conversation_id = first.json()["data"]["conversation_id"]
    second = api.post(
        "/v3/chat",
        json={
            "bot_id": bot_id,
            "user_id": "u2",
            "query": "second turn",
            "ConversationID": conversation_id,
        },
    )
    assert second.status_code == 200, second.text
    assert second.json()["data"]["conversation_id"] == conversation_id
    sent = httpx.get(f"{mock_llm}/mock/requests").json()[-1]["messages"]
    contents = [
        m["content"] if isinstance(m["content"], str) else json.dumps(m["content"]) for m in sent
    ]
    assert any("first turn" in c for c in contents), sent
    assert "second turn" in contents[-1]


def test_conversation_id_in_query_string(api: httpx.Client, make_bot: Callable[..., str]) -> None:
    bot_id = make_bot(model="mock-echo")
    created = api.post("/v1/conversation/create", json={"bot_id": bot_id})
    assert created.status_code == 200, created.text
    conversation_id = created.json()["data"]["id"]
    response = api.post(
        f"/v3/chat?conversation_id={conversation_id}",
        json={"bot_id": bot_id, "user_id": "u3", "additional_messages": [user_message("q")]},
    )
    assert response.status_code == 200, response.text
    assert response.json()["data"]["conversation_id"] == conversation_id


def test_model_error_mid_stream_fails_cleanly(
    api: httpx.Client, make_bot: Callable[..., str]
) -> None:
    bot_id = make_bot(model="mock-fail")
    events = parse_stream(stream_chat(api, bot_id, "break please").content)
    assert names(events)[-4:] == FAILURE_TAIL
    failed = events[-4].data
    assert failed["status"] == "failed" and failed["failed_at"] > 0
    assert failed["last_error"]["code"] != 0 and failed["last_error"]["msg"]
    error = events[-3].data
    assert error["code"] == failed["last_error"]["code"]
    assert error["error"]["msg"] == failed["last_error"]["msg"]


def test_model_http_error_fails_cleanly(api: httpx.Client, make_bot: Callable[..., str]) -> None:
    bot_id = make_bot(model="mock-error")
    events = parse_stream(stream_chat(api, bot_id, "x").content)
    assert collapse_deltas(events) == [
        "conversation.chat.created",
        "conversation.chat.in_progress",
        *FAILURE_TAIL,
    ]


def test_model_timeout_fails_cleanly(api: httpx.Client, make_bot: Callable[..., str]) -> None:
    # The mock waits 60 s for its first token; the test runners time out after 3 s.
    bot_id = make_bot(model="mock-slow")
    events = parse_stream(stream_chat(api, bot_id, "x").content)
    assert names(events)[-4:] == FAILURE_TAIL
    assert events[-4].data["last_error"]["code"] != 0


def test_unknown_model_is_rejected_when_the_bot_is_saved(api: httpx.Client) -> None:
    response = api.post("/api/draftbot/create", json={"name": "b", "model": "no-such-model"})
    assert response.status_code == 400
    assert "no-such-model" in response.json()["msg"]


def test_another_users_conversation_is_404_and_nothing_is_written(
    api: httpx.Client, make_bot: Callable[..., str]
) -> None:
    bot_id = make_bot(model="mock-echo")
    first = api.post("/v3/chat", json={"bot_id": bot_id, "user_id": "alice", "query": "mine"})
    conversation_id = first.json()["data"]["conversation_id"]
    before = api.get("/v1/conversation/message/list", params={"conversation_id": conversation_id})
    stolen = api.post(
        f"/v3/chat?conversation_id={conversation_id}",
        json={"bot_id": bot_id, "user_id": "mallory", "stream": True, "query": "yours?"},
    )
    assert stolen.status_code == 404
    assert stolen.headers["content-type"].startswith("application/json")
    assert stolen.json()["code"] == 404
    after = api.get("/v1/conversation/message/list", params={"conversation_id": conversation_id})
    assert after.json()["data"] == before.json()["data"]


def test_another_tenants_bot_and_conversation_are_404(
    api: httpx.Client,
    make_bot: Callable[..., str],
    make_account: Callable[..., object],
    chat_system: str,
) -> None:
    bot_id = make_bot(model="mock-echo")
    first = api.post("/v3/chat", json={"bot_id": bot_id, "user_id": "u", "query": "hi"})
    conversation_id = first.json()["data"]["conversation_id"]
    other = make_account()
    with httpx.Client(base_url=chat_system, headers=other.headers, timeout=30) as intruder:  # type: ignore[attr-defined]
        assert (
            intruder.post(
                "/v3/chat", json={"bot_id": bot_id, "user_id": "u", "query": "x"}
            ).status_code
            == 404
        )
        assert (
            intruder.get(
                "/v1/conversation/retrieve", params={"conversation_id": conversation_id}
            ).status_code
            == 404
        )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"user_id": "u", "query": "q"}, "bot_id"),
        ({"bot_id": "1", "query": "q"}, "user_id"),
        ({"bot_id": "abc", "user_id": "u", "query": "q"}, "bot_id"),
        ({"bot_id": "1", "user_id": "u"}, "additional_messages"),
        (
            {
                "bot_id": "1",
                "user_id": "u",
                "additional_messages": [{"role": "robot", "content": "x"}],
            },
            "role",
        ),
        (
            {
                "bot_id": "1",
                "user_id": "u",
                "additional_messages": [
                    {"role": "user", "content": "not json", "content_type": "object_string"}
                ],
            },
            "object_string",
        ),
    ],
)
def test_bad_chat_requests_get_400_naming_the_field(
    api: httpx.Client, body: dict[str, object], field: str
) -> None:
    response = api.post("/v3/chat", json={**body, "stream": True})
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert field in response.json()["msg"]


def test_unknown_bot_is_404_before_any_stream(api: httpx.Client) -> None:
    response = api.post(
        "/v3/chat", json={"bot_id": "12345", "user_id": "u", "stream": True, "query": "q"}
    )
    assert response.status_code == 404
    assert response.json()["code"] == 404


def test_unpublished_bot_runs_as_draft_on_the_internal_route(
    api: httpx.Client, make_bot: Callable[..., str]
) -> None:
    bot_id = make_bot(model="mock-echo", publish=False)
    assert (
        api.post("/v3/chat", json={"bot_id": bot_id, "user_id": "u", "query": "q"}).status_code
        == 404
    )
    response = api.post(
        "/api/conversation/chat",
        json={"agent_id": int(bot_id), "query": "draft run", "stream": True},
    )
    assert response.status_code == 200, response.text
    events = parse_stream(response.content)
    assert collapse_deltas(events) == SUCCESS
    assert "draft run" in events[-4].data["content"]


def test_images_reach_a_vision_model_as_image_parts(
    api: httpx.Client, make_bot: Callable[..., str], mock_llm: str
) -> None:
    bot_id = make_bot(model="mock-vision")
    content = orjson.dumps(
        [
            {"type": "text", "text": "what is this?"},
            {"type": "image", "file_url": "https://img.example/cat.png"},
        ]
    ).decode()
    response = api.post(
        "/v3/chat",
        json={
            "bot_id": bot_id,
            "user_id": "u",
            "additional_messages": [
                {"role": "user", "content": content, "content_type": "object_string"}
            ],
        },
    )
    assert response.status_code == 200, response.text
    sent = httpx.get(f"{mock_llm}/mock/requests").json()[-1]["messages"][-1]["content"]
    assert {"type": "image_url", "image_url": {"url": "https://img.example/cat.png"}} in [
        {k: v for k, v in part.items() if k in ("type", "image_url")} for part in sent
    ]

    # The product document's multimodal sample: query plus a `type: image` message.
    response = api.post(
        "/v3/chat",
        json={
            "bot_id": int(bot_id),
            "user_id": "u",
            "query": "请分析这张图片",
            "additional_messages": [
                {"role": "user", "type": "image", "content": "https://img.example/2.jpg"}
            ],
        },
    )
    assert response.status_code == 200, response.text
    sent_messages = httpx.get(f"{mock_llm}/mock/requests").json()[-1]["messages"]
    flat = json.dumps(sent_messages, ensure_ascii=False)
    assert "https://img.example/2.jpg" in flat and "请分析这张图片" in flat


def test_client_disconnect_keeps_the_run_going(
    chat_system: str, account: object, make_bot: Callable[..., str]
) -> None:
    bot_id = make_bot(model="mock-stream-slow")
    headers = account.headers  # type: ignore[attr-defined]
    with httpx.Client(base_url=chat_system, headers=headers, timeout=30) as client:
        with client.stream(
            "POST",
            "/v3/chat",
            json={"bot_id": bot_id, "user_id": "u", "stream": True, "query": "go on"},
        ) as response:
            # One iterator: httpx refuses to start a second one on the same response.
            lines = response.iter_lines()
            first = next(lines)
            assert first == "event: conversation.chat.created"
            data = orjson.loads(next(lines)[len("data: ") :])
        # The connection is closed here, mid-answer.
        conversation_id, chat_id = data["conversation_id"], data["id"]
        deadline = time.monotonic() + 30
        status = ""
        while time.monotonic() < deadline:
            status = client.get(
                "/v3/chat/retrieve", params={"conversation_id": conversation_id, "chat_id": chat_id}
            ).json()["data"]["status"]
            if status == "completed":
                break
            time.sleep(0.2)
        assert status == "completed"
        messages = client.get(
            "/v3/chat/message/list", params={"conversation_id": conversation_id, "chat_id": chat_id}
        ).json()["data"]
        answers = [m for m in messages if m["type"] == "answer"]
        assert answers and answers[0]["content"]


def test_cancel_stops_the_model_and_keeps_the_partial_answer(
    chat_system: str, account: object, make_bot: Callable[..., str], mock_llm: str
) -> None:
    bot_id = make_bot(model="mock-stream-slow")
    headers = account.headers  # type: ignore[attr-defined]
    aborted_before = httpx.get(f"{mock_llm}/mock/stats").json()["aborted"]
    raw = b""
    with httpx.Client(base_url=chat_system, headers=headers, timeout=30) as client:
        with client.stream(
            "POST",
            "/v3/chat",
            json={"bot_id": bot_id, "user_id": "u", "stream": True, "query": "long"},
        ) as response:
            deltas = 0
            chat: dict[str, object] = {}
            # One iterator for both loops: httpx refuses to start a second one.
            chunks = response.iter_bytes()
            for chunk in chunks:
                raw += chunk
                events = parse_stream(raw[: raw.rfind(b"\n\n") + 2]) if b"\n\n" in raw else []
                if events and not chat:
                    chat = events[0].data
                deltas = sum(e.name == "conversation.message.delta" for e in events)
                if deltas >= 2:
                    break
            canceled = client.post(
                "/v3/chat/cancel",
                json={"conversation_id": chat["conversation_id"], "chat_id": chat["id"]},
            )
            assert canceled.status_code == 200, canceled.text
            assert canceled.json()["data"]["status"] == "canceled"
            for chunk in chunks:
                raw += chunk
        events = parse_stream(raw)
        assert names(events)[-3:] == CANCEL_TAIL
        assert "conversation.chat.completed" not in names(events)
        again = client.post(
            "/v3/chat/cancel",
            json={"conversation_id": chat["conversation_id"], "chat_id": chat["id"]},
        )
        assert again.status_code == 409
        retrieved = client.get(
            "/v3/chat/retrieve",
            params={"conversation_id": chat["conversation_id"], "chat_id": chat["id"]},
        ).json()["data"]
        assert retrieved["status"] == "canceled"
        messages = client.get(
            "/v3/chat/message/list",
            params={"conversation_id": chat["conversation_id"], "chat_id": chat["id"]},
        ).json()["data"]
        partial = [m["content"] for m in messages if m["type"] == "answer"]
        assert partial and partial[0]
    deadline = time.monotonic() + 5
    while httpx.get(f"{mock_llm}/mock/stats").json()["aborted"] == aborted_before:
        assert time.monotonic() < deadline, "the model call was not aborted"
        time.sleep(0.1)


def test_cancel_with_only_conversation_id_as_the_product_document_sends(
    chat_system: str, account: object, make_bot: Callable[..., str]
) -> None:
    bot_id = make_bot(model="mock-stream-slow")
    headers = account.headers  # type: ignore[attr-defined]
    with httpx.Client(base_url=chat_system, headers=headers, timeout=30) as client:
        with client.stream(
            "POST",
            "/v3/chat",
            json={"bot_id": bot_id, "user_id": "u", "stream": True, "query": "long"},
        ) as response:
            lines = response.iter_lines()
            next(lines)
            chat = orjson.loads(next(lines)[len("data: ") :])
            canceled = client.post(
                "/v3/chat/cancel", json={"conversation_id": chat["conversation_id"]}
            )
            assert canceled.status_code == 200, canceled.text
            rest = "\n".join(lines)
        assert "event: conversation.chat.canceled" in rest
        assert rest.rstrip().endswith('event: done\ndata: {"event":"done"}')


def test_non_stream_model_failure_is_a_failed_chat_not_an_http_error(
    api: httpx.Client, make_bot: Callable[..., str]
) -> None:
    # The provider reports a dropped upstream as 503: the chat failed, the request did not.
    bot_id = make_bot(model="mock-fail")
    response = api.post("/v3/chat", json={"bot_id": bot_id, "user_id": "u", "query": "break"})
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["status"] == "failed" and data["failed_at"] > 0
    assert data["last_error"]["code"] == 503 and data["last_error"]["msg"]
    # The mock fails after 3 tokens: what the model had said is returned, not "".
    assert data["content"]


def answer_of(response: httpx.Response) -> str:
    events = parse_stream(response.content)
    assert collapse_deltas(events) == SUCCESS
    return "".join(e.data["content"] for e in events if e.name == "conversation.message.delta")


def test_a_new_publish_is_chatted_with_at_once_despite_the_version_caches(
    api: httpx.Client,
    make_bot: Callable[..., str],
    bots_stub: BotRegistryStub,
    account: Account,
) -> None:
    bot_id = make_bot(model="mock-echo")
    # Twice: the edge now holds the published version (30 s TTL) and the runner its config.
    for _ in range(2):
        assert "before" in answer_of(stream_chat(api, bot_id, "before"))
    bots_stub.UpdateConfig(
        pb.UpdateConfigRequest(
            owner_id=account.user_id,
            bot_id=int(bot_id),
            config=pb.BotConfig(model=pb.ModelSettings(model_id="mock-vision")),
            update_mask=FieldMask(paths=["model"]),
        )
    )
    published = api.post("/api/draftbot/publish", json={"bot_id": bot_id})
    assert published.status_code == 200, published.text
    # The registry's BOT_CHANGED broadcast evicts the edge's entry: no TTL to wait out. It
    # is asynchronous, so allow it a moment, far less than the TTL.
    deadline = time.monotonic() + 5
    while "after" in answer_of(stream_chat(api, bot_id, "after")):
        assert time.monotonic() < deadline, "the edge still chats with the old version"
        time.sleep(0.05)
