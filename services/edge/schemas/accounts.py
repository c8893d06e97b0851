"""Account, session and API key (personal access token) bodies. These live under /api, so ids
are JSON numbers."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BeforeValidator, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from services.edge.schemas.common import (
    INT32_MAX,
    MAX_ID,
    Id,
    NonEmptyStr,
    RequestModel,
    ResponseModel,
)


class RegisterRequest(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={"anyOf": [{"required": ["username"]}, {"required": ["email"]}]}
    )

    username: NonEmptyStr | None = Field(
        default=None, max_length=64, description="Absent: made from the email."
    )
    email: NonEmptyStr | None = Field(
        default=None, max_length=254, description="Log in with it as well as the username."
    )
    password: NonEmptyStr = Field(max_length=1024)
    display_name: str = Field(default="", max_length=128)

    @model_validator(mode="after")
    def _username_or_email(self) -> RegisterRequest:
        if self.username is None and self.email is None:
            raise PydanticCustomError("username_or_email", "username or email is required")
        return self


class LoginRequest(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={"anyOf": [{"required": ["username"]}, {"required": ["email"]}]}
    )

    username: NonEmptyStr | None = Field(default=None, max_length=254)
    email: NonEmptyStr | None = Field(
        default=None, max_length=254, description="Instead of the username."
    )
    password: NonEmptyStr = Field(max_length=1024)

    @model_validator(mode="after")
    def _username_or_email(self) -> LoginRequest:
        if self.username is None and self.email is None:
            raise PydanticCustomError("username_or_email", "username or email is required")
        return self

    @property
    def login_name(self) -> str:
        return self.username or self.email or ""


class UserView(ResponseModel):
    user_id: int
    username: str
    display_name: str
    created_at: int


class SessionUserView(UserView):
    email: str = Field(description="The email the account registered with, or empty.")


class SessionView(ResponseModel):
    user: SessionUserView
    expires_at: int = Field(description="When the session cookie stops working (Unix seconds).")


class MeView(UserView):
    auth_kind: str = Field(description="`session` or `api_key`: how this request authenticated.")


def _duration_day(value: object) -> object:
    # Coze's console sends days as strings ("30"), plus "permanent" and "customize".
    if isinstance(value, str) and re.fullmatch(r"[0-9]{1,5}", value):
        return int(value)
    return value


class CreatePatRequest(RequestModel):
    name: NonEmptyStr = Field(max_length=128)
    expire_at: int | None = Field(
        default=None,
        ge=0,
        le=MAX_ID,
        description="Unix seconds; 0 or absent: never (unless duration_day).",
    )
    duration_day: Annotated[
        Annotated[int, Field(ge=1, le=INT32_MAX)] | Literal["permanent", "customize"] | None,
        BeforeValidator(_duration_day),
    ] = Field(
        default=None,
        description='Days until expiry, or "permanent"; "customize" means use expire_at.',
    )


class PatIdRequest(RequestModel):
    id: Id


class UpdatePatRequest(RequestModel):
    id: Id
    name: NonEmptyStr = Field(max_length=128)


class ListPatRequest(RequestModel):
    page: int = Field(default=1, ge=1, le=INT32_MAX, description="1-based page number.")
    size: int = Field(default=20, ge=1, le=100)


class PatView(ResponseModel):
    id: int
    name: str
    prefix: str = Field(description="The token's first characters, to recognise it.")
    created_at: int
    updated_at: int
    last_used_at: int = Field(description="-1: never used.")
    expire_at: int = Field(description="-1: never expires.")
    revoked: bool


class PatCreated(ResponseModel):
    personal_access_token: PatView
    token: str = Field(description="The API key itself; shown only in this response.")


class PatDetail(ResponseModel):
    personal_access_token: PatView


class PatList(ResponseModel):
    personal_access_tokens: list[PatView]
    has_more: bool
    total: int
