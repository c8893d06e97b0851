"""Chat requests, as the HTTP bodies describe them (services/edge/schemas/chat.py: the gRPC
API validates its requests with the same models), turned into the core's ChatInput."""

from __future__ import annotations

from cozeplus.chat_protocol import InputMessage
from services.edge.core.chats import NO_MESSAGES_MSG, ChatInput
from services.edge.core.errors import InvalidInput
from services.edge.schemas.chat import ChatMessageIn, ChatOptions


def chat_input(
    body: ChatOptions, query: str | None, user_id: str, conversation_id: int | None
) -> ChatInput:
    """The run's input: the additional messages, then `query` as one more user message."""
    messages: list[ChatMessageIn] = list(body.additional_messages)
    if query is not None and query.strip():
        messages.append(ChatMessageIn(role="user", content=query))
    if not messages:  # before the bot is looked up, so this is a 400 whatever the bot
        raise InvalidInput(NO_MESSAGES_MSG)
    return ChatInput(
        user_id=user_id,
        conversation_id=conversation_id,
        messages=[
            InputMessage(
                role=m.role,
                type=m.type,
                content=m.content,
                content_type=m.content_type,
                meta_data=m.meta_data,
            )
            for m in messages
        ],
        custom_variables=body.custom_variables,
        meta_data=body.meta_data,
        extra_params=body.extra_params,
        parameters=body.parameters,
        auto_save_history=body.auto_save_history,
    )
