"""Bots: drafts, validation, tenancy and publishing.

Tenancy: every call names the calling account (`owner_id`). Another account's bot is
reported as not found, so callers cannot probe which ids exist. A bot lives in its
owner's personal space, whose id equals the owner's id; there are no shared spaces yet.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict
from sqlmodel import Session, col, func, select

from cozeplus.ids import IdGenerator
from cozeplus.model_catalog import ModelCatalog
from cozeplus.vocabulary import ToolType
from services.registry.database import Database
from services.registry.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from services.registry.paging import Page, PageRequest
from services.registry.tables import (
    BotRecord,
    BotUnpublishedRecord,
    BotVersionRecord,
    PluginRecord,
    PluginToolRecord,
)

MAX_NAME_CHARS = 100
MAX_DESCRIPTION_CHARS = 2000
MAX_ICON_URL_CHARS = 2048
MAX_PROMPT_CHARS = 100_000
MAX_TEMPERATURE = 2.0
MAX_MAX_TOKENS = 1_000_000
MAX_HISTORY_ROUNDS = 100
# The agent loop's round limit a bot may set (0 = the default, 8).
MAX_TOOL_ROUNDS = 64
DEFAULT_HISTORY_ROUNDS = 10
MAX_VARIABLE_KEY_CHARS = 64
MAX_PROLOGUE_CHARS = 10_000
MAX_SUGGESTED_QUESTIONS = 10
MAX_UNPUBLISH_REASON_CHARS = 1024
TOOL_TYPES = tuple(ToolType)

# The FieldMask paths UpdateConfig accepts (see registry.proto).
CONFIG_PATHS = frozenset(
    {
        "prompt",
        "model",
        "model.model_id",
        "model.temperature",
        "model.max_tokens",
        "model.top_p",
        "history_rounds",
        "onboarding",
        "variables",
        "tools",
        "max_tool_rounds",
        "knowledge",
    }
)
SEARCH_STRATEGIES = (0, 1, 20)
MAX_KNOWLEDGE_TOP_K = 20


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class ModelSettings(_Frozen):
    # Empty: the registry's default model, resolved when the config is validated.
    model_id: str = ""
    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None


class Onboarding(_Frozen):
    prologue: str = ""
    suggested_questions: tuple[str, ...] = ()


class Variable(_Frozen):
    key: str
    description: str = ""
    default_value: str = ""


class ToolRef(_Frozen):
    type: str
    knowledge_id: int = 0
    plugin_id: int = 0
    # plugin: one tool of it (both filled in once stored), or neither for all its tools.
    api_id: int = 0
    api_name: str = ""


class KnowledgeSettings(_Frozen):
    """How a bot uses its knowledge_base tools (the SDKs' `knowledge` object)."""

    auto_call: bool = True
    # 0 semantic, 1 hybrid, 20 full-text.
    search_strategy: int = 0
    # 0 = the retrieval default.
    top_k: int = 0
    min_score: float = 0.0


class BotConfig(_Frozen):
    """How a bot behaves; stored as JSON in drafts and frozen into versions."""

    prompt: str = ""
    model: ModelSettings = ModelSettings()
    history_rounds: int = DEFAULT_HISTORY_ROUNDS
    onboarding: Onboarding = Onboarding()
    variables: tuple[Variable, ...] = ()
    tools: tuple[ToolRef, ...] = ()
    # 0 = the runner's default (8).
    max_tool_rounds: int = 0
    knowledge: KnowledgeSettings = KnowledgeSettings()


class VersionSnapshot(_Frozen):
    """What a publish freezes. `draft_updated_at` is when the draft was last edited
    before the publish, so detail views show a time that matches the content."""

    name: str
    description: str
    icon_url: str
    config: BotConfig
    draft_updated_at: int


@dataclass(frozen=True)
class Draft:
    id: int
    owner_id: int
    space_id: int
    name: str
    description: str
    icon_url: str
    config: BotConfig
    created_at: int
    updated_at: int
    latest_version: int
    published_at: int
    # Taken offline by unpublish (a bot_unpublished row) until the next publish.
    unpublished: bool


@dataclass(frozen=True)
class PublishedVersion:
    bot_id: int
    version: int
    owner_id: int
    space_id: int
    name: str
    description: str
    icon_url: str
    config: BotConfig
    published_at: int
    created_at: int
    updated_at: int


class BotService:
    def __init__(
        self,
        database: Database,
        ids: IdGenerator,
        catalog: ModelCatalog,
        default_model: str,
        announce_change: Callable[[int], Awaitable[None]] | None = None,
    ) -> None:
        if default_model not in catalog:
            raise ValueError(
                f"default model {default_model!r} is not in the model catalog "
                f"(known: {', '.join(catalog.ids)})"
            )
        self._db = database
        self._ids = ids
        self._catalog = catalog
        self._default_model = default_model
        # Called with the bot id after a publish, unpublish or delete (caches elsewhere).
        self._announce_change = announce_change

    async def create_draft(
        self,
        *,
        owner_id: int,
        space_id: int,
        name: str,
        description: str,
        icon_url: str,
        config: BotConfig | None,
    ) -> Draft:
        _require_owner(owner_id)
        space_id = _resolve_space(owner_id, space_id)
        name = _validate_name(name)
        _validate_description(description)
        _validate_icon_url(icon_url)
        checked_config = self._validate_config(config if config is not None else BotConfig())
        bot_id = self._ids.next_id()

        def work(session: Session) -> Draft:
            bound = _bind_plugins(session, owner_id, checked_config)
            now = int(time.time())
            record = BotRecord(
                id=bot_id,
                owner_id=owner_id,
                space_id=space_id,
                name=name,
                description=description,
                icon_url=icon_url,
                config=bound.model_dump(mode="json"),
                created_at=now,
                updated_at=now,
            )
            session.add(record)
            return _draft_from_record(record, unpublished=False)

        return await self._db.write(work)

    async def update_display_info(
        self,
        *,
        owner_id: int,
        bot_id: int,
        name: str | None,
        description: str | None,
        icon_url: str | None,
    ) -> Draft:
        _require_owner(owner_id)
        _require_bot_id(bot_id)
        if name is not None:
            name = _validate_name(name)
        if description is not None:
            _validate_description(description)
        if icon_url is not None:
            _validate_icon_url(icon_url)

        def work(session: Session) -> Draft:
            record = _load_bot(session, owner_id, bot_id, for_update=True)
            changes = {
                field: value
                for field, value in (
                    ("name", name),
                    ("description", description),
                    ("icon_url", icon_url),
                )
                if value is not None and value != getattr(record, field)
            }
            if changes:
                for field, value in changes.items():
                    setattr(record, field, value)
                record.updated_at = int(time.time())
            return _draft_from_record(record, unpublished=_is_unpublished(session, record.id))

        return await self._db.write(work)

    async def update_config(
        self,
        *,
        owner_id: int,
        bot_id: int,
        config: BotConfig | None,
        mask_paths: Sequence[str],
    ) -> Draft:
        """Replace the fields of the config named in `mask_paths`, or all of it when
        the mask is empty."""
        _require_owner(owner_id)
        _require_bot_id(bot_id)
        unknown = sorted(set(mask_paths) - CONFIG_PATHS)
        if unknown:
            raise InvalidArgument(
                f"update_mask: unknown path {unknown[0]!r} "
                f"(allowed: {', '.join(sorted(CONFIG_PATHS))})"
            )
        if config is None:
            if not mask_paths:
                raise InvalidArgument("config is required")
            config = BotConfig()
        # A full replacement is validated before touching the database; a masked update
        # only once merged, since the stored fields complete it.
        replacement = None if mask_paths else self._validate_config(config)

        def work(session: Session) -> Draft:
            record = _load_bot(session, owner_id, bot_id, for_update=True)
            if replacement is None:
                current = BotConfig.model_validate(record.config)
                merged = self._validate_config(_merge_config(current, config, mask_paths))
            else:
                merged = replacement
            merged = _bind_plugins(session, owner_id, merged)
            new_json = merged.model_dump(mode="json")
            if new_json != record.config:
                record.config = new_json
                record.updated_at = int(time.time())
            return _draft_from_record(record, unpublished=_is_unpublished(session, record.id))

        return await self._db.write(work)

    async def get_draft(self, *, owner_id: int, bot_id: int) -> Draft:
        _require_owner(owner_id)
        _require_bot_id(bot_id)
        return await self._db.read(
            lambda session: _draft_from_record(
                record := _load_bot(session, owner_id, bot_id),
                unpublished=_is_unpublished(session, record.id),
            )
        )

    async def list_drafts(
        self,
        *,
        owner_id: int,
        space_id: int,
        page: PageRequest,
        published: bool | None = None,
    ) -> Page[Draft]:
        """Newest first. space_id 0 lists every space of the owner; `published` keeps only
        bots that are live, i.e. published and not unpublished since (True), or the others:
        never published or unpublished (False)."""
        _require_owner(owner_id)
        if space_id != 0:
            space_id = _resolve_space(owner_id, space_id)

        def work(session: Session) -> Page[Draft]:
            conditions: list[Any] = [BotRecord.owner_id == owner_id, BotRecord.deleted_at == 0]
            if space_id:
                conditions.append(BotRecord.space_id == space_id)
            offline = sa.exists().where(col(BotUnpublishedRecord.bot_id) == col(BotRecord.id))
            if published is not None:
                live = sa.and_(col(BotRecord.latest_version) > 0, ~offline)
                conditions.append(live if published else ~live)
            total = session.exec(select(func.count()).select_from(BotRecord).where(*conditions))
            rows = session.exec(
                select(BotRecord, offline.label("unpublished"))
                .where(*conditions)
                # Ids are time-ordered, so this is creation order without a tie.
                .order_by(col(BotRecord.id).desc())
                .offset(page.offset)
                .limit(page.size)
            )
            return Page([_draft_from_record(r, unpublished=bool(u)) for r, u in rows], total.one())

        return await self._db.read(work)

    async def delete_draft(self, *, owner_id: int, bot_id: int) -> None:
        """Soft delete: the bot, its draft and its versions all become not found."""
        _require_owner(owner_id)
        _require_bot_id(bot_id)

        def work(session: Session) -> None:
            record = _load_bot(session, owner_id, bot_id, for_update=True)
            record.deleted_at = int(time.time())

        await self._db.write(work)
        await self._changed(bot_id)

    async def _changed(self, bot_id: int) -> None:
        if self._announce_change is not None:
            await self._announce_change(bot_id)

    async def publish(self, *, owner_id: int, bot_id: int) -> PublishedVersion:
        _require_owner(owner_id)
        _require_bot_id(bot_id)

        def work(session: Session) -> PublishedVersion:
            # The row lock (PostgreSQL) or the write lock (SQLite, BEGIN IMMEDIATE)
            # serialises publishes of a bot, so each one sees the previous number.
            record = _load_bot(session, owner_id, bot_id, for_update=True)
            config = BotConfig.model_validate(record.config)
            if config.model.model_id not in self._catalog:
                raise FailedPrecondition(
                    f"config.model.model_id: unknown model id {config.model.model_id!r}; "
                    "update the bot's model before publishing"
                )
            now = int(time.time())
            version = BotVersionRecord(
                bot_id=record.id,
                version=record.latest_version + 1,
                snapshot=VersionSnapshot(
                    name=record.name,
                    description=record.description,
                    icon_url=record.icon_url,
                    config=config,
                    draft_updated_at=record.updated_at,
                ).model_dump(mode="json"),
                published_at=now,
            )
            session.add(version)
            record.latest_version = version.version
            record.published_at = now
            # Publishing brings an unpublished bot back online.
            offline = session.get(BotUnpublishedRecord, record.id)
            if offline is not None:
                session.delete(offline)
            session.flush()
            return _version_from_records(record, version)

        published = await self._db.write(work)
        await self._changed(bot_id)
        return published

    async def get_version(self, *, owner_id: int, bot_id: int, version: int) -> PublishedVersion:
        """version 0 is the latest published version."""
        _require_owner(owner_id)
        _require_bot_id(bot_id)
        if version < 0:
            raise InvalidArgument("version must be 0 (latest) or a positive version number")

        def work(session: Session) -> PublishedVersion:
            record = _load_bot(session, owner_id, bot_id)
            if record.latest_version == 0:
                raise NotFound("bot has not been published")
            if version == 0 and session.get(BotUnpublishedRecord, record.id) is not None:
                raise NotFound("bot has been unpublished")
            wanted = version or record.latest_version
            snapshot = session.get(BotVersionRecord, (record.id, wanted))
            if snapshot is None:
                raise NotFound(f"bot has no version {wanted}")
            return _version_from_records(record, snapshot)

        return await self._db.read(work)

    async def list_versions(self, *, owner_id: int, bot_id: int) -> list[PublishedVersion]:
        """Newest first; empty for a bot never published."""
        _require_owner(owner_id)
        _require_bot_id(bot_id)

        def work(session: Session) -> list[PublishedVersion]:
            record = _load_bot(session, owner_id, bot_id)
            versions = session.exec(
                select(BotVersionRecord)
                .where(BotVersionRecord.bot_id == record.id)
                .order_by(col(BotVersionRecord.version).desc())
            )
            return [_version_from_records(record, v) for v in versions]

        return await self._db.read(work)

    async def list_published(
        self, *, owner_id: int, space_id: int, page: PageRequest
    ) -> Page[PublishedVersion]:
        """The latest version of each published, live bot of a space, newest publish first."""
        _require_owner(owner_id)
        space_id = _resolve_space(owner_id, space_id)

        def work(session: Session) -> Page[PublishedVersion]:
            conditions = (
                BotRecord.owner_id == owner_id,
                BotRecord.space_id == space_id,
                BotRecord.deleted_at == 0,
                col(BotRecord.latest_version) > 0,
                ~sa.exists().where(col(BotUnpublishedRecord.bot_id) == col(BotRecord.id)),
            )
            total = session.exec(select(func.count()).select_from(BotRecord).where(*conditions))
            rows = session.exec(
                select(BotRecord, BotVersionRecord)
                .join(
                    BotVersionRecord,
                    sa.and_(
                        col(BotVersionRecord.bot_id) == col(BotRecord.id),
                        col(BotVersionRecord.version) == col(BotRecord.latest_version),
                    ),
                )
                .where(*conditions)
                .order_by(col(BotRecord.published_at).desc(), col(BotRecord.id).desc())
                .offset(page.offset)
                .limit(page.size)
            )
            return Page([_version_from_records(b, v) for b, v in rows], total.one())

        return await self._db.read(work)

    async def unpublish(self, *, owner_id: int, bot_id: int, reason: str) -> int:
        """Takes the bot offline until its next publish; returns when (Unix seconds)."""
        _require_owner(owner_id)
        _require_bot_id(bot_id)
        if len(reason) > MAX_UNPUBLISH_REASON_CHARS:
            raise InvalidArgument(
                f"unpublish_reason must be at most {MAX_UNPUBLISH_REASON_CHARS} characters"
            )

        def work(session: Session) -> int:
            record = _load_bot(session, owner_id, bot_id, for_update=True)
            if record.latest_version == 0:
                raise FailedPrecondition("bot has not been published")
            if session.get(BotUnpublishedRecord, record.id) is not None:
                raise FailedPrecondition("bot is unpublished already")
            now = int(time.time())
            session.add(BotUnpublishedRecord(bot_id=record.id, unpublished_at=now, reason=reason))
            return now

        unpublished_at = await self._db.write(work)
        await self._changed(bot_id)
        return unpublished_at

    def _validate_config(self, config: BotConfig) -> BotConfig:
        """Check every field; returns the config with the default model filled in."""
        if len(config.prompt) > MAX_PROMPT_CHARS:
            raise InvalidArgument(f"config.prompt must be at most {MAX_PROMPT_CHARS} characters")
        model = config.model
        model_id = model.model_id.strip() or self._default_model
        if model_id not in self._catalog:
            raise InvalidArgument(f"config.model.model_id: unknown model id {model_id!r}")
        if model.temperature is not None and not 0 <= model.temperature <= MAX_TEMPERATURE:
            raise InvalidArgument(
                f"config.model.temperature must be between 0 and {MAX_TEMPERATURE:g}"
            )
        if model.top_p is not None and not 0 < model.top_p <= 1:
            raise InvalidArgument("config.model.top_p must be greater than 0 and at most 1")
        if model.max_tokens is not None and not 1 <= model.max_tokens <= MAX_MAX_TOKENS:
            raise InvalidArgument(f"config.model.max_tokens must be between 1 and {MAX_MAX_TOKENS}")
        if not 0 <= config.max_tool_rounds <= MAX_TOOL_ROUNDS:
            raise InvalidArgument(f"config.max_tool_rounds must be between 0 and {MAX_TOOL_ROUNDS}")
        if not 0 <= config.history_rounds <= MAX_HISTORY_ROUNDS:
            raise InvalidArgument(
                f"config.history_rounds must be between 0 and {MAX_HISTORY_ROUNDS}"
            )
        if len(config.onboarding.prologue) > MAX_PROLOGUE_CHARS:
            raise InvalidArgument(
                f"config.onboarding.prologue must be at most {MAX_PROLOGUE_CHARS} characters"
            )
        if len(config.onboarding.suggested_questions) > MAX_SUGGESTED_QUESTIONS:
            raise InvalidArgument(
                f"config.onboarding.suggested_questions: at most {MAX_SUGGESTED_QUESTIONS} allowed"
            )
        seen_keys: set[str] = set()
        for index, variable in enumerate(config.variables):
            field = f"config.variables[{index}].key"
            if not variable.key:
                raise InvalidArgument(f"{field} is required")
            if len(variable.key) > MAX_VARIABLE_KEY_CHARS:
                raise InvalidArgument(
                    f"{field} must be at most {MAX_VARIABLE_KEY_CHARS} characters"
                )
            if variable.key in seen_keys:
                raise InvalidArgument(f"{field}: duplicate key {variable.key!r}")
            seen_keys.add(variable.key)
        for index, tool in enumerate(config.tools):
            field = f"config.tools[{index}]"
            if tool.type == ToolType.KNOWLEDGE_BASE:
                if tool.knowledge_id <= 0:
                    raise InvalidArgument(f"{field}.knowledge_id must be a positive id")
            elif tool.type == ToolType.PLUGIN:
                if tool.plugin_id <= 0:
                    raise InvalidArgument(f"{field}.plugin_id must be a positive id")
            else:
                raise InvalidArgument(
                    f"{field}.type must be one of {', '.join(TOOL_TYPES)}, got {tool.type!r}"
                )
        _validate_knowledge(config.knowledge)
        return config.model_copy(update={"model": model.model_copy(update={"model_id": model_id})})


def _validate_knowledge(knowledge: KnowledgeSettings) -> None:
    if knowledge.search_strategy not in SEARCH_STRATEGIES:
        raise InvalidArgument(
            "config.knowledge.search_strategy must be 0 (semantic), 1 (hybrid) or 20 (full-text)"
        )
    if not 0 <= knowledge.top_k <= MAX_KNOWLEDGE_TOP_K:
        raise InvalidArgument(f"config.knowledge.top_k must be between 0 and {MAX_KNOWLEDGE_TOP_K}")
    if not 0.0 <= knowledge.min_score <= 1.0:
        raise InvalidArgument("config.knowledge.min_score must be between 0 and 1")


def _bind_plugins(session: Session, owner_id: int, config: BotConfig) -> BotConfig:
    """Checks that every plugin a config binds is the owner's and that a named tool exists,
    and completes each single-tool binding with both its api_id and its api_name, so the
    `tools` view (names) and the `plugin_id_list` view (ids) read the same stored list."""
    plugin_ids = {t.plugin_id for t in config.tools if t.type == "plugin"}
    if not plugin_ids:
        return config
    owned = set(
        session.exec(
            select(PluginRecord.id).where(
                col(PluginRecord.id).in_(plugin_ids),
                PluginRecord.owner_id == owner_id,
                PluginRecord.deleted_at == 0,
            )
        )
    )
    tools = session.exec(
        select(PluginToolRecord).where(col(PluginToolRecord.plugin_id).in_(owned))
    ).all()
    by_id = {(r.plugin_id, r.id): r for r in tools}
    by_name = {(r.plugin_id, r.name): r for r in tools}
    bound: list[ToolRef] = []
    for index, tool in enumerate(config.tools):
        if tool.type != "plugin":
            bound.append(tool)
            continue
        field = f"config.tools[{index}]"
        if tool.plugin_id not in owned:
            raise NotFound(f"{field}: plugin {tool.plugin_id} not found")
        if not tool.api_id and not tool.api_name:
            bound.append(tool)
            continue
        record = (
            by_id.get((tool.plugin_id, tool.api_id))
            if tool.api_id
            else by_name.get((tool.plugin_id, tool.api_name))
        )
        if record is None or (tool.api_name and record.name != tool.api_name):
            wanted = f"api_id {tool.api_id}" if tool.api_id else f"api_name {tool.api_name!r}"
            raise InvalidArgument(f"{field}: plugin {tool.plugin_id} has no tool with {wanted}")
        bound.append(tool.model_copy(update={"api_id": record.id, "api_name": record.name}))
    return config.model_copy(update={"tools": tuple(bound)})


def _merge_config(current: BotConfig, patch: BotConfig, paths: Sequence[str]) -> BotConfig:
    """FieldMask semantics: a listed field takes the patch's value, even an unset one."""
    top: dict[str, Any] = {}
    model: dict[str, Any] = {}
    for path in paths:
        head, _, tail = path.partition(".")
        if tail:
            model[tail] = getattr(patch.model, tail)
        else:
            top[head] = getattr(patch, head)
    merged = current.model_copy(update=top)
    if model:
        merged = merged.model_copy(update={"model": merged.model.model_copy(update=model)})
    return merged


def _require_owner(owner_id: int) -> None:
    if owner_id <= 0:
        raise InvalidArgument("owner_id is required")


def _require_bot_id(bot_id: int) -> None:
    if bot_id <= 0:
        raise InvalidArgument("bot_id is required")


def _resolve_space(owner_id: int, space_id: int) -> int:
    if space_id in (0, owner_id):
        return owner_id
    raise PermissionDenied("space_id: you can only use your personal space")


def _validate_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise InvalidArgument("name is required")
    if len(name) > MAX_NAME_CHARS:
        raise InvalidArgument(f"name must be at most {MAX_NAME_CHARS} characters")
    return name


def _validate_description(description: str) -> None:
    if len(description) > MAX_DESCRIPTION_CHARS:
        raise InvalidArgument(f"description must be at most {MAX_DESCRIPTION_CHARS} characters")


def _validate_icon_url(icon_url: str) -> None:
    if not icon_url:
        return
    if len(icon_url) > MAX_ICON_URL_CHARS:
        raise InvalidArgument(f"icon_url must be at most {MAX_ICON_URL_CHARS} characters")
    try:
        parts = urlsplit(icon_url)
    except ValueError:
        parts = None
    if (
        parts is None
        or parts.scheme not in ("http", "https")
        or not parts.hostname
        or any(c.isspace() for c in icon_url)
    ):
        raise InvalidArgument("icon_url must be an http or https URL")


def _load_bot(
    session: Session, owner_id: int, bot_id: int, *, for_update: bool = False
) -> BotRecord:
    query = select(BotRecord).where(
        BotRecord.id == bot_id, BotRecord.owner_id == owner_id, BotRecord.deleted_at == 0
    )
    if for_update:
        query = query.with_for_update()
    record = session.exec(query).one_or_none()
    if record is None:
        raise NotFound(f"bot {bot_id} not found")
    return record


def _is_unpublished(session: Session, bot_id: int) -> bool:
    return session.get(BotUnpublishedRecord, bot_id) is not None


def _draft_from_record(record: BotRecord, *, unpublished: bool) -> Draft:
    return Draft(
        id=record.id,
        owner_id=record.owner_id,
        space_id=record.space_id,
        name=record.name,
        description=record.description,
        icon_url=record.icon_url,
        config=BotConfig.model_validate(record.config),
        created_at=record.created_at,
        updated_at=record.updated_at,
        latest_version=record.latest_version,
        published_at=record.published_at,
        unpublished=unpublished,
    )


def _version_from_records(bot: BotRecord, version: BotVersionRecord) -> PublishedVersion:
    snapshot = VersionSnapshot.model_validate(version.snapshot)
    return PublishedVersion(
        bot_id=bot.id,
        version=version.version,
        owner_id=bot.owner_id,
        space_id=bot.space_id,
        name=snapshot.name,
        description=snapshot.description,
        icon_url=snapshot.icon_url,
        config=snapshot.config,
        published_at=version.published_at,
        created_at=bot.created_at,
        updated_at=snapshot.draft_updated_at,
    )
