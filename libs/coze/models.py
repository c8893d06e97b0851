"""Typed objects the SDK returns and accepts.

Every id is a `str`, whatever the route sent: `/api/*` routes send JSON numbers (as the product
document shows), `/v1/*` and `/v3/*` send strings (as the official SDKs require), and one type per
field keeps user code from comparing `123 == "123"`. Models keep fields they do not declare
(`extra="allow"`), so a newer server's additions stay reachable as attributes.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class CozeModel(BaseModel):
    model_config = ConfigDict(
        extra="allow",
        # Ids arrive as numbers on /api routes and as strings elsewhere; always expose strings.
        coerce_numbers_to_str=True,
        # Bot fields are called `model` and `model_info`; pydantic reserves `model_` otherwise.
        protected_namespaces=(),
    )


# ----------------------------------------------------------------------------------- chats


class Usage(CozeModel):
    """Tokens of one chat: the official names (`token_count`, `input_count`, `output_count`) and
    the product document's (`prompt_tokens`, `completion_tokens`, `total_tokens`)."""

    token_count: int = 0
    input_count: int = 0
    output_count: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class ChatError(CozeModel):
    code: int = 0
    msg: str = ""


class Chat(CozeModel):
    """One run of a bot in a conversation (`id` is the chat id)."""

    id: str
    conversation_id: str
    bot_id: str = ""
    section_id: str = ""
    # created, in_progress, completed, failed, requires_action or canceled.
    status: str
    created_at: int = 0
    completed_at: int = 0
    failed_at: int = 0
    meta_data: dict[str, Any] = Field(default_factory=dict)
    last_error: ChatError = Field(default_factory=ChatError)
    usage: Usage = Field(default_factory=Usage)

    @property
    def chat_id(self) -> str:
        return self.id


class ChatAnswer(Chat):
    """What a non-streaming chat returns: the Chat merged with the bot's answer."""

    content: str = ""
    role: str = "assistant"
    type: str = "answer"
    content_type: str = "text"


class Message(CozeModel):
    id: str
    conversation_id: str
    bot_id: str = ""
    chat_id: str = ""
    section_id: str = ""
    role: str
    type: str = ""
    content: str
    content_type: str = "text"
    reasoning_content: str = ""
    meta_data: dict[str, Any] = Field(default_factory=dict)
    created_at: int = 0
    updated_at: int = 0


class InputMessage(CozeModel):
    """A message sent to the server: in `chat(additional_messages=...)` or
    `conversations.create(messages=...)`. Plain dicts with the same keys work too."""

    role: Literal["user", "assistant"]
    content: str
    content_type: str = "text"
    type: str | None = None
    meta_data: dict[str, Any] | None = None

    @classmethod
    def user(cls, text: str) -> InputMessage:
        return cls(role="user", content=text, content_type="text")

    @classmethod
    def assistant(cls, text: str) -> InputMessage:
        return cls(role="assistant", content=text, content_type="text", type="answer")


# ---------------------------------------------------------------------------- conversations


class ConversationInfo(CozeModel):
    id: str
    created_at: int = 0
    updated_at: int = 0
    meta_data: dict[str, Any] = Field(default_factory=dict)
    last_section_id: str = ""
    name: str | None = None
    bot_id: str | None = None


class Section(CozeModel):
    """What clearing a conversation returns: the new context section."""

    id: str
    conversation_id: str


# ------------------------------------------------------------------------------------- bots


class Bot(CozeModel):
    """A bot as GET /v1/bots/{id} and GET /v1/bot/get_online_info return it. The official Bot
    fields (`prompt_info`, `model_info`, `onboarding_info`, ...) stay available as extras."""

    bot_id: str
    name: str
    description: str = ""
    icon_url: str = ""
    version: str = "0"
    status: str = ""
    model: str = ""
    prompt: str = ""
    tools: list[dict[str, Any]] = Field(default_factory=list)
    created_at: int = 0
    updated_at: int = 0
    published_at: int = 0


class BotDraft(CozeModel):
    """A draft bot just created (POST /api/draftbot/create)."""

    bot_id: str
    name: str
    description: str = ""
    icon_url: str = ""
    status: str = "draft"
    created_at: int = 0
    updated_at: int = 0


class BotDisplayInfo(CozeModel):
    """A draft's display info after an update (POST /api/draftbot/update_display_info)."""

    bot_id: str
    name: str
    description: str = ""
    updated_at: int = 0


class BotPublished(CozeModel):
    """A new published version (POST /api/draftbot/publish)."""

    bot_id: str
    version: int
    status: str = "online"
    published_at: int = 0


# ----------------------------------------------------------------------------- stream events


class ChatCreatedEvent(CozeModel):
    """The chat was accepted: its ids are known (e.g. to cancel it while it streams)."""

    type: Literal["created"] = "created"
    conversation_id: str
    chat_id: str
    chat: Chat


class MessageEvent(CozeModel):
    """A piece of the answer: `delta` is the text increment."""

    type: Literal["message"] = "message"
    delta: str
    message_id: str = ""
    conversation_id: str = ""
    chat_id: str = ""
    role: str = "assistant"
    content_type: str = "text"
    reasoning_delta: str = ""


class MessageCompletedEvent(CozeModel):
    """The answer message is complete: `content` is its full text."""

    type: Literal["message_completed"] = "message_completed"
    content: str
    message: Message


class DoneEvent(CozeModel):
    """The chat ended without error (`status` is `completed`, or `canceled` after a cancel);
    always the last event of a successful stream."""

    type: Literal["done"] = "done"
    conversation_id: str
    chat_id: str
    status: str
    usage: Usage
    # The whole answer (the partial one when canceled), so callers need not join the deltas.
    content: str = ""
    chat: Chat


class ErrorEvent(CozeModel):
    """The chat failed; always the last event of a failed stream, and the only error event."""

    type: Literal["error"] = "error"
    code: int
    msg: str
    conversation_id: str | None = None
    chat_id: str | None = None


ChatEvent = Annotated[
    ChatCreatedEvent | MessageEvent | MessageCompletedEvent | DoneEvent | ErrorEvent,
    Field(discriminator="type"),
]
