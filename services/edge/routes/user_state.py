"""Official API routes for what end users leave on bots, and for taking a bot offline:
bot unpublish, message feedback, and per-user variables (`{{name}}` in prompts)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Path, Query, Request

from cozeplus.rpc.v1 import user_state_pb2 as us
from services.edge.auth import CurrentUser
from services.edge.errors import ApiError
from services.edge.runtime import Runtime
from services.edge.schemas.chat import OptionalId
from services.edge.schemas.common import ERROR_RESPONSES, EmptyData, Envelope, Id, ok
from services.edge.schemas.user_state import (
    FeedbackBody,
    UnpublishBody,
    UpdateVariablesBody,
    VariableList,
    VariableView,
)

router = APIRouter(responses=ERROR_RESPONSES)

_NO_APPS = "app_id: this server has no apps; use bot_id"


@router.post(
    "/v1/bots/{bot_id}/unpublish",
    tags=["bots (/v1)"],
    summary="Take a published bot offline",
    description="Its chats on /v3/chat and its published info are 404 until the next "
    "publish; the draft and the versions are kept. A bot that is not online is a 409.",
)
async def unpublish_bot(
    bot_id: Annotated[Id, Path()],
    user: CurrentUser,
    runtime: Runtime,
    body: Annotated[UnpublishBody | None, Body()] = None,
) -> Envelope[EmptyData]:
    reason = body.unpublish_reason if body is not None else ""
    await runtime.registry.publishing.Unpublish(
        us.UnpublishRequest(owner_id=user.user_id, bot_id=bot_id, reason=reason)
    )
    return ok(EmptyData())


def _feedback_ref(user_id: int, conversation_id: int, message_id: int) -> us.FeedbackRef:
    return us.FeedbackRef(owner_id=user_id, conversation_id=conversation_id, message_id=message_id)


@router.post(
    "/v1/conversations/{conversation_id}/messages/{message_id}/feedback",
    tags=["conversations"],
    summary="Like or unlike one of the bot's messages",
    description="Replaces any earlier feedback on the message.",
)
async def set_feedback(
    conversation_id: Annotated[Id, Path()],
    message_id: Annotated[Id, Path()],
    body: FeedbackBody,
    user: CurrentUser,
    runtime: Runtime,
) -> Envelope[EmptyData]:
    await runtime.registry.feedback.SetFeedback(
        us.SetFeedbackRequest(
            message=_feedback_ref(user.user_id, conversation_id, message_id),
            feedback_type=body.feedback_type,
            reason_types=body.reason_types,
            comment=body.comment,
        )
    )
    return ok(EmptyData())


@router.delete(
    "/v1/conversations/{conversation_id}/messages/{message_id}/feedback",
    tags=["conversations"],
    summary="Remove the feedback on a message",
    description="Idempotent: a message without feedback is not an error.",
)
async def delete_feedback(
    conversation_id: Annotated[Id, Path()],
    message_id: Annotated[Id, Path()],
    user: CurrentUser,
    runtime: Runtime,
) -> Envelope[EmptyData]:
    await runtime.registry.feedback.DeleteFeedback(
        _feedback_ref(user.user_id, conversation_id, message_id)
    )
    return ok(EmptyData())


def _scope(
    user_id: int, bot_id: int | None, app_id: int | None, connector_uid: str
) -> us.VariableScope:
    if app_id is not None:
        raise ApiError(400, _NO_APPS)
    if bot_id is None:
        raise ApiError(400, "bot_id is required")
    return us.VariableScope(owner_id=user_id, bot_id=bot_id, connector_uid=connector_uid)


@router.put(
    "/v1/variables",
    tags=["variables"],
    summary="Set an end user's variable values for a bot",
    description="`connector_uid` is the end user: the `user_id` your chats send. Values "
    "fill `{{keyword}}` in the bot's prompt in that user's chats; a chat's own "
    "`custom_variables` win over them. Other variables of the user are kept.",
)
async def update_variables(
    body: UpdateVariablesBody, user: CurrentUser, runtime: Runtime
) -> Envelope[EmptyData]:
    await runtime.registry.variables.SetVariables(
        us.SetVariablesRequest(
            scope=_scope(user.user_id, body.bot_id, body.app_id, body.connector_uid),
            values=[us.UserVariable(keyword=v.keyword, value=v.value) for v in body.data],
        )
    )
    return ok(EmptyData())


@router.get(
    "/v1/variables",
    tags=["variables"],
    summary="An end user's variable values for a bot",
    description="`keywords`: comma-separated (also repeated, or `keywords[]`); absent or "
    "empty: every variable of the user.",
)
async def retrieve_variables(
    request: Request,
    user: CurrentUser,
    runtime: Runtime,
    connector_uid: Annotated[str, Query(min_length=1, max_length=255)],
    bot_id: Annotated[OptionalId, Query()] = None,
    app_id: Annotated[OptionalId, Query()] = None,
    connector_id: Annotated[str | None, Query(max_length=64)] = None,
    keywords: Annotated[str | None, Query(max_length=16_384)] = None,
) -> Envelope[VariableList]:
    # cozepy joins them with commas; axios (@coze/api) sends keywords[]=a&keywords[]=b.
    raw = request.query_params.getlist("keywords") + request.query_params.getlist("keywords[]")
    wanted = [k.strip() for value in raw for k in value.split(",") if k.strip()]
    reply = await runtime.registry.variables.GetVariables(
        us.GetVariablesRequest(
            scope=_scope(user.user_id, bot_id, app_id, connector_uid), keywords=wanted
        )
    )
    return ok(
        VariableList(
            items=[
                VariableView(
                    keyword=v.keyword,
                    value=v.value,
                    create_time=v.create_time,
                    update_time=v.update_time,
                )
                for v in reply.values
            ]
        )
    )
