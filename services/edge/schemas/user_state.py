"""Bodies of the official API's workspaces, users/me, bot unpublish, message feedback and
variables routes (what cozepy and @coze/api send and read). Ids are JSON strings."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from services.edge.schemas.chat import OptionalId
from services.edge.schemas.common import NonEmptyStr, RequestModel, ResponseModel


class WorkspaceView(ResponseModel):
    id: str = Field(description="The space id that bots.create and the listings take.")
    name: str
    icon_url: str
    role_type: Literal["owner", "admin", "member"]
    workspace_type: Literal["personal", "team"]
    enterprise_id: str


class WorkspaceList(ResponseModel):
    total_count: int
    workspaces: list[WorkspaceView]


class CurrentUserView(ResponseModel):
    user_id: str
    user_name: str
    nick_name: str
    avatar_url: str


class UnpublishBody(RequestModel):
    connector_id: str = Field(
        default="1024", max_length=64, description='The channel; "1024" is the API channel.'
    )
    unpublish_reason: str = Field(default="", max_length=1024)


class FeedbackBody(RequestModel):
    feedback_type: Literal["like", "unlike"]
    reason_types: list[NonEmptyStr] = Field(default_factory=list, max_length=10)
    comment: str = Field(default="", max_length=1024)


class VariableIn(RequestModel):
    keyword: NonEmptyStr = Field(max_length=128)
    value: str = Field(max_length=16_384)


class UpdateVariablesBody(RequestModel):
    bot_id: OptionalId = None
    app_id: OptionalId = None
    connector_id: str | None = Field(default=None, max_length=64)
    connector_uid: NonEmptyStr = Field(
        max_length=255, description="The end user: the user_id your chats send."
    )
    data: list[VariableIn] = Field(min_length=1, max_length=64)


class VariableView(ResponseModel):
    keyword: str
    value: str
    create_time: int
    update_time: int


class VariableList(ResponseModel):
    items: list[VariableView]
