"""Request bodies of the OpenAI-compatible routes, in OpenAI's own field names. Responses are
built as plain dicts in services/edge/routes/openai_compat.py, OpenAI's formats exactly."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class OpenAIRequestModel(BaseModel):
    # OpenAI clients send many fields this server leaves to the bot (temperature, tools, ...):
    # ignored, as the wire contract's tolerance rule says.
    model_config = ConfigDict(extra="ignore")


class TextPart(OpenAIRequestModel):
    type: Literal["text"]
    text: str


class ImageUrl(OpenAIRequestModel):
    url: str = Field(min_length=1, max_length=8192)


class ImagePart(OpenAIRequestModel):
    type: Literal["image_url"]
    image_url: ImageUrl


class ChatMessage(OpenAIRequestModel):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart | ImagePart] | None = None
    name: str | None = None


class StreamOptions(OpenAIRequestModel):
    include_usage: bool = False


class ChatCompletionRequest(OpenAIRequestModel):
    model: str = Field(min_length=1, max_length=64, description="A published bot's id.")
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int = Field(default=1, ge=1, le=1, description="Only 1: one bot, one answer.")
    user: str | None = Field(
        default=None,
        max_length=255,
        description="The end user (the chat's user_id); absent: the caller's account id.",
    )


def as_json(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json")


# ------------------------------------------------------------------ documented responses
# The routes build their bodies as dicts (services/edge/routes/openai_compat.py); these models
# only document them in /openapi.json.


class OpenAIErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None
    code: str | None


class OpenAIErrorView(BaseModel):
    error: OpenAIErrorDetail


class ModelView(BaseModel):
    id: str = Field(description="The bot id.")
    object: Literal["model"]
    created: int = Field(description="When the bot's latest version was published.")
    owned_by: str


class ModelListView(BaseModel):
    object: Literal["list"]
    data: list[ModelView]


class UsageView(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class AssistantMessageView(BaseModel):
    role: Literal["assistant"]
    content: str
    refusal: None


class ChoiceView(BaseModel):
    index: int
    message: AssistantMessageView
    logprobs: None
    finish_reason: Literal["stop"]


class ChatCompletionView(BaseModel):
    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    system_fingerprint: None
    choices: list[ChoiceView]
    usage: UsageView


def _error_responses() -> dict[int | str, dict[str, Any]]:
    from services.edge.schemas.common import ErrorEnvelope

    responses: dict[int | str, dict[str, Any]] = {
        status: {"model": OpenAIErrorView, "description": description}
        for status, description in (
            (400, "Invalid input (`invalid_request_error`)."),
            (401, "Missing, invalid, expired or revoked API key (`invalid_api_key`)."),
            (403, "Cross-site request with a session cookie."),
            (404, "No such published bot for this account (`model_not_found`)."),
            (429, "Over the account's rate limit; `Retry-After` says when to retry."),
            (500, "The bot's run failed, or an internal error (`server_error`)."),
            (503, "No runner, or a backing service is unavailable (`server_error`)."),
        )
    }
    # Refused by the edge's body limit before any route runs: the Coze envelope.
    responses[413] = {"model": ErrorEnvelope, "description": "Request body too large."}
    return responses


OPENAI_ERROR_RESPONSES = _error_responses()

COMPLETION_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "model": ChatCompletionView,
        "description": "A `chat.completion`; with `stream: true`, `chat.completion.chunk` "
        "events as `data: {...}` lines, then `data: [DONE]`.",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    },
    **OPENAI_ERROR_RESPONSES,
}
