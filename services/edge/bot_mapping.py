"""Translation between the HTTP bot schemas and the registry's messages, kept apart from the
route handlers so each handler reads as: validate, call the registry, shape the answer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

from cozeplus.model_catalog import BUILTIN_MODELS
from cozeplus.rpc.v1 import plugins_pb2 as ppb
from cozeplus.rpc.v1 import registry_pb2 as pb
from cozeplus.vocabulary import ToolType
from services.edge.schemas.bots import (
    ApiBotCreated,
    ApiBotDisplayInfo,
    ApiBotPublished,
    BotConfigIn,
    BotVariable,
    Knowledge,
    KnowledgeTool,
    ModelInfo,
    OnboardingInfo,
    PluginApiInfo,
    PluginInfo,
    PluginTool,
    PromptInfo,
    PublishedBot,
    V1Bot,
    V1BotSummary,
)

KNOWLEDGE_BASE = ToolType.KNOWLEDGE_BASE
PLUGIN = ToolType.PLUGIN
# Rounds of history a new bot sends to its model unless the client chose. The registry has the
# same default, but only for a create without any config; the edge always sends one, and in
# it an unset history_rounds reads as 0, "no history".
DEFAULT_HISTORY_ROUNDS = 10
# What a bot that sets no max_tool_rounds gets (the runner's default; 0 in the config).
DEFAULT_MAX_TOOL_ROUNDS = 8

# ------------------------------------------------------------------------ requests


def touches_tools_partially(body: BotConfigIn) -> bool:
    """True when the official `knowledge`/`plugin_id_list` shapes replace one kind of tool
    and the other kind must be carried over from the current draft."""
    return body.tools is None and (body.knowledge is None) != (body.plugin_id_list is None)


def config_for_create(body: BotConfigIn) -> pb.BotConfig:
    """The config of a new bot: what the request sets, with the defaults it left out."""
    config, paths = config_from_request(body)
    if "history_rounds" not in paths:
        config.history_rounds = DEFAULT_HISTORY_ROUNDS
    return config


def config_from_request(
    body: BotConfigIn, current_tools: Sequence[pb.ToolRef] = ()
) -> tuple[pb.BotConfig, list[str]]:
    """The config carried by a request and the BotConfig paths it sets (the update mask)."""
    config = pb.BotConfig()
    paths: list[str] = []
    model_info = body.model_info_config

    prompt = body.prompt
    if prompt is None and body.prompt_info is not None:
        prompt = body.prompt_info.prompt
    if prompt is not None:
        config.prompt = prompt
        paths.append("prompt")

    model_id = body.model
    if model_id is None and model_info is not None:
        model_id = model_info.model_id
    if model_id is not None:
        config.model.model_id = model_id
        paths.append("model.model_id")
    if model_info is not None:
        if model_info.temperature is not None:
            config.model.temperature = model_info.temperature
            paths.append("model.temperature")
        if model_info.max_tokens is not None:
            config.model.max_tokens = model_info.max_tokens
            paths.append("model.max_tokens")
        if model_info.top_p is not None:
            config.model.top_p = model_info.top_p
            paths.append("model.top_p")

    rounds = body.history_rounds
    if rounds is None and model_info is not None:
        rounds = model_info.context_round
    if rounds is not None:
        config.history_rounds = rounds
        paths.append("history_rounds")

    if body.max_tool_rounds is not None:
        config.max_tool_rounds = body.max_tool_rounds
        paths.append("max_tool_rounds")

    if body.onboarding_info is not None:
        config.onboarding.prologue = body.onboarding_info.prologue
        config.onboarding.suggested_questions.extend(body.onboarding_info.suggested_questions)
        paths.append("onboarding")

    if body.variables is not None:
        config.variables.extend(
            pb.Variable(key=v.key, description=v.description, default_value=v.default_value)
            for v in body.variables
        )
        paths.append("variables")

    tools = _tools_from_request(body, current_tools)
    if tools is not None:
        config.tools.extend(tools)
        paths.append("tools")
    if _knowledge_settings_from_request(body, config.knowledge):
        paths.append("knowledge")
    return config, paths


def _knowledge_settings_from_request(body: BotConfigIn, settings: pb.KnowledgeSettings) -> bool:
    """Fill the bot's knowledge settings from the official `knowledge` object; False when the
    request carries none of them (the stored ones then stay as they are)."""
    knowledge = body.knowledge
    if knowledge is None or (
        knowledge.auto_call is None
        and knowledge.search_strategy is None
        and knowledge.top_k is None
        and knowledge.min_score is None
    ):
        return False
    settings.auto_call = True if knowledge.auto_call is None else knowledge.auto_call
    settings.search_strategy = knowledge.search_strategy or 0
    settings.top_k = knowledge.top_k or 0
    settings.min_score = knowledge.min_score or 0.0
    return True


def _tools_from_request(
    body: BotConfigIn, current_tools: Sequence[pb.ToolRef]
) -> list[pb.ToolRef] | None:
    if body.tools is not None:
        # ToolIn guarantees the id its type needs.
        return [
            pb.ToolRef(
                type=tool.type,
                knowledge_id=tool.knowledge_id or 0,
                plugin_id=tool.plugin_id or 0,
                api_name=tool.api_name or "",
            )
            for tool in body.tools
        ]
    if body.knowledge is None and body.plugin_id_list is None:
        return None
    if body.knowledge is not None:
        knowledge = [
            pb.ToolRef(type=KNOWLEDGE_BASE, knowledge_id=i) for i in body.knowledge.dataset_ids
        ]
    else:
        knowledge = [t for t in current_tools if t.type == KNOWLEDGE_BASE]
    if body.plugin_id_list is not None:
        plugins = [
            pb.ToolRef(type=PLUGIN, plugin_id=p.plugin_id, api_id=int(p.api_id or 0))
            for p in body.plugin_id_list.id_list
        ]
    else:
        plugins = [t for t in current_tools if t.type == PLUGIN]
    return knowledge + plugins


# -------------------------------------------------------------------- /api responses


def api_created(bot: pb.Bot) -> ApiBotCreated:
    return ApiBotCreated(
        bot_id=bot.id,
        name=bot.name,
        description=bot.description,
        icon_url=bot.icon_url,
        created_at=bot.created_at,
        updated_at=bot.updated_at,
    )


def api_display_info(bot: pb.Bot) -> ApiBotDisplayInfo:
    return ApiBotDisplayInfo(
        bot_id=bot.id, name=bot.name, description=bot.description, updated_at=bot.updated_at
    )


def api_published(version: pb.BotVersion) -> ApiBotPublished:
    return ApiBotPublished(
        bot_id=version.bot_id, version=version.version, published_at=version.published_at
    )


# --------------------------------------------------------------------- /v1 responses


def bound_plugin_ids(config: pb.BotConfig) -> list[int]:
    """The plugins a config binds, each once, in binding order."""
    return list(dict.fromkeys(t.plugin_id for t in config.tools if t.type == PLUGIN))


def v1_bot_from_draft(bot: pb.Bot, plugins: Mapping[int, ppb.Plugin] | None = None) -> V1Bot:
    return _v1_bot(
        plugins=plugins or {},
        bot_id=bot.id,
        owner_id=bot.owner_id,
        space_id=bot.space_id,
        name=bot.name,
        description=bot.description,
        icon_url=bot.icon_url,
        config=bot.config,
        version=bot.latest_version,
        status="draft",
        published_at=bot.published_at,
        created_at=bot.created_at,
        updated_at=bot.updated_at,
    )


def v1_bot_from_version(
    version: pb.BotVersion, plugins: Mapping[int, ppb.Plugin] | None = None
) -> V1Bot:
    return _v1_bot(
        plugins=plugins or {},
        bot_id=version.bot_id,
        owner_id=version.owner_id,
        space_id=version.space_id,
        name=version.name,
        description=version.description,
        icon_url=version.icon_url,
        config=version.config,
        version=version.version,
        status="online",
        published_at=version.published_at,
        created_at=version.created_at,
        updated_at=version.updated_at,
    )


def _v1_bot(
    *,
    plugins: Mapping[int, ppb.Plugin],
    bot_id: int,
    owner_id: int,
    space_id: int,
    name: str,
    description: str,
    icon_url: str,
    config: pb.BotConfig,
    version: int,
    status: Literal["draft", "online"],
    published_at: int,
    created_at: int,
    updated_at: int,
) -> V1Bot:
    model = config.model
    knowledge_ids = [str(t.knowledge_id) for t in config.tools if t.type == KNOWLEDGE_BASE]
    return V1Bot(
        bot_id=str(bot_id),
        name=name,
        description=description,
        icon_url=icon_url,
        version=str(version),
        status=status,
        model=model.model_id,
        published_at=published_at,
        prompt=config.prompt,
        tools=[
            KnowledgeTool(knowledge_id=str(t.knowledge_id))
            if t.type == KNOWLEDGE_BASE
            else PluginTool(plugin_id=str(t.plugin_id), api_name=t.api_name or None)
            for t in config.tools
        ],
        history_rounds=config.history_rounds,
        max_tool_rounds=config.max_tool_rounds or DEFAULT_MAX_TOOL_ROUNDS,
        created_at=created_at,
        updated_at=updated_at,
        owner_user_id=str(owner_id),
        space_id=str(space_id),
        create_time=created_at,
        update_time=updated_at,
        prompt_info=PromptInfo(prompt=config.prompt),
        model_info=ModelInfo(
            model_id=model.model_id,
            model_name=_model_name(model.model_id),
            temperature=model.temperature if model.HasField("temperature") else None,
            max_tokens=model.max_tokens if model.HasField("max_tokens") else None,
            top_p=model.top_p if model.HasField("top_p") else None,
            context_round=config.history_rounds,
        ),
        onboarding_info=OnboardingInfo(
            prologue=config.onboarding.prologue,
            suggested_questions=list(config.onboarding.suggested_questions),
        ),
        knowledge=Knowledge(
            dataset_ids=knowledge_ids,
            auto_call=config.knowledge.auto_call
            if config.knowledge.HasField("auto_call")
            else True,
            search_strategy=config.knowledge.search_strategy,
            top_k=config.knowledge.top_k,
            min_score=config.knowledge.min_score,
        ),
        plugin_info_list=_plugin_info_list(config, plugins),
        variables=[
            BotVariable(
                key=v.key,
                keyword=v.key,
                description=v.description,
                default_value=v.default_value,
            )
            for v in config.variables
        ],
    )


def _plugin_info_list(config: pb.BotConfig, plugins: Mapping[int, ppb.Plugin]) -> list[PluginInfo]:
    """One entry per bound plugin with the tools bound (all of them for a whole-plugin
    binding). Plugins deleted since the binding, or not looked up, are listed bare."""
    wanted: dict[int, set[int] | None] = {}
    for tool in config.tools:
        if tool.type != PLUGIN:
            continue
        if not tool.api_id:
            wanted[tool.plugin_id] = None
        elif tool.plugin_id not in wanted:
            wanted[tool.plugin_id] = {tool.api_id}
        else:
            chosen = wanted[tool.plugin_id]
            if chosen is not None:
                chosen.add(tool.api_id)
    infos: list[PluginInfo] = []
    for plugin_id, api_ids in wanted.items():
        plugin = plugins.get(plugin_id)
        if plugin is None:
            infos.append(PluginInfo(plugin_id=str(plugin_id)))
            continue
        infos.append(
            PluginInfo(
                plugin_id=str(plugin_id),
                name=plugin.name,
                description=plugin.description,
                api_info_list=[
                    PluginApiInfo(api_id=str(t.api_id), name=t.name, description=t.description)
                    for t in plugin.tools
                    if api_ids is None or t.api_id in api_ids
                ],
            )
        )
    return infos


def v1_summary_from_draft(bot: pb.Bot) -> V1BotSummary:
    return V1BotSummary(
        id=str(bot.id),
        bot_id=str(bot.id),
        name=bot.name,
        description=bot.description,
        icon_url=bot.icon_url,
        # An unpublished bot keeps its versions but is offline until the next publish.
        is_published=bot.latest_version > 0 and not bot.unpublished,
        version=str(bot.latest_version),
        updated_at=bot.updated_at,
        published_at=bot.published_at,
        owner_user_id=str(bot.owner_id),
        space_id=str(bot.space_id),
    )


def v1_summary_from_version(version: pb.BotVersion) -> V1BotSummary:
    return V1BotSummary(
        id=str(version.bot_id),
        bot_id=str(version.bot_id),
        name=version.name,
        description=version.description,
        icon_url=version.icon_url,
        is_published=True,
        version=str(version.version),
        updated_at=version.published_at,
        published_at=version.published_at,
        owner_user_id=str(version.owner_id),
        space_id=str(version.space_id),
    )


def published_bot(version: pb.BotVersion) -> PublishedBot:
    return PublishedBot(
        bot_id=str(version.bot_id),
        bot_name=version.name,
        description=version.description,
        icon_url=version.icon_url,
        publish_time=str(version.published_at),
        version=str(version.version),
    )


_BUILTIN_LABELS = {spec.id: spec.label for spec in BUILTIN_MODELS}


def _model_name(model_id: str) -> str:
    """Built-in models say what they are (the echo model calls no real model); others
    are named by their catalogue id, which the edge knows without the models file."""
    return _BUILTIN_LABELS.get(model_id) or model_id
