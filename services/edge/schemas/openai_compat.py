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
