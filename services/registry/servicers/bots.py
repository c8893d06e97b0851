"""The BotRegistry gRPC servicer: proto messages in, domain calls, proto messages out. Domain
errors become status codes in one place, services/registry/servicers/errors.py."""

from __future__ import annotations

from typing import Any

from cozeplus.rpc.v1 import registry_pb2 as pb
from cozeplus.rpc.v1 import registry_pb2_grpc as pb_grpc
from services.registry import bots
from services.registry.bots import BotService
from services.registry.paging import PageRequest


class BotRegistryServicer(pb_grpc.BotRegistryServicer):
    def __init__(self, service: BotService) -> None:
        self._bots = service

    async def CreateDraft(self, request: pb.CreateDraftRequest, context: Any) -> pb.Bot:
        draft = await self._bots.create_draft(
            owner_id=request.owner_id,
            space_id=request.space_id,
            name=request.name,
            description=request.description,
            icon_url=request.icon_url,
            config=config_from_proto(request.config) if request.HasField("config") else None,
        )
        return draft_to_proto(draft)

    async def UpdateDisplayInfo(self, request: pb.UpdateDisplayInfoRequest, context: Any) -> pb.Bot:
        draft = await self._bots.update_display_info(
            owner_id=request.owner_id,
            bot_id=request.bot_id,
            name=request.name if request.HasField("name") else None,
            description=request.description if request.HasField("description") else None,
            icon_url=request.icon_url if request.HasField("icon_url") else None,
        )
        return draft_to_proto(draft)

    async def UpdateConfig(self, request: pb.UpdateConfigRequest, context: Any) -> pb.Bot:
        draft = await self._bots.update_config(
            owner_id=request.owner_id,
            bot_id=request.bot_id,
            config=config_from_proto(request.config) if request.HasField("config") else None,
            mask_paths=list(request.update_mask.paths),
        )
        return draft_to_proto(draft)

    async def GetDraft(self, request: pb.BotRef, context: Any) -> pb.Bot:
        draft = await self._bots.get_draft(owner_id=request.owner_id, bot_id=request.bot_id)
        return draft_to_proto(draft)

    async def ListDrafts(
        self, request: pb.ListDraftsRequest, context: Any
    ) -> pb.ListDraftsResponse:
        page = await self._bots.list_drafts(
            owner_id=request.owner_id,
            space_id=request.space_id,
            page=PageRequest.of(request.page_size, request.page_num),
            published=request.published if request.HasField("published") else None,
        )
        return pb.ListDraftsResponse(bots=[draft_to_proto(d) for d in page.items], total=page.total)

    async def DeleteDraft(self, request: pb.BotRef, context: Any) -> pb.Empty:
        await self._bots.delete_draft(owner_id=request.owner_id, bot_id=request.bot_id)
        return pb.Empty()

    async def Publish(self, request: pb.BotRef, context: Any) -> pb.BotVersion:
        version = await self._bots.publish(owner_id=request.owner_id, bot_id=request.bot_id)
        return version_to_proto(version)

    async def GetVersion(self, request: pb.GetVersionRequest, context: Any) -> pb.BotVersion:
        version = await self._bots.get_version(
            owner_id=request.owner_id, bot_id=request.bot_id, version=request.version
        )
        return version_to_proto(version)

    async def ListVersions(self, request: pb.BotRef, context: Any) -> pb.ListVersionsResponse:
        versions = await self._bots.list_versions(owner_id=request.owner_id, bot_id=request.bot_id)
        return pb.ListVersionsResponse(versions=[version_to_proto(v) for v in versions])

    async def ListPublished(
        self, request: pb.ListPublishedRequest, context: Any
    ) -> pb.ListPublishedResponse:
        page = await self._bots.list_published(
            owner_id=request.owner_id,
            space_id=request.space_id,
            page=PageRequest.of(request.page_size, request.page_num),
        )
        return pb.ListPublishedResponse(
            versions=[version_to_proto(v) for v in page.items], total=page.total
        )


def config_from_proto(message: pb.BotConfig) -> bots.BotConfig:
    model = message.model
    return bots.BotConfig(
        prompt=message.prompt,
        model=bots.ModelSettings(
            model_id=model.model_id,
            temperature=model.temperature if model.HasField("temperature") else None,
            max_tokens=model.max_tokens if model.HasField("max_tokens") else None,
            top_p=model.top_p if model.HasField("top_p") else None,
        ),
        history_rounds=message.history_rounds,
        max_tool_rounds=message.max_tool_rounds,
        onboarding=bots.Onboarding(
            prologue=message.onboarding.prologue,
            suggested_questions=tuple(message.onboarding.suggested_questions),
        ),
        variables=tuple(
            bots.Variable(key=v.key, description=v.description, default_value=v.default_value)
            for v in message.variables
        ),
        tools=tuple(
            bots.ToolRef(
                type=t.type,
                knowledge_id=t.knowledge_id,
                plugin_id=t.plugin_id,
                api_id=t.api_id,
                api_name=t.api_name,
            )
            for t in message.tools
        ),
        knowledge=bots.KnowledgeSettings(
            auto_call=(
                message.knowledge.auto_call if message.knowledge.HasField("auto_call") else True
            ),
            search_strategy=message.knowledge.search_strategy,
            top_k=message.knowledge.top_k,
            min_score=message.knowledge.min_score,
        ),
    )


def config_to_proto(config: bots.BotConfig) -> pb.BotConfig:
    model = pb.ModelSettings(model_id=config.model.model_id)
    if config.model.temperature is not None:
        model.temperature = config.model.temperature
    if config.model.max_tokens is not None:
        model.max_tokens = config.model.max_tokens
    if config.model.top_p is not None:
        model.top_p = config.model.top_p
    return pb.BotConfig(
        prompt=config.prompt,
        model=model,
        history_rounds=config.history_rounds,
        max_tool_rounds=config.max_tool_rounds,
        onboarding=pb.Onboarding(
            prologue=config.onboarding.prologue,
            suggested_questions=config.onboarding.suggested_questions,
        ),
        variables=[
            pb.Variable(key=v.key, description=v.description, default_value=v.default_value)
            for v in config.variables
        ],
        tools=[
            pb.ToolRef(
                type=t.type,
                knowledge_id=t.knowledge_id,
                plugin_id=t.plugin_id,
                api_id=t.api_id,
                api_name=t.api_name,
            )
            for t in config.tools
        ],
        # Absent while at its defaults, so configs written before it existed read back equal.
        knowledge=(
            pb.KnowledgeSettings(
                auto_call=config.knowledge.auto_call,
                search_strategy=config.knowledge.search_strategy,
                top_k=config.knowledge.top_k,
                min_score=config.knowledge.min_score,
            )
            if config.knowledge != bots.KnowledgeSettings()
            else None
        ),
    )


def draft_to_proto(draft: bots.Draft) -> pb.Bot:
    return pb.Bot(
        id=draft.id,
        owner_id=draft.owner_id,
        space_id=draft.space_id,
        name=draft.name,
        description=draft.description,
        icon_url=draft.icon_url,
        config=config_to_proto(draft.config),
        created_at=draft.created_at,
        updated_at=draft.updated_at,
        latest_version=draft.latest_version,
        published_at=draft.published_at,
        unpublished=draft.unpublished,
    )


def version_to_proto(version: bots.PublishedVersion) -> pb.BotVersion:
    return pb.BotVersion(
        bot_id=version.bot_id,
        version=version.version,
        owner_id=version.owner_id,
        space_id=version.space_id,
        name=version.name,
        description=version.description,
        icon_url=version.icon_url,
        config=config_to_proto(version.config),
        published_at=version.published_at,
        created_at=version.created_at,
        updated_at=version.updated_at,
    )
