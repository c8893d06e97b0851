"""The public gRPC API (cozeplus.api.v1) against real processes: an edge serving gRPC and HTTP,
NATS, a runner, the mock LLM, the registry. Plain grpcio clients."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import grpc
import httpx
import pytest
from google.protobuf.message import Message as ProtoMessage

from cozeplus.api.v1 import (
    bots_pb2,
    bots_pb2_grpc,
    chat_pb2,
    chat_pb2_grpc,
    conversations_pb2,
    conversations_pb2_grpc,
    types_pb2,
)
from cozeplus.rpc.v1 import registry_pb2 as pb
from cozeplus.rpc.v1.registry_pb2_grpc import AccountsStub
from cozeplus.service_auth import service_channel
from tests.chat.sse import CANCEL_TAIL, Event, parse_stream
from tests.conftest import Account
from tests.grpc_api.conftest import BOT_INFO_LIMIT, GrpcEdge, auth

# Ids and times differ between two chats; everything else must be equal.
_PER_CHAT = {"id", "conversation_id", "chat_id", "section_id", "created_at", "updated_at"}
_PER_CHAT_TIMES = {"completed_at", "failed_at"}
# In the payload only while they apply (required_action: a chat in requires_action).
_ONLY_WHEN_SET = {"required_action"}


def request(bot_id: int, text: str, **fields: Any) -> chat_pb2.ChatRequest:
    return chat_pb2.ChatRequest(
        bot_id=bot_id,
        user_id="grpc-user",
        additional_messages=[types_pb2.InputMessage(role="user", content=text)],
        **fields,
    )


def rpc_error(call: Callable[[], Any]) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as raised:
        call()
    return raised.value


def log_id_of(error: grpc.RpcError) -> str:
    return dict(error.trailing_metadata() or ()).get("x-log-id", "")  # type: ignore[attr-defined]


def compare_fields(typed: ProtoMessage, payload: dict[str, Any], where: str) -> None:
    """Every field of the typed message against the SSE payload's field of the same name."""
    for field in typed.DESCRIPTOR.fields:
        name = field.name
        if name in _ONLY_WHEN_SET and not typed.HasField(name):
            assert name not in payload, f"{where}: the SSE payload has {name}, gRPC not"
            continue
        assert name in payload, f"{where}: the SSE payload has no {name}"
        value, expected = getattr(typed, name), payload[name]
        if name in _PER_CHAT:
            assert value > 0 and int(expected) > 0, f"{where}.{name}"
        elif name in _PER_CHAT_TIMES:
            assert (value > 0) == (int(expected) > 0), f"{where}.{name}"
        elif field.message_type is not None and field.message_type.GetOptions().map_entry:
            assert dict(value) == expected, f"{where}.{name}"
        elif field.message_type is not None:
            compare_fields(value, expected, f"{where}.{name}")
        else:
            if isinstance(value, int) and isinstance(expected, str):
                expected = int(expected)  # ids: strings on /v3 JSON, int64 here
            assert value == expected, f"{where}.{name}: {value!r} != {expected!r}"


DELTA = "conversation.message.delta"


def _deltas_joined(events: list[Any]) -> list[Any]:
    """The events with the answer's deltas as one (the first, carrying all the text)."""
    deltas = [e for e in events if e.event == DELTA]
    if not deltas:
        return events
    joined = type(deltas[0])()
    joined.CopyFrom(deltas[0])
    joined.message.content = "".join(d.message.content for d in deltas)
    first = events.index(deltas[0])
    rest = [e for e in events if e.event != DELTA]
    return [*rest[:first], joined, *rest[first:]]


def _sse_deltas_joined(events: list[Event]) -> list[Event]:
    deltas = [e for e in events if e.name == DELTA]
    if not deltas:
        return events
    data = {**deltas[0].data, "content": "".join(d.data["content"] for d in deltas)}
    joined = Event(name=DELTA, data=data, raw=deltas[0].raw)
    first = events.index(deltas[0])
    rest = [e for e in events if e.name != DELTA]
    return [*rest[:first], joined, *rest[first:]]


def test_a_streamed_chat_matches_sse_field_by_field(
    chats: chat_pb2_grpc.ChatServiceStub,
    http: httpx.Client,
    account: Account,
    make_bot: Callable[..., int],
) -> None:
    bot_id = make_bot()
    text = "the same words both ways"
    meta = {"k": "v"}
    sse = http.post(
        "/v3/chat",
        json={
            "bot_id": str(bot_id),
            "user_id": "grpc-user",
            "stream": True,
            "meta_data": meta,
            "additional_messages": [{"role": "user", "content": text, "content_type": "text"}],
        },
    )
    assert sse.status_code == 200, sse.text
    sse_events = parse_stream(sse.content)
    typed_events = list(
        chats.StreamChat(request(bot_id, text, meta_data=meta), metadata=auth(account), timeout=60)
    )

    # The runner passes on the chunks one read of the model's stream brings as one delta, so
    # the two streams may split the answer differently: their deltas are compared as one.
    typed_events = _deltas_joined(typed_events)
    sse_events = _sse_deltas_joined(sse_events)
    assert [e.event for e in typed_events] == [e.name for e in sse_events]
    for index, (typed, plain) in enumerate(zip(typed_events, sse_events, strict=True)):
        where = f"{plain.name}[{index}]"
        payload = typed.WhichOneof("payload")
        if plain.name.startswith("conversation.chat."):
            assert payload == "chat", where
            compare_fields(typed.chat, plain.data, where)
        elif plain.name.startswith("conversation.message."):
            assert payload == "message", where
            compare_fields(typed.message, plain.data, where)
        else:
            assert payload is None, where
    # Within each stream the ids agree with each other.
    chat = typed_events[-3].chat
    assert chat.status == "completed" and chat.bot_id == bot_id
    assert chat.usage.total_tokens > 0
    assert {e.message.chat_id for e in typed_events if e.WhichOneof("payload") == "message"} == {
        chat.id
    }
    answer = "".join(e.message.content for e in typed_events if e.event.endswith(".delta"))
    assert text in answer


def test_create_chat_waits_and_retrieve_shows_it(
    chats: chat_pb2_grpc.ChatServiceStub, account: Account, make_bot: Callable[..., int]
) -> None:
    bot_id = make_bot()
    answer = chats.CreateChat(request(bot_id, "wait for me"), metadata=auth(account), timeout=60)
    assert answer.chat.status == "completed"
    assert "wait for me" in answer.content
    assert (answer.role, answer.type, answer.content_type) == ("assistant", "answer", "text")
    ref = chat_pb2.ChatRef(conversation_id=answer.chat.conversation_id, chat_id=answer.chat.id)
    again = chats.RetrieveChat(ref, metadata=auth(account), timeout=10)
    assert again.id == answer.chat.id and again.status == "completed"
    assert again.usage.total_tokens == answer.chat.usage.total_tokens


def test_cancel_stops_a_running_chat(
    chats: chat_pb2_grpc.ChatServiceStub, account: Account, make_bot: Callable[..., int]
) -> None:
    bot_id = make_bot(model="mock-stream-slow")
    stream = chats.StreamChat(request(bot_id, "a long answer"), metadata=auth(account), timeout=60)
    seen: list[chat_pb2.ChatEvent] = []
    for event in stream:
        seen.append(event)
        if event.event == "conversation.message.delta":
            break
    chat = next(e.chat for e in seen if e.event == "conversation.chat.created")
    canceled = chats.CancelChat(
        chat_pb2.ChatRef(conversation_id=chat.conversation_id, chat_id=chat.id),
        metadata=auth(account),
        timeout=30,
    )
    assert canceled.status == "canceled"
    rest = [e.event for e in stream]
    assert rest[-3:] == CANCEL_TAIL
    # A finished chat cannot be canceled again.
    error = rpc_error(
        lambda: chats.CancelChat(
            chat_pb2.ChatRef(conversation_id=chat.conversation_id, chat_id=chat.id),
            metadata=auth(account),
            timeout=30,
        )
    )
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION  # type: ignore[attr-defined]


def test_a_client_that_goes_away_leaves_the_run_going(
    chats: chat_pb2_grpc.ChatServiceStub, account: Account, make_bot: Callable[..., int]
) -> None:
    """Like an HTTP client that disconnects: the run goes on and is stored."""
    bot_id = make_bot(model="mock-stream-slow")
    stream = chats.StreamChat(request(bot_id, "finish without me"), metadata=auth(account))
    chat = next(e.chat for e in stream if e.event == "conversation.chat.created")
    stream.cancel()  # type: ignore[attr-defined]
    ref = chat_pb2.ChatRef(conversation_id=chat.conversation_id, chat_id=chat.id)
    deadline = time.monotonic() + 60
    status = ""
    while time.monotonic() < deadline:
        status = chats.RetrieveChat(ref, metadata=auth(account), timeout=10).status
        if status in ("completed", "failed", "canceled"):
            break
        time.sleep(0.2)
    assert status == "completed"


def test_bad_key_is_unauthenticated_with_a_log_id(
    chats: chat_pb2_grpc.ChatServiceStub, bots: bots_pb2_grpc.BotServiceStub
) -> None:
    for metadata in ([("authorization", "Bearer pat_not_a_key")], [], [("authorization", "x")]):
        error = rpc_error(
            lambda md=metadata: list(chats.StreamChat(request(1, "hi"), metadata=md, timeout=10))
        )
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined]
        assert log_id_of(error)
    error = rpc_error(lambda: bots.GetBot(bots_pb2.GetBotRequest(bot_id=1), timeout=10))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined]


def test_unknown_bot_and_bad_input(
    chats: chat_pb2_grpc.ChatServiceStub,
    bots: bots_pb2_grpc.BotServiceStub,
    account: Account,
    make_bot: Callable[..., int],
) -> None:
    unknown = 2**50 + 12345
    error = rpc_error(
        lambda: list(chats.StreamChat(request(unknown, "hi"), metadata=auth(account), timeout=10))
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND  # type: ignore[attr-defined]
    assert log_id_of(error)
    error = rpc_error(
        lambda: bots.GetBot(bots_pb2.GetBotRequest(bot_id=unknown), metadata=auth(account))
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND  # type: ignore[attr-defined]
    # Never published: no published version to chat with.
    draft_only = make_bot(publish=False)
    error = rpc_error(
        lambda: chats.CreateChat(request(draft_only, "hi"), metadata=auth(account), timeout=10)
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND  # type: ignore[attr-defined]
    # The same validation as HTTP: no messages, a bad role, a missing user id.
    bot_id = make_bot()
    for bad in (
        chat_pb2.ChatRequest(bot_id=bot_id, user_id="u"),
        chat_pb2.ChatRequest(
            bot_id=bot_id,
            user_id="u",
            additional_messages=[types_pb2.InputMessage(role="system", content="x")],
        ),
        chat_pb2.ChatRequest(
            bot_id=bot_id, additional_messages=[types_pb2.InputMessage(role="user", content="x")]
        ),
    ):
        error = rpc_error(lambda bad=bad: chats.CreateChat(bad, metadata=auth(account), timeout=10))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error  # type: ignore[attr-defined]


def test_another_accounts_conversation_is_not_found(
    chats: chat_pb2_grpc.ChatServiceStub,
    conversations: conversations_pb2_grpc.ConversationServiceStub,
    make_account: Callable[..., Account],
    account: Account,
    make_bot: Callable[..., int],
) -> None:
    bot_id = make_bot()
    mine = chats.CreateChat(request(bot_id, "mine"), metadata=auth(account), timeout=60)
    conversation_id = mine.chat.conversation_id
    listed = conversations.ListMessages(
        conversations_pb2.ListMessagesRequest(conversation_id=conversation_id),
        metadata=auth(account),
    )
    assert {m.role for m in listed.messages} == {"user", "assistant"}
    assert all(m.conversation_id == conversation_id for m in listed.messages)

    other = make_account()
    error = rpc_error(
        lambda: conversations.ListMessages(
            conversations_pb2.ListMessagesRequest(conversation_id=conversation_id),
            metadata=auth(other),
        )
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND  # type: ignore[attr-defined]
    error = rpc_error(
        lambda: chats.CreateChat(
            request(bot_id, "intrude", conversation_id=conversation_id),
            metadata=auth(other),
            timeout=10,
        )
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND  # type: ignore[attr-defined]
    error = rpc_error(
        lambda: chats.RetrieveChat(
            chat_pb2.ChatRef(conversation_id=conversation_id, chat_id=mine.chat.id),
            metadata=auth(other),
        )
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND  # type: ignore[attr-defined]


def test_bots_and_conversations(
    bots: bots_pb2_grpc.BotServiceStub,
    conversations: conversations_pb2_grpc.ConversationServiceStub,
    account: Account,
    make_bot: Callable[..., int],
) -> None:
    bot_id = make_bot()
    bot = bots.GetBot(bots_pb2.GetBotRequest(bot_id=bot_id), metadata=auth(account))
    assert (bot.bot_id, bot.version, bot.model_id) == (bot_id, 1, "mock-echo")
    draft = bots.GetBot(bots_pb2.GetBotRequest(bot_id=bot_id, draft=True), metadata=auth(account))
    assert draft.version == 0 and draft.name == "grpc bot"
    listed = bots.ListBots(bots_pb2.ListBotsRequest(), metadata=auth(account))
    assert bot_id in [b.bot_id for b in listed.bots] and listed.total >= 1

    created = conversations.CreateConversation(
        conversations_pb2.CreateConversationRequest(
            bot_id=bot_id,
            meta_data={"from": "grpc"},
            messages=[types_pb2.InputMessage(role="user", content="remember this")],
        ),
        metadata=auth(account),
    )
    assert created.id > 0 and created.meta_data == {"from": "grpc"}
    page = conversations.ListMessages(
        conversations_pb2.ListMessagesRequest(conversation_id=created.id), metadata=auth(account)
    )
    assert [m.content for m in page.messages] == ["remember this"]
    assert not page.has_more


def test_rate_limit_is_shared_with_http(
    grpc_edge: GrpcEdge,
    bots: bots_pb2_grpc.BotServiceStub,
    make_account: Callable[..., Account],
) -> None:
    """30 bot-info calls split across HTTP and gRPC use up one limit."""
    account = make_account()
    with httpx.Client(base_url=grpc_edge.url, headers=account.headers, timeout=30) as http:
        for n in range(BOT_INFO_LIMIT):
            if n % 2:
                bots.ListBots(bots_pb2.ListBotsRequest(), metadata=auth(account))
            else:
                assert http.get("/v1/bots").status_code == 200
        refused = http.get("/v1/bots")
        assert refused.status_code == 429
        assert refused.json() == {"code": 429, "msg": "too many requests", "data": None}
    error = rpc_error(lambda: bots.ListBots(bots_pb2.ListBotsRequest(), metadata=auth(account)))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED  # type: ignore[attr-defined]
    assert int(dict(error.trailing_metadata())["retry-after"]) > 0  # type: ignore[attr-defined]


def test_a_revoked_key_is_refused_within_a_second(
    bots: bots_pb2_grpc.BotServiceStub, registry_addr: str, make_account: Callable[..., Account]
) -> None:
    account = make_account()
    for _ in range(3):  # cached by the edge now (TTL 30 s)
        bots.ListBots(bots_pb2.ListBotsRequest(), metadata=auth(account))
    with service_channel(registry_addr) as channel:
        AccountsStub(channel).RevokeApiKey(
            pb.ApiKeyRef(user_id=account.user_id, key_id=account.key_id)
        )
    deadline = time.monotonic() + 1.0
    code = grpc.StatusCode.OK
    while time.monotonic() < deadline:
        try:
            bots.ListBots(bots_pb2.ListBotsRequest(), metadata=auth(account), timeout=1)
        except grpc.RpcError as error:
            code = error.code()  # type: ignore[attr-defined]
            break
        time.sleep(0.02)
    assert code == grpc.StatusCode.UNAUTHENTICATED


def test_health_and_reflection_are_served(channel: grpc.Channel) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    health: Any = health_pb2_grpc.HealthStub(channel)
    for service in ("", "cozeplus.api.v1.ChatService"):
        reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    reflection: Any = reflection_pb2_grpc.ServerReflectionStub(channel)
    replies = list(
        reflection.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
        )
    )
    names = {s.name for s in replies[0].list_services_response.service}
    assert {
        "cozeplus.api.v1.ChatService",
        "cozeplus.api.v1.BotService",
        "cozeplus.api.v1.ConversationService",
        "grpc.health.v1.Health",
    } <= names
