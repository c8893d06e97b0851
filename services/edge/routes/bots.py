"""Bot routes: the product document's /api/draftbot/* and the official /v1 bot API, both served
from the registry. Draft → publish → online; every publish freezes a numbered version."""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal

import grpc
from fastapi import APIRouter, Path, Query
from google.protobuf.field_mask_pb2 import FieldMask

from cozeplus.rpc.v1 import plugins_pb2 as ppb
from cozeplus.rpc.v1 import registry_pb2 as pb
from services.edge import bot_mapping
from services.edge.core.auth import Principal
from services.edge.deps import CurrentUser, RateLimitClass, Runtime
from services.edge.rate_limit import LimitClass
from services.edge.runtime import EdgeRuntime
from services.edge.schemas.bots import (
    ApiBotCreated,
    ApiBotDisplayInfo,
    ApiBotPublished,
    BotIdRequest,
    CreateBotRequest,
    PublishedBotList,
    UpdateBotRequest,
    V1Bot,
    V1BotList,
)
from services.edge.schemas.common import (
    ERROR_RESPONSES,
    INT32_MAX,
    EmptyData,
    Envelope,
    Id,
    ok,
)

# Two rate-limit classes (wire contract section 6), one router each; `router` joins them.
management = APIRouter(
    responses=ERROR_RESPONSES, dependencies=[RateLimitClass(LimitClass.BOT_MANAGEMENT)]
)
info = APIRouter(responses=ERROR_RESPONSES, dependencies=[RateLimitClass(LimitClass.BOT_INFO)])

PageIndex = Annotated[int, Query(ge=1, le=INT32_MAX, description="1-based page number.")]
PageSize = Annotated[int, Query(ge=1, le=100)]
# The registry pages by number; filters it cannot apply are applied here over every draft.


async def _create(runtime: EdgeRuntime, user: Principal, body: CreateBotRequest) -> pb.Bot:
    config = bot_mapping.config_for_create(body)
    return await runtime.registry.bots.CreateDraft(
        pb.CreateDraftRequest(
            owner_id=user.user_id,
            space_id=body.space_id or 0,
            name=body.name,
            description=body.description,
            icon_url=body.icon_url,
            config=config,
        )
    )


async def _update(runtime: EdgeRuntime, user: Principal, body: UpdateBotRequest) -> pb.Bot:
    bots = runtime.registry.bots
    ref = pb.BotRef(owner_id=user.user_id, bot_id=body.bot_id)
    current_tools: list[pb.ToolRef] = []
    if bot_mapping.touches_tools_partially(body):
        current_tools = list((await bots.GetDraft(ref)).config.tools)
    config, paths = bot_mapping.config_from_request(body, current_tools)
    bot: pb.Bot | None = None
    # Config first: it is what may be refused (an unknown model id), and a refusal then
    # leaves the display info untouched too.
    if paths:
        bot = await bots.UpdateConfig(
            pb.UpdateConfigRequest(
                owner_id=user.user_id,
                bot_id=body.bot_id,
                config=config,
                update_mask=FieldMask(paths=paths),
            )
        )
    if body.name is not None or body.description is not None or body.icon_url is not None:
        bot = await bots.UpdateDisplayInfo(
            pb.UpdateDisplayInfoRequest(
                owner_id=user.user_id,
                bot_id=body.bot_id,
                name=body.name,
                description=body.description,
                icon_url=body.icon_url,
            )
        )
    return bot if bot is not None else await bots.GetDraft(ref)


async def _publish(runtime: EdgeRuntime, user: Principal, bot_id: int) -> pb.BotVersion:
    return await runtime.registry.bots.Publish(pb.BotRef(owner_id=user.user_id, bot_id=bot_id))


async def _latest_version(runtime: EdgeRuntime, user: Principal, bot_id: int) -> pb.BotVersion:
    return await runtime.registry.bots.GetVersion(
        pb.GetVersionRequest(owner_id=user.user_id, bot_id=bot_id, version=0)
    )


async def _bound_plugins(
    runtime: EdgeRuntime, user: Principal, config: pb.BotConfig
) -> dict[int, ppb.Plugin]:
    """The plugins a config binds, for `plugin_info_list` (a deleted one is not found, and
    listed by its id alone)."""

    async def get(plugin_id: int) -> ppb.Plugin | None:
        try:
            return await runtime.registry.plugins.GetPlugin(
                ppb.PluginRef(owner_id=user.user_id, plugin_id=plugin_id)
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise

    found = await asyncio.gather(*(get(i) for i in bot_mapping.bound_plugin_ids(config)))
    return {p.id: p for p in found if p is not None}


async def _v1_draft(runtime: EdgeRuntime, user: Principal, bot: pb.Bot) -> V1Bot:
    return bot_mapping.v1_bot_from_draft(bot, await _bound_plugins(runtime, user, bot.config))


async def _v1_version(runtime: EdgeRuntime, user: Principal, version: pb.BotVersion) -> V1Bot:
    plugins = await _bound_plugins(runtime, user, version.config)
    return bot_mapping.v1_bot_from_version(version, plugins)


# ------------------------------------------------------------------------------- /api


@management.post("/api/draftbot/create", tags=["bots (/api)"], summary="Create a draft bot")
async def api_create_bot(
    body: CreateBotRequest, user: CurrentUser, runtime: Runtime
) -> Envelope[ApiBotCreated]:
    return ok(bot_mapping.api_created(await _create(runtime, user, body)))


@management.post(
    "/api/draftbot/update_display_info",
    tags=["bots (/api)"],
    summary="Update a draft's name, description, icon (and any config field sent)",
)
async def api_update_bot(
    body: UpdateBotRequest, user: CurrentUser, runtime: Runtime
) -> Envelope[ApiBotDisplayInfo]:
    return ok(bot_mapping.api_display_info(await _update(runtime, user, body)))


@management.post(
    "/api/draftbot/publish", tags=["bots (/api)"], summary="Publish the draft as a new version"
)
async def api_publish_bot(
    body: BotIdRequest, user: CurrentUser, runtime: Runtime
) -> Envelope[ApiBotPublished]:
    return ok(bot_mapping.api_published(await _publish(runtime, user, body.bot_id)))


@management.post("/api/draftbot/delete", tags=["bots (/api)"], summary="Delete a bot")
async def api_delete_bot(
    body: BotIdRequest, user: CurrentUser, runtime: Runtime
) -> Envelope[EmptyData]:
    await runtime.registry.bots.DeleteDraft(pb.BotRef(owner_id=user.user_id, bot_id=body.bot_id))
    return ok(EmptyData())


# -------------------------------------------------------------------------------- /v1


@management.post("/v1/bot/create", tags=["bots (/v1)"], summary="Create a draft bot (official API)")
async def v1_create_bot(
    body: CreateBotRequest, user: CurrentUser, runtime: Runtime
) -> Envelope[V1Bot]:
    return ok(await _v1_draft(runtime, user, await _create(runtime, user, body)))


@management.post("/v1/bot/update", tags=["bots (/v1)"], summary="Update a draft bot (official API)")
async def v1_update_bot(
    body: UpdateBotRequest, user: CurrentUser, runtime: Runtime
) -> Envelope[V1Bot]:
    return ok(await _v1_draft(runtime, user, await _update(runtime, user, body)))


@management.post("/v1/bot/publish", tags=["bots (/v1)"], summary="Publish the draft (official API)")
async def v1_publish_bot(
    body: BotIdRequest, user: CurrentUser, runtime: Runtime
) -> Envelope[V1Bot]:
    return ok(await _v1_version(runtime, user, await _publish(runtime, user, body.bot_id)))


@info.get(
    "/v1/bot/get_online_info",
    tags=["bots (/v1)"],
    summary="The latest published version of a bot",
)
async def v1_get_online_info(
    bot_id: Annotated[Id, Query()], user: CurrentUser, runtime: Runtime
) -> Envelope[V1Bot]:
    return ok(await _v1_version(runtime, user, await _latest_version(runtime, user, bot_id)))


@info.get("/v1/bots/{bot_id}", tags=["bots (/v1)"], summary="Bot details")
async def v1_get_bot(
    bot_id: Annotated[Id, Path()],
    user: CurrentUser,
    runtime: Runtime,
    is_published: Annotated[
        bool | None,
        Query(description="true or absent: the latest published version; false: the draft."),
    ] = None,
) -> Envelope[V1Bot]:
    if is_published is False:
        draft = await runtime.registry.bots.GetDraft(
            pb.BotRef(owner_id=user.user_id, bot_id=bot_id)
        )
        return ok(await _v1_draft(runtime, user, draft))
    return ok(await _v1_version(runtime, user, await _latest_version(runtime, user, bot_id)))


PublishStatus = Literal["all", "published_online", "published_draft", "unpublished_draft"]


@info.get("/v1/bots", tags=["bots (/v1)"], summary="List a space's bots")
async def v1_list_bots(
    user: CurrentUser,
    runtime: Runtime,
    workspace_id: Annotated[Id | None, Query(description="Absent: every space.")] = None,
    space_id: Annotated[Id | None, Query(description="Alias of workspace_id.")] = None,
    publish_status: Annotated[
        PublishStatus,
        Query(
            description="published_online: latest published versions; all: drafts; "
            "published_draft / unpublished_draft: drafts that are online (published, not "
            "unpublished since) / the others."
        ),
    ] = "published_online",
    page_index: PageIndex = 1,
    page_num: Annotated[
        int | None,
        Query(ge=1, le=INT32_MAX, description="Alias of page_index (@coze/api's listNew)."),
    ] = None,
    page_size: PageSize = 20,
) -> Envelope[V1BotList]:
    space = workspace_id or space_id or 0
    page_index = page_num or page_index
    bots = runtime.registry.bots
    if publish_status == "published_online":
        published = await bots.ListPublished(
            pb.ListPublishedRequest(
                owner_id=user.user_id, space_id=space, page_size=page_size, page_num=page_index
            )
        )
        items = [bot_mapping.v1_summary_from_version(v) for v in published.versions]
        return ok(V1BotList(items=items, total=published.total))
    if publish_status == "all":
        drafts = await bots.ListDrafts(
            pb.ListDraftsRequest(
                owner_id=user.user_id, space_id=space, page_size=page_size, page_num=page_index
            )
        )
        items = [bot_mapping.v1_summary_from_draft(b) for b in drafts.bots]
        return ok(V1BotList(items=items, total=drafts.total))

    # published_draft / unpublished_draft: the registry filters (and counts) them.
    drafts = await bots.ListDrafts(
        pb.ListDraftsRequest(
            owner_id=user.user_id,
            space_id=space,
            page_size=page_size,
            page_num=page_index,
            published=publish_status == "published_draft",
        )
    )
    items = [bot_mapping.v1_summary_from_draft(b) for b in drafts.bots]
    return ok(V1BotList(items=items, total=drafts.total))


@info.get(
    "/v1/space/published_bots_list",
    tags=["bots (/v1)"],
    summary="A space's published bots (official API, v1 listing)",
)
async def v1_published_bots_list(
    space_id: Annotated[Id, Query()],
    user: CurrentUser,
    runtime: Runtime,
    page_index: PageIndex = 1,
    page_size: PageSize = 20,
) -> Envelope[PublishedBotList]:
    published = await runtime.registry.bots.ListPublished(
        pb.ListPublishedRequest(
            owner_id=user.user_id, space_id=space_id, page_size=page_size, page_num=page_index
        )
    )
    return ok(
        PublishedBotList(
            space_bots=[bot_mapping.published_bot(v) for v in published.versions],
            total=published.total,
        )
    )


router = APIRouter()
router.include_router(management)
router.include_router(info)
