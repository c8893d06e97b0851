"""Plugins: sets of tools owned by an account, and the tools a bot binds (wire contract §7).

Tenancy as for bots: every call names the calling account, and another account's plugin
is not found. Secrets (auth values, MCP headers) are sealed before they reach the
database, never leave in a `Plugin`, and are opened only by `resolve_tools`, which runners
call to make the calls.

A create or update runs as steps: validate the spec, build the tools (parse the OpenAPI
document, ask the MCP server, or check the local functions), then store plugin and tools
in one transaction, keeping the api_id of every tool whose name is unchanged.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

import jsonschema
from sqlmodel import Session, col, func, select

from cozeplus.ids import IdGenerator
from cozeplus.vocabulary import PluginType, ToolType
from services.registry.bots import BotConfig
from services.registry.database import Database
from services.registry.errors import InvalidArgument, NotFound
from services.registry.openapi_import import TOOL_NAME, import_openapi
from services.registry.paging import Page, PageRequest
from services.registry.secret_box import SecretBox
from services.registry.tables import (
    BotRecord,
    BotVersionRecord,
    PluginRecord,
    PluginToolRecord,
)

MAX_NAME_CHARS = 100
MAX_DESCRIPTION_CHARS = 2000
MAX_URL_CHARS = 2048
MAX_FUNCTIONS = 128
MAX_FUNCTIONS_JSON_BYTES = 256_000
MAX_HEADERS = 32
AUTH_TYPES = ("none", "api_key", "bearer")
AUTH_LOCATIONS = ("header", "query")
_NOT_NAME_CHARS = re.compile(r"[^A-Za-z0-9_-]+")


@dataclass(frozen=True)
class AuthSpec:
    type: str = "none"
    location: str = ""
    name: str = ""
    # The secret; never returned.
    value: str = ""


@dataclass(frozen=True)
class PluginSpec:
    name: str
    description: str
    type: str
    openapi: str = ""
    server_url: str = ""
    auth: AuthSpec = AuthSpec()
    mcp_url: str = ""
    mcp_headers: Mapping[str, str] = field(default_factory=dict)
    functions_json: str = ""


@dataclass(frozen=True)
class Tool:
    api_id: int
    name: str
    description: str
    parameters: dict[str, Any]
    # openapi: {method, path, parameters, has_json_body}; {} otherwise.
    operation: dict[str, Any]


@dataclass(frozen=True)
class Plugin:
    id: int
    owner_id: int
    name: str
    description: str
    type: str
    url: str
    auth: AuthSpec  # value always ""
    tools: tuple[Tool, ...]
    created_at: int
    updated_at: int


@dataclass(frozen=True)
class ResolvedTool:
    """One tool of a bot, secrets included: for runners only."""

    name: str
    tool: Tool
    plugin_id: int
    plugin_type: str
    server_url: str
    auth: AuthSpec
    mcp_url: str
    mcp_headers: Mapping[str, str]


@dataclass(frozen=True)
class DiscoveredTool:
    name: str
    description: str
    input_schema: dict[str, Any]


class ToolDiscovery(Protocol):
    """Asks an MCP server for its tools; raises InvalidArgument saying why it could not."""

    async def discover(self, url: str, headers: Mapping[str, str]) -> list[DiscoveredTool]: ...


@dataclass(frozen=True)
class _Secrets:
    auth_value: str = ""
    mcp_headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Built:
    """A validated spec, ready to store."""

    url: str
    document: str
    auth: AuthSpec
    secrets: _Secrets
    tools: list[Tool]  # api_id 0: assigned when stored


class PluginService:
    def __init__(
        self,
        database: Database,
        ids: IdGenerator,
        secrets: SecretBox,
        discovery: ToolDiscovery,
    ) -> None:
        self._db = database
        self._ids = ids
        self._box = secrets
        self._discovery = discovery

    # ------------------------------------------------------------------ commands

    async def create(self, *, owner_id: int, spec: PluginSpec) -> Plugin:
        _require_owner(owner_id)
        built = await self._build(spec, previous=None)
        plugin_id = self._ids.next_id()

        def work(session: Session) -> Plugin:
            now = int(time.time())
            record = PluginRecord(
                id=plugin_id,
                owner_id=owner_id,
                name=spec.name.strip(),
                description=spec.description,
                type=spec.type,
                url=built.url,
                document=built.document,
                auth_type=built.auth.type,
                auth_location=built.auth.location,
                auth_name=built.auth.name,
                sealed_secrets=self._seal(built.secrets),
                created_at=now,
                updated_at=now,
            )
            session.add(record)
            session.flush()
            tools = self._store_tools(session, plugin_id, built.tools)
            return _plugin(record, tools)

        return await self._db.write(work)

    async def update(self, *, owner_id: int, plugin_id: int, spec: PluginSpec) -> Plugin:
        """Re-import. Omitted secrets (an empty auth value, no MCP headers) and an omitted
        OpenAPI document keep the stored ones: clients never see them to send them back."""
        _require_owner(owner_id)
        current = await self._db.read(lambda s: _load_plugin(s, owner_id, plugin_id))
        if spec.type != current.type:
            raise InvalidArgument(
                f"type: a plugin's type cannot change ({current.type} -> {spec.type or '?'})"
            )
        built = await self._build(spec, previous=current)
        return await self._replace(owner_id, plugin_id, spec, built)

    async def refresh(self, *, owner_id: int, plugin_id: int) -> Plugin:
        """mcp: discover the server's tools again (api_ids of kept names stay)."""
        _require_owner(owner_id)
        current = await self._db.read(lambda s: _load_plugin(s, owner_id, plugin_id))
        if current.type != PluginType.MCP:
            raise InvalidArgument(f"only mcp plugins can be refreshed (this one is {current.type})")
        spec = PluginSpec(
            name=current.name,
            description=current.description,
            type=current.type,
            mcp_url=current.url,
        )
        built = await self._build(spec, previous=current)
        return await self._replace(owner_id, plugin_id, spec, built)

    async def delete(self, *, owner_id: int, plugin_id: int) -> Plugin:
        """Soft delete: bots that bind it simply stop seeing its tools."""
        _require_owner(owner_id)

        def work(session: Session) -> Plugin:
            record = _load_plugin(session, owner_id, plugin_id, for_update=True)
            tools = _load_tools(session, record.id)
            record.deleted_at = int(time.time())
            return _plugin(record, tools)

        return await self._db.write(work)

    # ------------------------------------------------------------------- queries

    async def get(self, *, owner_id: int, plugin_id: int) -> Plugin:
        _require_owner(owner_id)

        def work(session: Session) -> Plugin:
            record = _load_plugin(session, owner_id, plugin_id)
            return _plugin(record, _load_tools(session, record.id))

        return await self._db.read(work)

    async def list_plugins(self, *, owner_id: int, page: PageRequest) -> Page[Plugin]:
        """Newest first."""
        _require_owner(owner_id)

        def work(session: Session) -> Page[Plugin]:
            conditions = (PluginRecord.owner_id == owner_id, PluginRecord.deleted_at == 0)
            total = session.exec(select(func.count()).select_from(PluginRecord).where(*conditions))
            records = session.exec(
                select(PluginRecord)
                .where(*conditions)
                .order_by(col(PluginRecord.id).desc())
                .offset(page.offset)
                .limit(page.size)
            ).all()
            return Page([_plugin(r, _load_tools(session, r.id)) for r in records], total.one())

        return await self._db.read(work)

    async def resolve_tools(
        self, *, owner_id: int, bot_id: int, bot_version: int
    ) -> list[ResolvedTool]:
        """The plugin tools a bot version (0 = its draft) binds, in binding order, each
        under a name unique within the bot; plugins deleted since are skipped."""
        _require_owner(owner_id)
        if bot_id <= 0:
            raise InvalidArgument("bot_id is required")

        def work(session: Session) -> list[tuple[PluginRecord, Tool]]:
            config = _bot_config(session, owner_id, bot_id, bot_version)
            picked: list[tuple[PluginRecord, Tool]] = []
            seen: set[tuple[int, int]] = set()
            records: dict[int, tuple[PluginRecord, list[Tool]] | None] = {}
            for ref in config.tools:
                if ref.type != ToolType.PLUGIN:
                    continue
                if ref.plugin_id not in records:
                    record = _find_plugin(session, owner_id, ref.plugin_id)
                    records[ref.plugin_id] = (
                        None if record is None else (record, _load_tools(session, record.id))
                    )
                loaded = records[ref.plugin_id]
                if loaded is None:
                    continue
                record, tools = loaded
                for tool in tools:
                    if ref.api_id and tool.api_id != ref.api_id:
                        continue
                    if (record.id, tool.api_id) not in seen:
                        seen.add((record.id, tool.api_id))
                        picked.append((record, tool))
            return picked

        picked = await self._db.read(work)
        names = _unique_names([(record.name, tool.name) for record, tool in picked])
        resolved: list[ResolvedTool] = []
        for (record, tool), name in zip(picked, names, strict=True):
            secrets = self._open(record.sealed_secrets)
            resolved.append(
                ResolvedTool(
                    name=name,
                    tool=tool,
                    plugin_id=record.id,
                    plugin_type=record.type,
                    server_url=record.url if record.type == PluginType.OPENAPI else "",
                    auth=AuthSpec(
                        record.auth_type, record.auth_location, record.auth_name, secrets.auth_value
                    ),
                    mcp_url=record.url if record.type == PluginType.MCP else "",
                    mcp_headers=dict(secrets.mcp_headers),
                )
            )
        return resolved

    # ------------------------------------------------------------------- steps

    async def _build(self, spec: PluginSpec, previous: PluginRecord | None) -> _Built:
        _validate_common(spec)
        old = self._open(previous.sealed_secrets) if previous is not None else _Secrets()
        if spec.type == PluginType.OPENAPI:
            document = spec.openapi or (previous.document if previous is not None else "")
            if not document:
                raise InvalidArgument("openapi: the OpenAPI document is required")
            # CPU-bound (parse, validate): off the event loop, which serves every other RPC.
            imported = await asyncio.to_thread(import_openapi, document, spec.server_url)
            auth = _validate_auth(spec.auth, keep_value=old.auth_value)
            tools = [
                Tool(
                    api_id=0,
                    name=op.name,
                    description=op.description,
                    parameters=op.schema,
                    operation={
                        "method": op.method,
                        "path": op.path,
                        "parameters": [
                            {"name": p.name, "location": p.location, "required": p.required}
                            for p in op.parameters
                        ],
                        "has_json_body": op.has_json_body,
                    },
                )
                for op in imported.operations
            ]
            return _Built(imported.server_url, document, _public(auth), _Secrets(auth.value), tools)
        if spec.type == PluginType.MCP:
            url = _validate_mcp_url(spec.mcp_url)
            headers = dict(spec.mcp_headers) if spec.mcp_headers else dict(old.mcp_headers)
            _validate_headers(headers)
            discovered = await self._discovery.discover(url, headers)
            tools = [
                Tool(0, t.name, t.description[:MAX_DESCRIPTION_CHARS], t.input_schema, {})
                for t in discovered
            ]
            _check_tool_names([t.name for t in tools], "mcp: server tool")
            return _Built(url, "", AuthSpec(), _Secrets(mcp_headers=headers), tools)
        if spec.type == PluginType.LOCAL:
            return _Built("", "", AuthSpec(), _Secrets(), _local_functions(spec.functions_json))
        raise InvalidArgument(
            f"type must be one of {', '.join(t.value for t in PluginType)}, got {spec.type!r}"
        )

    async def _replace(
        self, owner_id: int, plugin_id: int, spec: PluginSpec, built: _Built
    ) -> Plugin:
        def work(session: Session) -> Plugin:
            record = _load_plugin(session, owner_id, plugin_id, for_update=True)
            record.name = spec.name.strip()
            record.description = spec.description
            record.url = built.url
            record.document = built.document
            record.auth_type = built.auth.type
            record.auth_location = built.auth.location
            record.auth_name = built.auth.name
            record.sealed_secrets = self._seal(built.secrets)
            record.updated_at = int(time.time())
            tools = self._store_tools(session, plugin_id, built.tools)
            return _plugin(record, tools)

        return await self._db.write(work)

    def _store_tools(self, session: Session, plugin_id: int, tools: Sequence[Tool]) -> list[Tool]:
        """Replaces a plugin's tools; a tool whose name existed keeps its id (api_id)."""
        existing = {r.name: r for r in _tool_records(session, plugin_id)}
        wanted = {t.name for t in tools}
        for name, row in existing.items():
            if name not in wanted:
                session.delete(row)
        session.flush()
        stored: list[Tool] = []
        for position, tool in enumerate(tools):
            found = existing.get(tool.name)
            if found is None:
                row = PluginToolRecord(
                    id=self._ids.next_id(),
                    plugin_id=plugin_id,
                    name=tool.name,
                    description=tool.description,
                    parameters=tool.parameters,
                    operation=tool.operation,
                    position=position,
                )
                session.add(row)
            else:
                row = found
                row.description = tool.description
                row.parameters = tool.parameters
                row.operation = tool.operation
                row.position = position
            stored.append(_tool(row))
        return stored

    def _seal(self, secrets: _Secrets) -> str:
        if not secrets.auth_value and not secrets.mcp_headers:
            return ""
        return self._box.seal(
            json.dumps({"auth_value": secrets.auth_value, "mcp_headers": dict(secrets.mcp_headers)})
        )

    def _open(self, sealed: str) -> _Secrets:
        if not sealed:
            return _Secrets()
        data = json.loads(self._box.open(sealed))
        return _Secrets(str(data.get("auth_value", "")), dict(data.get("mcp_headers") or {}))


# ------------------------------------------------------------------- validation


def _require_owner(owner_id: int) -> None:
    if owner_id <= 0:
        raise InvalidArgument("owner_id is required")


def _validate_common(spec: PluginSpec) -> None:
    name = spec.name.strip()
    if not name:
        raise InvalidArgument("name is required")
    if len(name) > MAX_NAME_CHARS:
        raise InvalidArgument(f"name must be at most {MAX_NAME_CHARS} characters")
    if len(spec.description) > MAX_DESCRIPTION_CHARS:
        raise InvalidArgument(f"description must be at most {MAX_DESCRIPTION_CHARS} characters")


def _validate_auth(auth: AuthSpec, *, keep_value: str) -> AuthSpec:
    kind = auth.type or "none"
    if kind not in AUTH_TYPES:
        raise InvalidArgument(f"auth.type must be one of {', '.join(AUTH_TYPES)}, got {kind!r}")
    if kind == "none":
        return AuthSpec()
    value = auth.value or keep_value
    if not value:
        raise InvalidArgument(f"auth.value is required for {kind} auth")
    if any(c in value for c in "\r\n"):
        raise InvalidArgument("auth.value must not contain line breaks")
    if kind == "bearer":
        return AuthSpec("bearer", "header", "Authorization", value)
    location = auth.location or "header"
    if location not in AUTH_LOCATIONS:
        raise InvalidArgument(
            f"auth.location must be one of {', '.join(AUTH_LOCATIONS)}, got {location!r}"
        )
    if not auth.name or not re.fullmatch(r"[A-Za-z0-9_.-]{1,255}", auth.name):
        raise InvalidArgument("auth.name (the header or query parameter) is required")
    return AuthSpec("api_key", location, auth.name, value)


def _public(auth: AuthSpec) -> AuthSpec:
    return AuthSpec(auth.type, auth.location, auth.name, "")


def _validate_mcp_url(url: str) -> str:
    url = url.strip()
    if not url:
        raise InvalidArgument("url: the MCP server's URL is required")
    parts = urlsplit(url)
    if len(url) > MAX_URL_CHARS or parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidArgument("url must be an absolute http(s) URL")
    return url


def _validate_headers(headers: Mapping[str, str]) -> None:
    if len(headers) > MAX_HEADERS:
        raise InvalidArgument(f"headers: at most {MAX_HEADERS} allowed")
    for name, value in headers.items():
        if not re.fullmatch(r"[A-Za-z0-9!#$%&'*+.^_`|~-]{1,255}", name):
            raise InvalidArgument(f"headers: {name[:100]!r} is not a valid header name")
        if any(c in value for c in "\r\n\0"):
            raise InvalidArgument(f"headers: the value of {name!r} must not contain line breaks")


def _check_tool_names(names: Sequence[str], what: str) -> None:
    seen: set[str] = set()
    for name in names:
        if not TOOL_NAME.fullmatch(name):
            raise InvalidArgument(
                f"{what} name {name[:100]!r} must be 1-64 letters, digits, _ or -"
            )
        if name in seen:
            raise InvalidArgument(f"{what} name {name!r} is used twice")
        seen.add(name)


def _local_functions(text: str) -> list[Tool]:
    if len(text.encode()) > MAX_FUNCTIONS_JSON_BYTES:
        raise InvalidArgument(f"functions: larger than {MAX_FUNCTIONS_JSON_BYTES} bytes")
    try:
        functions = json.loads(text) if text else None
    except (ValueError, RecursionError):
        raise InvalidArgument("functions: not valid JSON") from None
    if not isinstance(functions, list) or not functions:
        raise InvalidArgument("functions: a non-empty list of {name, description, parameters}")
    if len(functions) > MAX_FUNCTIONS:
        raise InvalidArgument(f"functions: at most {MAX_FUNCTIONS} allowed")
    tools: list[Tool] = []
    for index, function in enumerate(functions):
        where = f"functions[{index}]"
        if not isinstance(function, dict):
            raise InvalidArgument(f"{where} must be an object")
        name = function.get("name")
        description = function.get("description", "")
        parameters = function.get("parameters", {"type": "object", "properties": {}})
        if not isinstance(name, str):
            raise InvalidArgument(f"{where}.name is required")
        if not isinstance(description, str) or len(description) > MAX_DESCRIPTION_CHARS:
            raise InvalidArgument(
                f"{where}.description must be a string of at most {MAX_DESCRIPTION_CHARS} chars"
            )
        if not isinstance(parameters, dict) or parameters.get("type") != "object":
            raise InvalidArgument(f'{where}.parameters must be a JSON Schema with "type": "object"')
        try:
            jsonschema.Draft202012Validator.check_schema(parameters)
        except jsonschema.SchemaError as exc:
            raise InvalidArgument(
                f"{where}.parameters is not a valid JSON Schema: {exc.message[:200]}"
            ) from None
        except RecursionError:
            raise InvalidArgument(f"{where}.parameters is nested too deeply") from None
        tools.append(Tool(0, name, description, parameters, {}))
    _check_tool_names([t.name for t in tools], "functions:")
    return tools


# ------------------------------------------------------------------- storage


def _find_plugin(session: Session, owner_id: int, plugin_id: int) -> PluginRecord | None:
    return session.exec(
        select(PluginRecord).where(
            PluginRecord.id == plugin_id,
            PluginRecord.owner_id == owner_id,
            PluginRecord.deleted_at == 0,
        )
    ).one_or_none()


def _load_plugin(
    session: Session, owner_id: int, plugin_id: int, *, for_update: bool = False
) -> PluginRecord:
    if plugin_id <= 0:
        raise InvalidArgument("plugin_id is required")
    query = select(PluginRecord).where(
        PluginRecord.id == plugin_id,
        PluginRecord.owner_id == owner_id,
        PluginRecord.deleted_at == 0,
    )
    if for_update:
        query = query.with_for_update()
    record = session.exec(query).one_or_none()
    if record is None:
        raise NotFound(f"plugin {plugin_id} not found")
    return record


def _tool_records(session: Session, plugin_id: int) -> Sequence[PluginToolRecord]:
    return session.exec(
        select(PluginToolRecord)
        .where(PluginToolRecord.plugin_id == plugin_id)
        .order_by(col(PluginToolRecord.position), col(PluginToolRecord.id))
    ).all()


def _load_tools(session: Session, plugin_id: int) -> list[Tool]:
    return [_tool(r) for r in _tool_records(session, plugin_id)]


def _bot_config(session: Session, owner_id: int, bot_id: int, version: int) -> BotConfig:
    bot = session.exec(
        select(BotRecord).where(
            BotRecord.id == bot_id, BotRecord.owner_id == owner_id, BotRecord.deleted_at == 0
        )
    ).one_or_none()
    if bot is None:
        raise NotFound(f"bot {bot_id} not found")
    if version == 0:
        return BotConfig.model_validate(bot.config)
    snapshot = session.get(BotVersionRecord, (bot_id, version))
    if snapshot is None:
        raise NotFound(f"bot has no version {version}")
    return BotConfig.model_validate(snapshot.snapshot["config"])


def _tool(row: PluginToolRecord) -> Tool:
    return Tool(row.id, row.name, row.description, dict(row.parameters), dict(row.operation))


def _plugin(record: PluginRecord, tools: Sequence[Tool]) -> Plugin:
    return Plugin(
        id=record.id,
        owner_id=record.owner_id,
        name=record.name,
        description=record.description,
        type=record.type,
        url=record.url,
        auth=AuthSpec(record.auth_type, record.auth_location, record.auth_name, ""),
        tools=tuple(tools),
        created_at=record.created_at,
        updated_at=record.updated_at,
    )


def _unique_names(pairs: Sequence[tuple[str, str]]) -> list[str]:
    """Tool names as the model sees them: the operation's name, or, when two tools of the bot
    share it, `<plugin name>_<operation name>` in the OpenAI function-name charset (<= 64
    chars, a numeric suffix if even that clashes)."""
    counts: dict[str, int] = {}
    for _, name in pairs:
        counts[name] = counts.get(name, 0) + 1
    taken: set[str] = set()
    names: list[str] = []
    for plugin_name, name in pairs:
        candidate = name
        if counts[name] > 1:
            prefix = _NOT_NAME_CHARS.sub("_", plugin_name).strip("_") or "plugin"
            room = 64 - len(name) - 1
            candidate = f"{prefix[:room]}_{name}" if room > 0 else name
        base, suffix = candidate, 2
        while candidate in taken:
            tail = f"_{suffix}"
            candidate = base[: 64 - len(tail)] + tail
            suffix += 1
        taken.add(candidate)
        names.append(candidate)
    return names
