"""ChatService.SubmitToolOutputs against real processes: a chat paused in requires_action over
gRPC is resumed by its tool outputs, streamed, through the same core as
`POST /v3/chat/submit_tool_outputs`; wrong submissions are status codes and change nothing.

The system and the scripted tool bots are tests/chat/test_tools.py's (its own NATS, registry,
an edge serving gRPC too, a runner, real local plugins, the mock model's scripts).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import grpc
import httpx
import orjson
import pytest

from cozeplus.api.v1 import chat_pb2, chat_pb2_grpc, types_pb2
from tests.chat.test_tools import (  # noqa: F401 (the module's fixtures, used by name)
    ANSWER_WITH_OUTPUT,
    LOCATION_CALL,
    System,
    http,
    make_tool_bot,
    system,
    token,
)

PAUSED = "conversation.chat.requires_action"


@pytest.fixture(scope="module")
def tool_chats(system: System) -> Iterator[chat_pb2_grpc.ChatServiceStub]:  # noqa: F811
    with grpc.insecure_channel(system.grpc_addr) as channel:
        grpc.channel_ready_future(channel).result(timeout=10)
        yield chat_pb2_grpc.ChatServiceStub(channel)


@pytest.fixture(scope="module")
def metadata(token: str) -> list[tuple[str, str]]:  # noqa: F811
    return [("authorization", f"Bearer {token}")]


def ask(bot_id: str, text: str) -> chat_pb2.ChatRequest:
    return chat_pb2.ChatRequest(
        bot_id=int(bot_id),
        user_id="grpc-tools",
        additional_messages=[types_pb2.InputMessage(role="user", content=text)],
    )


def outputs(chat: types_pb2.Chat, *pairs: tuple[str, str]) -> chat_pb2.SubmitToolOutputsRequest:
    return chat_pb2.SubmitToolOutputsRequest(
        conversation_id=chat.conversation_id,
        chat_id=chat.id,
        tool_outputs=[chat_pb2.ToolOutput(tool_call_id=i, output=o) for i, o in pairs],
    )


def rpc_error(call: Callable[[], Any]) -> Any:
    with pytest.raises(grpc.RpcError) as raised:
        call()
    return raised.value


def test_a_streamed_chat_pauses_and_streamed_tool_outputs_resume_it(
    tool_chats: chat_pb2_grpc.ChatServiceStub,
    metadata: list[tuple[str, str]],
    make_tool_bot: Callable[..., tuple[str, str]],  # noqa: F811
    http: httpx.Client,  # noqa: F811
) -> None:
    bot_id, _ = make_tool_bot(LOCATION_CALL + ANSWER_WITH_OUTPUT)

    events = list(tool_chats.StreamChat(ask(bot_id, "where am I?"), metadata=metadata, timeout=60))

    names = [e.event for e in events]
    assert names[:2] == ["conversation.chat.created", "conversation.chat.in_progress"]
    assert PAUSED in names and "conversation.chat.completed" not in names
    paused = events[names.index(PAUSED)].chat
    assert paused.status == "requires_action"
    assert paused.required_action.type == "submit_tool_outputs"
    (call,) = paused.required_action.submit_tool_outputs.tool_calls
    assert (call.type, call.function.name) == ("function", "get_location")
    assert orjson.loads(call.function.arguments) == {"precision": "city"}
    (function_call,) = [
        e.message
        for e in events
        if e.event == "conversation.message.completed" and e.message.type == "function_call"
    ]
    assert orjson.loads(function_call.content)["tool_call_id"] == call.id

    resumed = list(
        tool_chats.SubmitToolOutputs(
            outputs(paused, (call.id, "Paris")), metadata=metadata, timeout=60
        )
    )

    names = [e.event for e in resumed]
    assert names[0] == "conversation.chat.in_progress"
    assert PAUSED not in names
    completed = resumed[names.index("conversation.chat.completed")].chat
    assert (completed.id, completed.status) == (paused.id, "completed")
    assert not completed.HasField("required_action")
    answers = [
        e.message.content
        for e in resumed
        if e.event == "conversation.message.completed" and e.message.type == "answer"
    ]
    assert answers == ["You are in Paris."]
    # Stored like an HTTP resumption: the call, the client's output, the answer.
    listed = http.get(
        "/v3/chat/message/list",
        params={"conversation_id": paused.conversation_id, "chat_id": paused.id},
    )
    assert listed.status_code == 200, listed.text
    stored = listed.json()["data"]
    assert [m["type"] for m in stored] == ["question", "function_call", "tool_response", "answer"]
    assert stored[2]["content"] == "Paris"


def test_wrong_submissions_are_invalid_and_change_nothing(
    tool_chats: chat_pb2_grpc.ChatServiceStub,
    metadata: list[tuple[str, str]],
    make_tool_bot: Callable[..., tuple[str, str]],  # noqa: F811
) -> None:
    bot_id, _ = make_tool_bot(LOCATION_CALL + ANSWER_WITH_OUTPUT)
    answer = tool_chats.CreateChat(ask(bot_id, "where?"), metadata=metadata, timeout=60)
    paused = answer.chat
    assert paused.status == "requires_action" and answer.content == ""
    (call,) = paused.required_action.submit_tool_outputs.tool_calls

    def submit(*pairs: tuple[str, str]) -> list[chat_pb2.ChatEvent]:
        return list(tool_chats.SubmitToolOutputs(outputs(paused, *pairs), metadata=metadata))

    unknown = rpc_error(lambda: submit((call.id, "a"), ("nope", "b")))
    assert unknown.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "unknown tool_call_id: nope" in unknown.details()
    missing = rpc_error(lambda: submit(("nope", "b")))
    assert missing.code() == grpc.StatusCode.INVALID_ARGUMENT
    unauthenticated = rpc_error(
        lambda: list(tool_chats.SubmitToolOutputs(outputs(paused, (call.id, "x"))))
    )
    assert unauthenticated.code() == grpc.StatusCode.UNAUTHENTICATED

    ref = chat_pb2.ChatRef(conversation_id=paused.conversation_id, chat_id=paused.id)
    still = tool_chats.RetrieveChat(ref, metadata=metadata)
    assert still.status == "requires_action"
    assert [c.id for c in still.required_action.submit_tool_outputs.tool_calls] == [call.id]

    names = [e.event for e in submit((call.id, "Lyon"))]
    assert names[-3:] == ["conversation.chat.completed", "conversation.stream.done", "done"]
    # Answered: a second submission finds nothing waiting.
    again = rpc_error(lambda: submit((call.id, "Lyon")))
    assert again.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert tool_chats.RetrieveChat(ref, metadata=metadata).status == "completed"
