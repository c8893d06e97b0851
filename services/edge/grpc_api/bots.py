"""BotService: a bot's published version or draft, and listings, from the registry."""

from __future__ import annotations

from typing import Any

from cozeplus.api.v1 import bots_pb2 as api
from cozeplus.api.v1 import bots_pb2_grpc as api_grpc
from cozeplus.rpc.v1 import registry_pb2 as pb
from services.edge.core.errors import InvalidInput
from services.edge.grpc_api.interceptor import caller
from services.edge.runtime import EdgeRuntime

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100


def bot_from_version(version: pb.BotVersion) -> api.Bot:
    return api.Bot(
        bot_id=version.bot_id,
        space_id=version.space_id,
        name=version.name,
        description=version.description,
        icon_url=version.icon_url,
        version=version.version,
        model_id=version.config.model.model_id,
        prompt=version.config.prompt,
        created_at=version.created_at,
        updated_at=version.updated_at,
        published_at=version.published_at,
    )


def bot_from_draft(draft: pb.Bot) -> api.Bot:
    return api.Bot(
        bot_id=draft.id,
        space_id=draft.space_id,
        name=draft.name,
        description=draft.description,
        icon_url=draft.icon_url,
        version=0,
        model_id=draft.config.model.model_id,
        prompt=draft.config.prompt,
        created_at=draft.created_at,
        updated_at=draft.updated_at,
        published_at=draft.published_at,
    )


class BotServicer(api_grpc.BotServiceServicer):
    def __init__(self, runtime: EdgeRuntime) -> None:
        self._bots = runtime.registry.bots

    async def GetBot(self, request: api.GetBotRequest, context: Any) -> api.Bot:
        owner_id = caller().user_id
        if request.bot_id <= 0:
            raise InvalidInput("bot_id is required")
        if request.draft:
            return bot_from_draft(
                await self._bots.GetDraft(pb.BotRef(owner_id=owner_id, bot_id=request.bot_id))
            )
        version = await self._bots.GetVersion(
            pb.GetVersionRequest(owner_id=owner_id, bot_id=request.bot_id, version=0)
        )
        return bot_from_version(version)

    async def ListBots(self, request: api.ListBotsRequest, context: Any) -> api.ListBotsResponse:
        owner_id = caller().user_id
        page_num = request.page_num or 1
        page_size = request.page_size or DEFAULT_PAGE_SIZE
        if page_num < 1 or not 1 <= page_size <= MAX_PAGE_SIZE:
            raise InvalidInput(f"invalid paging: page_num >= 1, page_size 1..{MAX_PAGE_SIZE}")
        if request.drafts:
            drafts = await self._bots.ListDrafts(
                pb.ListDraftsRequest(
                    owner_id=owner_id,
                    space_id=request.space_id,
                    page_size=page_size,
                    page_num=page_num,
                )
            )
            return api.ListBotsResponse(
                bots=[bot_from_draft(d) for d in drafts.bots], total=drafts.total
            )
        published = await self._bots.ListPublished(
            pb.ListPublishedRequest(
                owner_id=owner_id, space_id=request.space_id, page_size=page_size, page_num=page_num
            )
        )
        return api.ListBotsResponse(
            bots=[bot_from_version(v) for v in published.versions], total=published.total
        )
