"""Conversation and message bodies of the official /v1 API (what cozepy sends and reads).

Ids are JSON strings in every response. Message payloads are `cozeplus.chat_wire` Message
objects (documented by `MessageView`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from services.edge.schemas.chat import (
    ChatMessageIn,
    ContentType,
    MessageView,
    MetaData,
    OptionalId,
)
from services.edge.schemas.common import RequestModel, ResponseModel

MAX_NAME_CHARS = 100
MAX_CONVERSATION_MESSAGES = 1000
MAX_PAGE_SIZE = 50


class CreateConversationBody(RequestModel):
    bot_id: OptionalId = Field(default=None, description="The bot the conversation is with.")
    name: str = Field(default="", max_length=MAX_NAME_CHARS)
    meta_data: MetaData = Field(default_factory=dict)
    messages: list[ChatMessageIn] = Field(
        default_factory=list,
        max_length=MAX_CONVERSATION_MESSAGES,
        description="Messages the conversation starts with.",
    )


class UpdateConversationBody(RequestModel):
    name: str | None = Field(default=None, max_length=MAX_NAME_CHARS)
    meta_data: MetaData | None = None


class CreateMessageBody(ChatMessageIn):
    """One message added to a conversation, validated like a chat's input."""


class ListMessagesBody(RequestModel):
    order: Literal["asc", "desc", "ASC", "DESC"] = Field(
        default="desc", description="desc: newest first."
    )
    chat_id: OptionalId = Field(default=None, description="Only this chat's messages.")
    before_id: OptionalId = Field(
        default=None, description="The page before this message (pass `first_id`)."
    )
    after_id: OptionalId = Field(
        default=None, description="The page after this message (pass `last_id`)."
    )
    limit: int = Field(default=50, ge=1, le=MAX_PAGE_SIZE)


class ModifyMessageBody(RequestModel):
    content: str | None = None
    content_type: ContentType | None = None
    meta_data: MetaData | None = None


# ------------------------------------------------------------------------- views


class ConversationView(ResponseModel):
    id: str
    name: str
    bot_id: str = Field(description='"0" when created without a bot.')
    created_at: int
    updated_at: int
    meta_data: dict[str, str]
    last_section_id: str = Field(description="Chats only see history from this section on.")


class ConversationList(ResponseModel):
    has_more: bool
    conversations: list[ConversationView]


class SectionView(ResponseModel):
    id: str = Field(description="The new section.")
    conversation_id: str


class MessageList(ResponseModel):
    """The official message list: the cursor beside `data`, not inside it."""

    code: int = 0
    msg: str = "success"
    data: list[MessageView]
    first_id: str = Field(description='The first message of the page ("" when empty).')
    last_id: str = Field(description='The last message of the page ("" when empty).')
    has_more: bool


class ModifiedMessage(ResponseModel):
    """The official modify answer carries the message under `message` (cozepy reads it
    there); `data` holds it too, as on every other route."""

    code: int = 0
    msg: str = "success"
    data: MessageView
    message: MessageView
