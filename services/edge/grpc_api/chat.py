"""ChatService: the same runs and events as /v3/chat, through the same core."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from cozeplus.api.v1 import chat_pb2 as api
from cozeplus.api.v1 import chat_pb2_grpc as api_grpc
from cozeplus.api.v1 import types_pb2 as types
from services.edge.chat_requests import chat_input
from services.edge.core.chats import answer_data
from services.edge.core.session import ChatSession
from services.edge.grpc_api.events import typed_chat, typed_event
from services.edge.grpc_api.interceptor import caller
from services.edge.grpc_api.requests import chat_fields, validated
from services.edge.runtime import EdgeRuntime
from services.edge.schemas.chat import ChatBody


class ChatServicer(api_grpc.ChatServiceServicer):
    def __init__(self, runtime: EdgeRuntime) -> None:
        self._runtime = runtime

    async def _start(self, request: api.ChatRequest) -> ChatSession:
        runtime, owner_id = self._runtime, caller().user_id
        body = validated(ChatBody, chat_fields(request))
        runtime.limits.chat(body, None)
        chat = chat_input(body, None, body.user_id, body.conversation_id)
        target = await runtime.chats.published_target(owner_id, body.bot_id)
        return await runtime.chats.start(owner_id, target, chat)

    async def StreamChat(
        self, request: api.ChatRequest, context: Any
    ) -> AsyncIterator[api.ChatEvent]:
        # A client that cancels or passes its deadline cancels this generator: the session
        # stops listening and the run goes on, as for an HTTP client that disconnects.
        session = await self._start(request)
        async with contextlib.aclosing(session.events()) as events:
            async for event in events:
                yield typed_event(event)

    async def CreateChat(self, request: api.ChatRequest, context: Any) -> api.ChatAnswer:
        session = await self._start(request)
        data = answer_data(await session.outcome())
        return api.ChatAnswer(
            chat=typed_chat(data),
            content=data["content"],
            role=data["role"],
            type=data["type"],
            content_type=data["content_type"],
        )

    async def CancelChat(self, request: api.ChatRef, context: Any) -> types.Chat:
        chat = await self._runtime.chats.cancel(
            caller().user_id, request.conversation_id, request.chat_id
        )
        return typed_chat(chat)

    async def RetrieveChat(self, request: api.ChatRef, context: Any) -> types.Chat:
        chat = await self._runtime.chats.retrieve(
            caller().user_id, request.conversation_id, request.chat_id
        )
        return typed_chat(chat)

    async def SubmitToolOutputs(
        self, request: api.SubmitToolOutputsRequest, context: Any
    ) -> AsyncIterator[api.ChatEvent]:
        session = await self._runtime.chats.submit_tool_outputs(
            caller().user_id,
            request.conversation_id,
            request.chat_id,
            [(o.tool_call_id, o.output) for o in request.tool_outputs],
        )
        async with contextlib.aclosing(session.events()) as events:
            async for event in events:
                yield typed_event(event)
