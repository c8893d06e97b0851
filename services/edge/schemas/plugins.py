"""/v1/plugins request and response bodies (wire contract section 7). Ids are strings, as on
every /v1 route; secrets are accepted and never returned."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from services.edge.schemas.common import NonEmptyStr, RequestModel, ResponseModel


class PluginAuthIn(RequestModel):
    type: Literal["none", "api_key", "bearer"] = "none"
    location: Literal["header", "query"] | None = None
    name: str | None = None
    value: str | None = Field(
        default=None, description="The secret: stored encrypted, never returned."
    )


class LocalFunctionIn(RequestModel):
    name: str
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object"})


class PluginIn(RequestModel):
    name: NonEmptyStr
    description: str = ""
    type: Literal["openapi", "mcp", "local"]
    openapi: str | None = Field(
        default=None, description="openapi: an OpenAPI 3.0/3.1 document as JSON or YAML text."
    )
    server_url: str | None = Field(default=None, description="openapi: overrides `servers`.")
    auth: PluginAuthIn | None = None
    url: str | None = Field(default=None, description="mcp: the streamable-HTTP server URL.")
    headers: dict[str, str] | None = Field(
        default=None, description="mcp: sent with every request (secrets, never returned)."
    )
    functions: list[LocalFunctionIn] | None = Field(
        default=None, description="local: functions the client runs (requires_action)."
    )


class PluginToolOut(ResponseModel):
    api_id: str
    name: str
    description: str
    parameters: dict[str, Any]


class PluginAuthOut(ResponseModel):
    type: str
    location: str = ""
    name: str = ""


class PluginOut(ResponseModel):
    plugin_id: str
    name: str
    description: str
    type: str
    tools: list[PluginToolOut]
    created_at: int
    updated_at: int
    url: str = Field(default="", description="openapi: the server; mcp: the server's URL.")
    auth: PluginAuthOut | None = Field(
        default=None, description="openapi: the auth type and where it goes, never its value."
    )


class PluginList(ResponseModel):
    total: int
    items: list[PluginOut]
