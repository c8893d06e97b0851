"""Bot request and response bodies.

Requests take both families' field names (the product document's flat `prompt`/`model`/`tools`
and the official API's `prompt_info`/`model_info_config`/`knowledge`/`plugin_id_list`) on every
route. Responses follow the route's family: on /api ids and versions are JSON numbers, on /v1
they are strings (the official SDKs reject numbers there).
"""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field, model_validator
from pydantic_core import PydanticCustomError

from cozeplus.vocabulary import ToolType
from services.edge.schemas.common import INT32_MAX, Id, NonEmptyStr, RequestModel, ResponseModel

# ------------------------------------------------------------------------------ requests


class PromptInfoIn(RequestModel):
    prompt: str = ""


class ModelInfoConfigIn(RequestModel):
    model_id: str | None = Field(default=None, description="A model id the registry knows.")
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, ge=1, le=INT32_MAX)
    top_p: float | None = Field(default=None, ge=0, le=1)
    context_round: int | None = Field(
        default=None,
        ge=0,
        le=INT32_MAX,
        description="Rounds of history sent to the model (history_rounds).",
    )


class OnboardingInfoIn(RequestModel):
    prologue: str = ""
    suggested_questions: list[str] = Field(default_factory=list)


class VariableIn(RequestModel):
    key: NonEmptyStr = Field(validation_alias=AliasChoices("key", "keyword"))
    description: str = ""
    default_value: str = ""


class ToolIn(RequestModel):
    type: ToolType
    knowledge_id: Id | None = None
    plugin_id: Id | None = None
    api_name: str | None = Field(
        default=None, description="plugin: bind only this tool; absent or empty: every tool."
    )

    @model_validator(mode="after")
    def _id_for_type(self) -> ToolIn:
        if self.type == ToolType.KNOWLEDGE_BASE and self.knowledge_id is None:
            raise PydanticCustomError("tool_id", "a knowledge_base tool needs knowledge_id")
        if self.type == ToolType.PLUGIN and self.plugin_id is None:
            raise PydanticCustomError("tool_id", "a plugin tool needs plugin_id")
        return self


class KnowledgeIn(RequestModel):
    dataset_ids: list[Id] = Field(default_factory=list)
    auto_call: bool | None = Field(
        default=None, description="Retrieve before every answer (default); false: a search tool."
    )
    search_strategy: Literal[0, 1, 20] | None = Field(
        default=None, description="0 semantic, 1 hybrid, 20 full-text."
    )
    top_k: int | None = Field(default=None, ge=1, le=20)
    min_score: float | None = Field(default=None, ge=0, le=1)


class PluginIdIn(RequestModel):
    plugin_id: Id
    # Absent, empty or "0": every tool of the plugin (the SDKs always send the field).
    api_id: str | None = Field(default=None, pattern=r"^[0-9]{0,19}$")


class PluginIdListIn(RequestModel):
    id_list: list[PluginIdIn] = Field(default_factory=list)


class BotConfigIn(RequestModel):
    """Configuration fields; on updates only the fields sent are changed."""

    prompt: str | None = None
    prompt_info: PromptInfoIn | None = None
    model: str | None = Field(default=None, description="Model id, e.g. `echo`.")
    model_info_config: ModelInfoConfigIn | None = None
    history_rounds: int | None = Field(default=None, ge=0, le=INT32_MAX)
    max_tool_rounds: int | None = Field(
        default=None,
        ge=1,
        le=64,
        description="Rounds of tool calls one chat may make before it fails (default 8).",
    )
    onboarding_info: OnboardingInfoIn | None = None
    variables: list[VariableIn] | None = None
    tools: list[ToolIn] | None = None
    knowledge: KnowledgeIn | None = Field(
        default=None, description="Official shape of the knowledge_base tools."
    )
    plugin_id_list: PluginIdListIn | None = Field(
        default=None, description="Official shape of the plugin tools."
    )


class CreateBotRequest(BotConfigIn):
    name: NonEmptyStr
    description: str = ""
    icon_url: str = ""
    space_id: Id | None = Field(default=None, description="Absent: the caller's personal space.")


class UpdateBotRequest(BotConfigIn):
    bot_id: Id
    name: NonEmptyStr | None = None
    description: str | None = None
    icon_url: str | None = None


class BotIdRequest(RequestModel):
    bot_id: Id


# --------------------------------------------------------------------------- /api views


class ApiBotCreated(ResponseModel):
    bot_id: int
    name: str
    description: str
    icon_url: str
    status: Literal["draft"] = "draft"
    created_at: int
    updated_at: int


class ApiBotDisplayInfo(ResponseModel):
    bot_id: int
    name: str
    description: str
    updated_at: int


class ApiBotPublished(ResponseModel):
    bot_id: int
    version: int
    status: Literal["online"] = "online"
    published_at: int


# ---------------------------------------------------------------------------- /v1 views


class KnowledgeTool(ResponseModel):
    type: Literal[ToolType.KNOWLEDGE_BASE] = ToolType.KNOWLEDGE_BASE
    knowledge_id: str


class PluginTool(ResponseModel):
    type: Literal[ToolType.PLUGIN] = ToolType.PLUGIN
    plugin_id: str
    api_name: str | None = Field(
        default=None,
        description="Absent: every tool of the plugin.",
        exclude_if=lambda v: v is None,
    )


class PromptInfo(ResponseModel):
    prompt: str


class ModelInfo(ResponseModel):
    model_id: str
    model_name: str
    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None
    context_round: int


class OnboardingInfo(ResponseModel):
    prologue: str
    suggested_questions: list[str]


class Knowledge(ResponseModel):
    dataset_ids: list[str]
    auto_call: bool = True
    search_strategy: int = 0
    top_k: int = 0
    min_score: float = 0.0


class PluginApiInfo(ResponseModel):
    api_id: str
    name: str
    description: str


class PluginInfo(ResponseModel):
    plugin_id: str
    name: str = ""
    description: str = ""
    icon_url: str = ""
    api_info_list: list[PluginApiInfo] = Field(default_factory=list)


class BotVariable(ResponseModel):
    key: str
    keyword: str
    description: str
    default_value: str
    variable_type: str = "KVVariable"
    channel: str = "custom"
    enable: bool = True
    prompt_enable: bool = True


class V1Bot(ResponseModel):
    """A bot as the product document's detail view and the official Bot object at once."""

    bot_id: str
    name: str
    description: str
    icon_url: str
    version: str = Field(description='Published version ("0": never published).')
    status: Literal["draft", "online"] = Field(
        description="`draft` for the draft view, `online` for a published version."
    )
    model: str
    published_at: int
    prompt: str
    tools: list[KnowledgeTool | PluginTool]
    history_rounds: int
    max_tool_rounds: int = Field(
        description="Rounds of tool calls one chat may make before it fails."
    )
    created_at: int
    updated_at: int
    owner_user_id: str
    space_id: str
    # Official Bot fields.
    create_time: int
    update_time: int
    bot_mode: int = 0
    prompt_info: PromptInfo
    model_info: ModelInfo
    onboarding_info: OnboardingInfo
    knowledge: Knowledge
    plugin_info_list: list[PluginInfo]
    variables: list[BotVariable]


class V1BotSummary(ResponseModel):
    """One entry of GET /v1/bots (the official SimpleBot)."""

    id: str
    bot_id: str
    name: str
    description: str
    icon_url: str
    is_published: bool
    version: str
    updated_at: int
    published_at: int
    owner_user_id: str
    space_id: str


class V1BotList(ResponseModel):
    items: list[V1BotSummary]
    total: int


class PublishedBot(ResponseModel):
    bot_id: str
    bot_name: str
    description: str
    icon_url: str
    publish_time: str = Field(description="Unix seconds, as a numeric string.")
    version: str


class PublishedBotList(ResponseModel):
    space_bots: list[PublishedBot]
    total: int
