"""An edge on a registry of the previous release (no OpenChat, during a rolling upgrade)
records chats with CreateChat and queues them without a history window."""

from __future__ import annotations

from typing import Any

import grpc

from cozeplus.chat_protocol import InputMessage
from cozeplus.rpc.v1 import conversations_pb2 as cpb
from services.edge.core.chats import ChatCore, ChatInput, ChatTarget, ChatTimings
from tests.runner.fakes import FakeRpcError


class PreviousRegistry:
    def __init__(self) -> None:
        self.requests: list[cpb.CreateChatRequest] = []

    async def OpenChat(self, request: cpb.CreateChatRequest) -> cpb.CreatedChat:
        raise FakeRpcError(grpc.StatusCode.UNIMPLEMENTED, "Method not found!")

    async def CreateChat(self, request: cpb.CreateChatRequest) -> cpb.ChatRun:
        self.requests.append(request)
        return cpb.ChatRun(id=request.chat_id, conversation_id=request.conversation_id)


class CurrentRegistry:
    async def OpenChat(self, request: cpb.CreateChatRequest) -> cpb.CreatedChat:
        run = cpb.ChatRun(id=request.chat_id, conversation_id=request.conversation_id)
        return cpb.CreatedChat(run=run, history=[cpb.Message(content="earlier")])


def _core(conversations: Any) -> ChatCore:
    return ChatCore(
        bus=None,  # type: ignore[arg-type]
        bots=None,  # type: ignore[arg-type]
        conversations=conversations,
        timings=ChatTimings(queue_timeout_s=1, runner_lost_s=1, cancel_wait_s=1),
    )


TARGET = ChatTarget(bot_id=3, bot_version=1, model_id="m", history_rounds=5)
CHAT = ChatInput(user_id="u", conversation_id=9, messages=[InputMessage(role="user", content="q")])


async def test_a_previous_release_registry_gets_create_chat_and_no_history_is_sent() -> None:
    registry = PreviousRegistry()
    run, history = await _core(registry)._record(41, 1, TARGET, CHAT)
    assert (run.id, run.conversation_id) == (41, 9)
    assert history is None, "unknown, not empty: the runner must read it from StartRun"
    assert registry.requests[0].history_rounds == 5


async def test_a_current_registry_gives_the_history_window() -> None:
    run, history = await _core(CurrentRegistry())._record(41, 1, TARGET, CHAT)
    assert run.id == 41
    assert history is not None and [m.content for m in history] == ["earlier"]
