"""Conversations and their messages, in the official /v1 shapes (cozepy's
`conversations` and `conversations.messages` clients work unchanged). Ids are strings."""

from __future__ import annotations

from typing import Annotated, Literal

import orjson
from fastapi import APIRouter, Path, Query
from starlette.responses import Response

from cozeplus.chat_wire import json_object, message_object
from cozeplus.rpc.v1 import conversations_pb2 as cpb
from services.edge.deps import CurrentUser, Runtime
from services.edge.responses import envelope_json
from services.edge.schemas.chat import MessageView, OptionalId
from services.edge.schemas.common import (
    ERROR_RESPONSES,
    INT32_MAX,
    EmptyData,
    Envelope,
    Id,
    ok,
)
from services.edge.schemas.conversations import (
    MAX_PAGE_SIZE,
    ConversationList,
    ConversationView,
    CreateConversationBody,
    CreateMessageBody,
    ListMessagesBody,
    MessageList,
    ModifiedMessage,
    ModifyMessageBody,
    SectionView,
    UpdateConversationBody,
)

router = APIRouter(tags=["conversations"], responses=ERROR_RESPONSES)

ConversationIdQuery = Annotated[Id, Query()]
ConversationIdPath = Annotated[Id, Path()]
MessageIdQuery = Annotated[Id, Query()]


def _meta_json(meta_data: dict[str, str] | None) -> str:
    return orjson.dumps(meta_data).decode() if meta_data else ""


def _view(conversation: cpb.Conversation) -> ConversationView:
    return ConversationView(
        id=str(conversation.id),
        name=conversation.name,
        bot_id=str(conversation.bot_id),
        created_at=conversation.created_at,
        updated_at=conversation.updated_at,
        meta_data=json_object(conversation.meta_data_json),
        last_section_id=str(conversation.last_section_id),
    )


# ----------------------------------------------------------------- conversations


@router.post("/v1/conversation/create", summary="Create a conversation")
async def create_conversation(
    user: CurrentUser, runtime: Runtime, body: CreateConversationBody | None = None
) -> Envelope[ConversationView]:
    body = body or CreateConversationBody()
    runtime.limits.meta_data("meta_data", body.meta_data)
    runtime.limits.messages("messages", body.messages)
    conversation = await runtime.registry.conversations.CreateConversation(
        cpb.CreateConversationRequest(
            owner_id=user.user_id,
            bot_id=body.bot_id or 0,
            name=body.name,
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
    return ok(_view(conversation))


@router.get("/v1/conversation/retrieve", summary="One conversation")
async def retrieve_conversation(
    conversation_id: ConversationIdQuery, user: CurrentUser, runtime: Runtime
) -> Envelope[ConversationView]:
    conversation = await runtime.registry.conversations.GetConversation(
        cpb.ConversationRef(owner_id=user.user_id, conversation_id=conversation_id)
    )
    return ok(_view(conversation))


@router.get("/v1/conversations", summary="A bot's conversations (paged)")
async def list_conversations(
    bot_id: Annotated[Id, Query()],
    user: CurrentUser,
    runtime: Runtime,
    page_num: Annotated[int, Query(ge=1, le=INT32_MAX, description="1-based page number.")] = 1,
    page_size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 50,
    sort_order: Annotated[
        Literal["asc", "desc", "ASC", "DESC"], Query(description="desc: newest first.")
    ] = "desc",
    user_id: Annotated[
        str | None, Query(max_length=255, description="Only this end user's conversations.")
    ] = None,
) -> Envelope[ConversationList]:
    reply = await runtime.registry.conversations.ListConversations(
        cpb.ListConversationsRequest(
            owner_id=user.user_id,
            bot_id=bot_id,
            user_id=user_id or "",
            page_num=page_num,
            page_size=page_size,
            sort_order=sort_order.lower(),
        )
    )
    return ok(
        ConversationList(
            has_more=reply.has_more, conversations=[_view(c) for c in reply.conversations]
        )
    )


@router.put("/v1/conversations/{conversation_id}", summary="Rename a conversation")
async def update_conversation(
    conversation_id: ConversationIdPath,
    user: CurrentUser,
    runtime: Runtime,
    body: UpdateConversationBody | None = None,
) -> Envelope[ConversationView]:
    body = body or UpdateConversationBody()
    runtime.limits.meta_data("meta_data", body.meta_data)
    conversation = await runtime.registry.conversations.UpdateConversation(
        cpb.UpdateConversationRequest(
            owner_id=user.user_id,
            conversation_id=conversation_id,
            name=body.name,
            meta_data_json=None if body.meta_data is None else _meta_json(body.meta_data),
        )
    )
    return ok(_view(conversation))


@router.delete("/v1/conversations/{conversation_id}", summary="Delete a conversation")
async def delete_conversation(
    conversation_id: ConversationIdPath, user: CurrentUser, runtime: Runtime
) -> Envelope[EmptyData]:
    await runtime.registry.conversations.DeleteConversation(
        cpb.ConversationRef(owner_id=user.user_id, conversation_id=conversation_id)
    )
    return ok(EmptyData())


@router.post(
    "/v1/conversations/{conversation_id}/clear",
    summary="Clear a conversation's context",
    description="Starts a new section: later chats see no history from before it. The "
    "messages stay listed.",
)
async def clear_conversation(
    conversation_id: ConversationIdPath, user: CurrentUser, runtime: Runtime
) -> Envelope[SectionView]:
    section = await runtime.registry.conversations.ClearConversation(
        cpb.ConversationRef(owner_id=user.user_id, conversation_id=conversation_id)
    )
    return ok(SectionView(id=str(section.id), conversation_id=str(section.conversation_id)))


# ----------------------------------------------------------------------- messages


@router.post(
    "/v1/conversation/message/create",
    summary="Add a message to a conversation",
    response_model=Envelope[MessageView],
)
async def create_message(
    conversation_id: ConversationIdQuery,
    body: CreateMessageBody,
    user: CurrentUser,
    runtime: Runtime,
) -> Response:
    runtime.limits.message("", body)
    message = await runtime.registry.conversations.CreateMessage(
        cpb.CreateMessageRequest(
            owner_id=user.user_id,
            conversation_id=conversation_id,
            message=cpb.NewMessage(
                role=body.role,
                type=body.type,
                content=body.content,
                content_type=body.content_type,
                meta_data_json=_meta_json(body.meta_data),
            ),
        )
    )
    return envelope_json(message_object(message))


async def _list_messages(
    runtime: Runtime, owner_id: int, conversation_id: int, page: ListMessagesBody
) -> Response:
    reply = await runtime.registry.conversations.ListMessages(
        cpb.ListMessagesRequest(
            owner_id=owner_id,
            conversation_id=conversation_id,
            order=page.order.lower(),
            # Positions in the list as ordered (the next page is after_id = last_id),
            # which is how the registry reads them too.
            before_id=page.before_id or 0,
            after_id=page.after_id or 0,
            limit=page.limit,
            chat_id=page.chat_id or 0,
        )
    )
    return envelope_json(
        [message_object(m) for m in reply.messages],
        first_id=str(reply.first_id) if reply.first_id else "",
        last_id=str(reply.last_id) if reply.last_id else "",
        has_more=reply.has_more,
    )


_LIST_DESCRIPTION = (
    "`first_id`, `last_id` and `has_more` sit beside `data` (the official shape). "
    "Page on with `after_id` = `last_id`, back with `before_id` = `first_id`."
)


@router.post(
    "/v1/conversation/message/list",
    summary="A conversation's messages (paged)",
    description=_LIST_DESCRIPTION,
    response_model=MessageList,
)
async def list_messages(
    conversation_id: ConversationIdQuery,
    user: CurrentUser,
    runtime: Runtime,
    body: ListMessagesBody | None = None,
) -> Response:
    return await _list_messages(runtime, user.user_id, conversation_id, body or ListMessagesBody())


@router.get(
    "/v1/conversation/message/list",
    summary="A conversation's messages (paged; the paging fields as query parameters)",
    description=_LIST_DESCRIPTION,
    response_model=MessageList,
)
async def list_messages_get(
    conversation_id: ConversationIdQuery,
    user: CurrentUser,
    runtime: Runtime,
    order: Annotated[Literal["asc", "desc", "ASC", "DESC"], Query()] = "desc",
    chat_id: Annotated[OptionalId, Query()] = None,
    before_id: Annotated[OptionalId, Query()] = None,
    after_id: Annotated[OptionalId, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 50,
) -> Response:
    page = ListMessagesBody(
        order=order, chat_id=chat_id, before_id=before_id, after_id=after_id, limit=limit
    )
    return await _list_messages(runtime, user.user_id, conversation_id, page)


@router.get(
    "/v1/conversation/message/retrieve",
    summary="One message",
    response_model=Envelope[MessageView],
)
async def retrieve_message(
    conversation_id: ConversationIdQuery,
    message_id: MessageIdQuery,
    user: CurrentUser,
    runtime: Runtime,
) -> Response:
    message = await runtime.registry.conversations.GetMessage(
        cpb.MessageRef(
            owner_id=user.user_id, conversation_id=conversation_id, message_id=message_id
        )
    )
    return envelope_json(message_object(message))


@router.post(
    "/v1/conversation/message/modify",
    summary="Change a message's content or meta data",
    response_model=ModifiedMessage,
)
async def modify_message(
    conversation_id: ConversationIdQuery,
    message_id: MessageIdQuery,
    user: CurrentUser,
    runtime: Runtime,
    body: ModifyMessageBody | None = None,
) -> Response:
    body = body or ModifyMessageBody()
    runtime.limits.content("content", body.content)
    runtime.limits.meta_data("meta_data", body.meta_data)
    message = await runtime.registry.conversations.ModifyMessage(
        cpb.ModifyMessageRequest(
            owner_id=user.user_id,
            conversation_id=conversation_id,
            message_id=message_id,
            content=body.content,
            content_type=body.content_type,
            meta_data_json=None if body.meta_data is None else _meta_json(body.meta_data),
        )
    )
    view = message_object(message)
    return envelope_json(view, message=view)


@router.post(
    "/v1/conversation/message/delete",
    summary="Delete a message",
    description="Returns the deleted message.",
    response_model=Envelope[MessageView],
)
async def delete_message(
    conversation_id: ConversationIdQuery,
    message_id: MessageIdQuery,
    user: CurrentUser,
    runtime: Runtime,
) -> Response:
    message = await runtime.registry.conversations.DeleteMessage(
        cpb.MessageRef(
            owner_id=user.user_id, conversation_id=conversation_id, message_id=message_id
        )
    )
    return envelope_json(message_object(message))
