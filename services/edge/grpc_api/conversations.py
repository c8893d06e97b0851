"""ConversationService: create a conversation, list its messages (the registry's, as the
HTTP routes show them)."""

from __future__ import annotations

from typing import Any

import orjson

from cozeplus.api.v1 import conversations_pb2 as api
from cozeplus.api.v1 import conversations_pb2_grpc as api_grpc
from cozeplus.chat_wire import json_object, message_object
from cozeplus.rpc.v1 import conversations_pb2 as cpb
from services.edge.grpc_api.events import typed_message
from services.edge.grpc_api.interceptor import caller
from services.edge.grpc_api.requests import message_fields, validated
from services.edge.runtime import EdgeRuntime
from services.edge.schemas.conversations import CreateConversationBody, ListMessagesBody


def _meta_json(meta_data: dict[str, str]) -> str:
    return orjson.dumps(meta_data).decode() if meta_data else ""


class ConversationServicer(api_grpc.ConversationServiceServicer):
    def __init__(self, runtime: EdgeRuntime) -> None:
        self._runtime = runtime

    async def CreateConversation(
        self, request: api.CreateConversationRequest, context: Any
    ) -> api.Conversation:
        runtime = self._runtime
        body = validated(
            CreateConversationBody,
            {
                "bot_id": request.bot_id or None,
                "meta_data": dict(request.meta_data),
                "messages": message_fields(request.messages),
            },
        )
        runtime.limits.meta_data("meta_data", body.meta_data)
        runtime.limits.messages("messages", body.messages)
        conversation = await runtime.registry.conversations.CreateConversation(
            cpb.CreateConversationRequest(
                owner_id=caller().user_id,
                bot_id=body.bot_id or 0,
                meta_data_json=_meta_json(body.meta_data),
                messages=[
                    cpb.NewMessage(
                        role=m.role,
                        type=m.type,
                        content=m.content,
                        content_type=m.content_type,
                        meta_data_json=_meta_json(m.meta_data),
                    )
                    for m in body.messages
                ],
            )
        )
        return api.Conversation(
            id=conversation.id,
            created_at=conversation.created_at,
            meta_data={k: str(v) for k, v in json_object(conversation.meta_data_json).items()},
            last_section_id=conversation.last_section_id,
        )

    async def ListMessages(
        self, request: api.ListMessagesRequest, context: Any
    ) -> api.ListMessagesResponse:
        fields: dict[str, Any] = {
            "order": request.order or "desc",
            "chat_id": request.chat_id or None,
            "before_id": request.before_id or None,
            "after_id": request.after_id or None,
        }
        if request.limit:
            fields["limit"] = request.limit
        page = validated(ListMessagesBody, fields)
        reply = await self._runtime.registry.conversations.ListMessages(
            cpb.ListMessagesRequest(
                owner_id=caller().user_id,
                conversation_id=request.conversation_id,
                order=page.order.lower(),
                before_id=page.before_id or 0,
                after_id=page.after_id or 0,
                limit=page.limit,
                chat_id=page.chat_id or 0,
            )
        )
        return api.ListMessagesResponse(
            # The same objects /v1/conversation/message/list shows, typed.
            messages=[typed_message(message_object(m)) for m in reply.messages],
            first_id=reply.first_id,
            last_id=reply.last_id,
            has_more=reply.has_more,
        )
