"""Request messages checked by the same rules as the HTTP bodies: each becomes the HTTP
route's pydantic model (types, shapes) and goes through the same configured limits, so a
request refused on one transport is refused, with the same message, on the other."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from cozeplus.api.v1 import chat_pb2 as api
from cozeplus.api.v1 import types_pb2 as types
from services.edge.core.errors import InvalidInput
from services.edge.errors import validation_message

Model = TypeVar("Model", bound=BaseModel)


def validated(model: type[Model], fields: dict[str, Any]) -> Model:
    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        raise InvalidInput(validation_message(exc.errors())) from None


def message_fields(messages: Iterable[types.InputMessage]) -> list[dict[str, Any]]:
    return [
        {
            "role": m.role,
            "content": m.content,
            "content_type": m.content_type or "text",
            "type": m.type,
            "meta_data": dict(m.meta_data),
        }
        for m in messages
    ]


def chat_fields(request: api.ChatRequest) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "bot_id": request.bot_id or None,
        "user_id": request.user_id,
        "conversation_id": request.conversation_id or None,
        "additional_messages": message_fields(request.additional_messages),
        "custom_variables": dict(request.custom_variables),
        "meta_data": dict(request.meta_data),
        "stream": True,
    }
    if request.HasField("auto_save_history"):
        fields["auto_save_history"] = request.auto_save_history
    return fields
