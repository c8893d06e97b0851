"""The official API's workspaces and current user (wire contract section 10). Every account
has one personal workspace, whose id is the space id its bots live in (the account id)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from services.edge.auth import CurrentUser
from services.edge.schemas.common import ERROR_RESPONSES, INT32_MAX, Envelope, ok
from services.edge.schemas.user_state import CurrentUserView, WorkspaceList, WorkspaceView

router = APIRouter(responses=ERROR_RESPONSES)

PERSONAL_WORKSPACE_NAME = "Personal"


@router.get(
    "/v1/workspaces",
    tags=["workspaces"],
    summary="The workspaces the caller belongs to: its personal one",
    description="The `id` is the `space_id` (or `workspace_id`) that bot creation and the "
    "bot listings take.",
)
async def list_workspaces(
    user: CurrentUser,
    page_num: Annotated[int, Query(ge=1, le=INT32_MAX)] = 1,
    page_size: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Envelope[WorkspaceList]:
    personal = WorkspaceView(
        id=str(user.user_id),
        name=PERSONAL_WORKSPACE_NAME,
        icon_url="",
        role_type="owner",
        workspace_type="personal",
        enterprise_id="",
    )
    everything = [personal]
    page = everything[(page_num - 1) * page_size : page_num * page_size]
    return ok(WorkspaceList(total_count=len(everything), workspaces=page))


@router.get("/v1/users/me", tags=["workspaces"], summary="The authenticated account")
async def users_me(user: CurrentUser) -> Envelope[CurrentUserView]:
    return ok(
        CurrentUserView(
            user_id=str(user.user_id),
            user_name=user.username,
            nick_name=user.display_name,
            avatar_url="",
        )
    )
