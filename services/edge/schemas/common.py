"""Building blocks shared by every request and response schema."""

from __future__ import annotations

import re
from typing import Annotated, Any, Generic, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticCustomError

T = TypeVar("T")

MAX_ID = 2**63 - 1
# Counts that the registry's messages carry as int32 (pages, tokens, rounds): anything larger
# could not even be sent to it, so it is refused here as bad input.
INT32_MAX = 2**31 - 1
_DIGITS = re.compile(r"[0-9]{1,19}")


def parse_id(value: object) -> int:
    """A 64-bit id sent as a JSON number or a numeric string (JavaScript clients must send
    strings to keep precision); booleans, floats and anything out of 1..2^63-1 are refused."""
    if isinstance(value, str) and _DIGITS.fullmatch(value):
        number = int(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        raise PydanticCustomError(
            "id_type", "must be a positive integer id, as a JSON number or a numeric string"
        )
    if not 0 < number <= MAX_ID:
        raise PydanticCustomError("id_range", "must be between 1 and 2^63-1")
    return number


Id = Annotated[
    int,
    PlainValidator(parse_id),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": 1, "maximum": MAX_ID},
                {"type": "string", "pattern": "^[0-9]{1,19}$"},
            ],
            "description": "64-bit id, as a number or a numeric string",
        }
    ),
]


def _not_blank(value: str) -> str:
    if not value.strip():
        raise PydanticCustomError("blank", "must not be empty")
    return value


NonEmptyStr = Annotated[str, Field(min_length=1), AfterValidator(_not_blank)]


class RequestModel(BaseModel):
    """Base of every request body: unknown fields are ignored and `null` means absent (cozepy
    sends explicit nulls)."""

    model_config = ConfigDict(extra="ignore", protected_namespaces=())

    @model_validator(mode="before")
    @classmethod
    def _null_means_absent(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {key: value for key, value in data.items() if value is not None}
        return data


class ResponseModel(BaseModel):
    model_config = ConfigDict(protected_namespaces=())


class Envelope(ResponseModel, Generic[T]):
    code: int = 0
    msg: str = "success"
    data: T


class ErrorEnvelope(ResponseModel):
    code: int = Field(description="Equals the HTTP status.", examples=[400])
    msg: str = Field(examples=["bot_id is required"])
    data: None = None


class EmptyData(ResponseModel):
    pass


def ok(data: T) -> Envelope[T]:
    return Envelope(data=data)


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorEnvelope, "description": description}
    for status, description in (
        (400, "Invalid input; `msg` names the field."),
        (401, "Missing, invalid, expired or revoked credentials."),
        (403, "Cross-site request with a session cookie."),
        (404, "No such resource for this account."),
        (409, "Conflict with the current state."),
        (413, "Request body too large."),
        (429, "Over the account's rate limit; `Retry-After` says when to retry."),
        (500, "Internal error."),
        (503, "A backing service is unavailable."),
    )
}
