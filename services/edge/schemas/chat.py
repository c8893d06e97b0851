"""Chat and message bodies (wire contract section 3).

Requests take both families' spellings: the official `conversation_id` query parameter and
the product document's `ConversationID` body field, `additional_messages` and the `query`
shorthand, and the product document's `type: "image"` message with a URL as content.

The response views document the shapes for OpenAPI only. The payloads themselves are built by
`cozeplus.chat_wire` (the runners build their stream events with the same functions), so a
view must list exactly the keys its builder emits; tests/edge/test_chat_schemas.py holds
them to it.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import orjson
from pydantic import (
    AfterValidator,
    AliasChoices,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticCustomError

from cozeplus.message_content import ContentError, parse_content
from cozeplus.vocabulary import ChatStatus, MessageRole, MessageType
from services.edge.schemas.common import (
    MAX_ID,
    Id,
    NonEmptyStr,
    RequestModel,
    ResponseModel,
    parse_id,
)

MAX_USER_ID_CHARS = 255
DEFAULT_TYPE_BY_ROLE = {
    MessageRole.USER: MessageType.QUESTION,
    MessageRole.ASSISTANT: MessageType.ANSWER,
}
# Message types as Coze names them: lower-case words (question, answer, function_call, ...).
_MESSAGE_TYPE = re.compile(r"[a-z][a-z_]{0,31}", re.ASCII)

ContentType = Literal["text", "image", "file", "object_string", "card"]


# ----------------------------------------------------------------------- field types


def parse_optional_id(value: object) -> int | None:
    """Like `parse_id`, but absent, empty and 0 mean "none" (a new conversation, no cursor):
    clients send `""` or `"0"` for an id they do not have yet."""
    if value is None or value in ("", "0", 0):
        return None
    return parse_id(value)


OptionalId = Annotated[
    int | None,
    PlainValidator(parse_optional_id),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": 0, "maximum": MAX_ID},
                {"type": "string", "pattern": "^[0-9]{0,19}$"},
                {"type": "null"},
            ],
            "description": "64-bit id as a number or a numeric string; empty or 0: none",
        }
    ),
]


# Counts and lengths of contents, meta data and custom variables are configurable
# (EdgeSettings.max_*), so they are checked by services/edge/limits.py once the request is
# parsed, not here. The OpenAPI document states the defaults (json_schema_extra documents
# without validating), so that clients and the schema-driven fuzzer (tests/fuzz) know them.
MetaData = Annotated[
    dict[str, str],
    Field(
        description="String keys and values: by default at most 16 pairs, keys up to 64 and "
        "values up to 512 characters.",
        json_schema_extra={
            "maxProperties": 16,
            "propertyNames": {"minLength": 1, "maxLength": 64},
            "additionalProperties": {"type": "string", "maxLength": 512},
        },
    ),
]


def _passable_json(value: dict[str, Any]) -> dict[str, Any]:
    # Passed on to the runners as JSON (orjson): refuse here what could not be encoded there,
    # such as integers beyond 64 bits or nesting deeper than 255, instead of failing the chat.
    try:
        orjson.dumps(value)
    except orjson.JSONEncodeError as err:
        raise PydanticCustomError(
            "json_value", "cannot be passed on to the model runner: {error}", {"error": str(err)}
        ) from None
    return value


PassableJson = Annotated[dict[str, Any], AfterValidator(_passable_json)]


def _number_as_string(value: object) -> object:
    # End-user ids are strings in the API, but integrations often hold them as numbers.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


UserId = Annotated[
    NonEmptyStr,
    BeforeValidator(_number_as_string),
    Field(max_length=MAX_USER_ID_CHARS, description="The end user; conversations are per user."),
]


# -------------------------------------------------------------------------- requests


class ChatMessageIn(RequestModel):
    """One input message. `type: "image"`/`"file"` with a URL as content (the product
    document's multimodal form) is taken as a question of that content type."""

    role: Literal["user", "assistant"]
    type: str = Field(
        default="",
        description="question (user) or answer (assistant) when absent or empty.",
        json_schema_extra={"pattern": "^([a-z][a-z_]{0,31})?$"},
    )
    content: str = Field(
        description="Not blank; by default at most 100000 characters.",
        json_schema_extra={"minLength": 1, "maxLength": 100_000, "pattern": "\\S"},
    )
    content_type: ContentType = "text"
    meta_data: MetaData = Field(default_factory=dict)

    @model_validator(mode="after")
    def _normalize(self) -> ChatMessageIn:
        if self.type == "image" or self.type == "file":
            self.content_type = "image" if self.type == "image" else "file"
            self.type = ""
        if not self.type:
            self.type = DEFAULT_TYPE_BY_ROLE[MessageRole(self.role)]
        elif not _MESSAGE_TYPE.fullmatch(self.type):
            raise PydanticCustomError(
                "message_type", "type must be a lower-case word like question or answer"
            )
        if not self.content.strip():
            raise PydanticCustomError("content", "content must not be empty")
        try:
            # The runner parses the content the same way: refuse here what it could not.
            parse_content(self.content, self.content_type, self.type)
        except ContentError as err:
            raise PydanticCustomError("content", str(err)) from None
        return self


class ChatOptions(RequestModel):
    """What /v3/chat and /api/conversation/chat share."""

    conversation_id: OptionalId = Field(
        default=None,
        validation_alias=AliasChoices("conversation_id", "ConversationID"),
        description="Also `ConversationID` (product document). Absent: a new conversation. "
        "/v3/chat takes it from the query string first (official API).",
    )
    stream: bool = Field(default=False, description="true: an SSE stream of the run's events.")
    additional_messages: list[ChatMessageIn] = Field(
        default_factory=list,
        description="By default at most 100 messages, the `query` shorthand included.",
    )
    custom_variables: dict[str, str] = Field(
        default_factory=dict,
        description="Values for `{{name}}` variables in the bot's prompt; by default at most "
        "64 of them and 16 KiB in all.",
        json_schema_extra={"maxProperties": 64},
    )
    meta_data: MetaData = Field(default_factory=dict)
    extra_params: PassableJson = Field(default_factory=dict)
    parameters: PassableJson = Field(default_factory=dict)
    auto_save_history: bool = Field(
        default=True, description="false: neither the input nor the answer is stored."
    )


class ChatBody(ChatOptions):
    # What the run needs: at least one message, or a query that is not blank.
    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {
                    "required": ["additional_messages"],
                    "properties": {"additional_messages": {"minItems": 1}},
                },
                {
                    "required": ["query"],
                    "properties": {"query": {"type": "string", "pattern": "\\S"}},
                },
            ]
        }
    )

    bot_id: Id
    user_id: UserId
    query: str | None = Field(
        default=None,
        description="Shorthand for one more user text message, after additional_messages.",
    )


class InternalChatBody(ChatOptions):
    """POST /api/conversation/chat: runs the bot's draft."""

    agent_id: Id = Field(description="The bot id.")
    query: NonEmptyStr
    user_id: UserId | None = Field(
        default=None, description="Absent: the caller's account id, as a string."
    )


class ToolOutputIn(RequestModel):
    tool_call_id: NonEmptyStr = Field(max_length=128, description="A call of required_action.")
    output: str = Field(max_length=100_000, description="What the function returned, as text.")


class SubmitToolOutputsBody(RequestModel):
    tool_outputs: list[ToolOutputIn] = Field(
        min_length=1, max_length=64, description="One output for every pending tool call."
    )
    stream: bool = Field(
        default=False,
        description="true: the continued run's events from conversation.chat.in_progress on.",
    )


class CancelChatBody(RequestModel):
    conversation_id: Id
    chat_id: OptionalId = Field(
        default=None, description="Absent: the conversation's running (or queued) chat."
    )


# ------------------------------------------------------------------------- views


class UsageView(ResponseModel):
    token_count: int
    output_count: int
    input_count: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatErrorView(ResponseModel):
    code: int = Field(description="0 unless the chat failed.")
    msg: str


class ChatView(ResponseModel):
    """The official Chat object; every id a string."""

    id: str = Field(description="The chat id.")
    conversation_id: str
    bot_id: str
    section_id: str
    status: ChatStatus
    created_at: int
    completed_at: int
    failed_at: int
    meta_data: dict[str, str]
    last_error: ChatErrorView
    usage: UsageView
    required_action: RequiredActionView | None = Field(
        default=None, description="Only while `status` is `requires_action`."
    )


class ToolCallFunctionView(ResponseModel):
    name: str
    arguments: str = Field(description="JSON text.")


class ToolCallView(ResponseModel):
    id: str
    type: Literal["function"] = "function"
    function: ToolCallFunctionView


class SubmitToolOutputsView(ResponseModel):
    tool_calls: list[ToolCallView]


class RequiredActionView(ResponseModel):
    type: Literal["submit_tool_outputs"] = "submit_tool_outputs"
    submit_tool_outputs: SubmitToolOutputsView


class ChatAnswerView(ChatView):
    """A finished chat merged with its answer (non-streaming /v3/chat)."""

    content: str = Field(description="The answer; empty unless the chat completed.")
    role: Literal["assistant"] = "assistant"
    type: Literal[MessageType.ANSWER] = MessageType.ANSWER
    content_type: str = "text"


class ApiChatAnswerView(ResponseModel):
    """ChatAnswerView with ids as JSON numbers, as everywhere under /api."""

    id: int
    conversation_id: int
    bot_id: int
    section_id: int
    status: str
    created_at: int
    completed_at: int
    failed_at: int
    meta_data: dict[str, str]
    last_error: ChatErrorView
    usage: UsageView
    required_action: RequiredActionView | None = None
    content: str
    role: Literal["assistant"] = "assistant"
    type: Literal[MessageType.ANSWER] = MessageType.ANSWER
    content_type: str = "text"


class MessageView(ResponseModel):
    """The official Message object; every id a string."""

    id: str
    conversation_id: str
    section_id: str
    bot_id: str
    chat_id: str = Field(description='"0" for messages created outside a chat.')
    role: Literal["user", "assistant"]
    type: str
    content: str
    content_type: str
    reasoning_content: str
    meta_data: dict[str, str]
    created_at: int
    updated_at: int


STREAM_DESCRIPTION = (
    "With `stream: true`: `text/event-stream`, each event exactly `event: <name>` and "
    "`data: <one line of JSON>` lines and a blank line, ending with `conversation.stream.done` "
    "and `done`. Otherwise the envelope below."
)
STREAM_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": STREAM_DESCRIPTION,
        "content": {
            "text/event-stream": {
                # Before OpenAPI 3.2, the schema of an event stream describes one event.
                "schema": {
                    "type": "object",
                    "required": ["event", "data"],
                    "properties": {
                        "event": {"type": "string", "examples": ["conversation.chat.created"]},
                        "data": {
                            "type": "string",
                            "contentMediaType": "application/json",
                            "description": "One line of JSON.",
                        },
                    },
                    "additionalProperties": False,
                },
                "example": "event: conversation.chat.created\ndata: {...}\n\n",
            }
        },
    }
}
