"""API keys (personal access tokens): create (the token is shown once), list, get, rename,
delete. Deleting revokes the key on every edge within a second (the registry broadcasts it)."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Query

from cozeplus.rpc.v1 import registry_pb2 as pb
from services.edge.core.auth import Principal
from services.edge.deps import CurrentUser, Runtime
from services.edge.errors import ApiError
from services.edge.runtime import EdgeRuntime
from services.edge.schemas.accounts import (
    CreatePatRequest,
    ListPatRequest,
    PatCreated,
    PatDetail,
    PatIdRequest,
    PatList,
    PatView,
    UpdatePatRequest,
)
from services.edge.schemas.common import ERROR_RESPONSES, EmptyData, Envelope, ok

router = APIRouter(prefix="/api/permission_api/pat", tags=["api keys"], responses=ERROR_RESPONSES)

SECONDS_PER_DAY = 86_400


def _pat_view(key: pb.ApiKey) -> PatView:
    # Coze's console shows -1 as "never" for both dates.
    return PatView(
        id=key.id,
        name=key.name,
        prefix=key.prefix,
        created_at=key.created_at,
        updated_at=key.created_at,
        last_used_at=key.last_used_at or -1,
        expire_at=key.expires_at or -1,
        revoked=key.revoked,
    )


def _expires_in(body: CreatePatRequest, now: int) -> int:
    """Seconds until the new key expires; 0 = never."""
    if body.expire_at:
        if body.expire_at <= now:
            raise ApiError(400, "invalid expire_at: must be in the future (Unix seconds)")
        return body.expire_at - now
    if isinstance(body.duration_day, int):
        return body.duration_day * SECONDS_PER_DAY
    if body.duration_day == "customize":
        raise ApiError(400, 'expire_at is required when duration_day is "customize"')
    return 0


@router.post("/create_personal_access_token_and_permission", summary="Create an API key")
async def create_pat(
    body: CreatePatRequest, user: CurrentUser, runtime: Runtime
) -> Envelope[PatCreated]:
    created = await runtime.registry.accounts.CreateApiKey(
        pb.CreateApiKeyRequest(
            user_id=user.user_id, name=body.name, expires_in=_expires_in(body, int(time.time()))
        )
    )
    return ok(PatCreated(personal_access_token=_pat_view(created.key), token=created.token))


async def _list(runtime: EdgeRuntime, user: Principal, page: ListPatRequest) -> PatList:
    reply = await runtime.registry.accounts.ListApiKeys(
        pb.ListApiKeysRequest(user_id=user.user_id, page_size=page.size, page_num=page.page)
    )
    return PatList(
        personal_access_tokens=[_pat_view(k) for k in reply.keys],
        has_more=page.page * page.size < reply.total,
        total=reply.total,
    )


@router.post("/list_personal_access_tokens", summary="List API keys (paged)")
async def list_pats_post(
    user: CurrentUser, runtime: Runtime, body: ListPatRequest | None = None
) -> Envelope[PatList]:
    return ok(await _list(runtime, user, body or ListPatRequest()))


@router.get("/list_personal_access_tokens", summary="List API keys (paged)")
async def list_pats_get(
    user: CurrentUser, runtime: Runtime, page: Annotated[ListPatRequest, Query()]
) -> Envelope[PatList]:
    return ok(await _list(runtime, user, page))


async def _get(runtime: EdgeRuntime, user: Principal, key_id: int) -> PatDetail:
    key = await runtime.registry.accounts.GetApiKey(
        pb.ApiKeyRef(user_id=user.user_id, key_id=key_id)
    )
    return PatDetail(personal_access_token=_pat_view(key))


@router.post("/get_personal_access_token_and_permission", summary="One API key")
async def get_pat_post(
    body: PatIdRequest, user: CurrentUser, runtime: Runtime
) -> Envelope[PatDetail]:
    return ok(await _get(runtime, user, body.id))


@router.get("/get_personal_access_token_and_permission", summary="One API key")
async def get_pat_get(
    query: Annotated[PatIdRequest, Query()], user: CurrentUser, runtime: Runtime
) -> Envelope[PatDetail]:
    return ok(await _get(runtime, user, query.id))


@router.post("/update_personal_access_token_and_permission", summary="Rename an API key")
async def update_pat(
    body: UpdatePatRequest, user: CurrentUser, runtime: Runtime
) -> Envelope[PatDetail]:
    key = await runtime.registry.accounts.UpdateApiKey(
        pb.UpdateApiKeyRequest(user_id=user.user_id, key_id=body.id, name=body.name)
    )
    return ok(PatDetail(personal_access_token=_pat_view(key)))


@router.post("/delete_personal_access_token_and_permission", summary="Revoke an API key")
async def delete_pat(
    body: PatIdRequest, user: CurrentUser, runtime: Runtime
) -> Envelope[EmptyData]:
    await runtime.registry.accounts.RevokeApiKey(pb.ApiKeyRef(user_id=user.user_id, key_id=body.id))
    # The registry's broadcast reaches this edge too; evicting now closes even that gap.
    runtime.authenticator.evict_credential(body.id)
    return ok(EmptyData())
