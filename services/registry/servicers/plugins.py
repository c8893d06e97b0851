"""The Plugins gRPC servicer: proto in, PluginService calls, proto out. Secrets leave only
through ResolveTools (runners, behind the service credential); every other answer carries
an empty auth value."""

from __future__ import annotations

import json
from typing import Any

from cozeplus.rpc.v1 import plugins_pb2 as ppb
from cozeplus.rpc.v1 import plugins_pb2_grpc as ppb_grpc
from services.registry.paging import PageRequest
from services.registry.plugins import (
    AuthSpec,
    Plugin,
    PluginService,
    PluginSpec,
    ResolvedTool,
    Tool,
)


class PluginsServicer(ppb_grpc.PluginsServicer):
    def __init__(self, service: PluginService) -> None:
        self._plugins = service

    async def CreatePlugin(self, request: ppb.CreatePluginRequest, context: Any) -> ppb.Plugin:
        plugin = await self._plugins.create(
            owner_id=request.owner_id, spec=spec_from_proto(request.spec)
        )
        return plugin_to_proto(plugin)

    async def GetPlugin(self, request: ppb.PluginRef, context: Any) -> ppb.Plugin:
        plugin = await self._plugins.get(owner_id=request.owner_id, plugin_id=request.plugin_id)
        return plugin_to_proto(plugin)

    async def ListPlugins(
        self, request: ppb.ListPluginsRequest, context: Any
    ) -> ppb.ListPluginsResponse:
        page = await self._plugins.list_plugins(
            owner_id=request.owner_id, page=PageRequest.of(request.page_size, request.page_num)
        )
        return ppb.ListPluginsResponse(
            plugins=[plugin_to_proto(p) for p in page.items], total=page.total
        )

    async def UpdatePlugin(self, request: ppb.UpdatePluginRequest, context: Any) -> ppb.Plugin:
        plugin = await self._plugins.update(
            owner_id=request.owner_id,
            plugin_id=request.plugin_id,
            spec=spec_from_proto(request.spec),
        )
        return plugin_to_proto(plugin)

    async def DeletePlugin(self, request: ppb.PluginRef, context: Any) -> ppb.Plugin:
        plugin = await self._plugins.delete(owner_id=request.owner_id, plugin_id=request.plugin_id)
        return plugin_to_proto(plugin)

    async def RefreshPlugin(self, request: ppb.PluginRef, context: Any) -> ppb.Plugin:
        plugin = await self._plugins.refresh(owner_id=request.owner_id, plugin_id=request.plugin_id)
        return plugin_to_proto(plugin)

    async def ResolveTools(
        self, request: ppb.ResolveToolsRequest, context: Any
    ) -> ppb.ResolveToolsResponse:
        tools = await self._plugins.resolve_tools(
            owner_id=request.owner_id, bot_id=request.bot_id, bot_version=request.bot_version
        )
        return ppb.ResolveToolsResponse(tools=[resolved_to_proto(t) for t in tools])


def spec_from_proto(spec: ppb.PluginSpec) -> PluginSpec:
    return PluginSpec(
        name=spec.name,
        description=spec.description,
        type=spec.type,
        openapi=spec.openapi,
        server_url=spec.server_url,
        auth=_auth_from_proto(spec.auth),
        mcp_url=spec.mcp_url,
        mcp_headers=dict(spec.mcp_headers),
        functions_json=spec.functions_json,
    )


def _auth_from_proto(auth: ppb.PluginAuth) -> AuthSpec:
    return AuthSpec(auth.type or "none", auth.location, auth.name, auth.value)


def _auth_to_proto(auth: AuthSpec) -> ppb.PluginAuth:
    return ppb.PluginAuth(type=auth.type, location=auth.location, name=auth.name, value=auth.value)


def _tool_to_proto(tool: Tool) -> ppb.PluginTool:
    return ppb.PluginTool(
        api_id=tool.api_id,
        name=tool.name,
        description=tool.description,
        parameters_json=json.dumps(tool.parameters),
    )


def plugin_to_proto(plugin: Plugin) -> ppb.Plugin:
    return ppb.Plugin(
        id=plugin.id,
        owner_id=plugin.owner_id,
        name=plugin.name,
        description=plugin.description,
        type=plugin.type,
        tools=[_tool_to_proto(t) for t in plugin.tools],
        created_at=plugin.created_at,
        updated_at=plugin.updated_at,
        url=plugin.url,
        # The value is never set on a Plugin; built field by field anyway so no refactor
        # can start leaking it.
        auth=ppb.PluginAuth(
            type=plugin.auth.type, location=plugin.auth.location, name=plugin.auth.name
        ),
    )


def resolved_to_proto(resolved: ResolvedTool) -> ppb.ResolvedTool:
    tool = resolved.tool
    message = ppb.ResolvedTool(
        name=resolved.name,
        description=tool.description,
        parameters_json=json.dumps(tool.parameters),
        plugin_id=resolved.plugin_id,
        api_id=tool.api_id,
        plugin_type=resolved.plugin_type,
        operation_name=tool.name,
        auth=_auth_to_proto(resolved.auth),
        mcp_url=resolved.mcp_url,
        mcp_headers=dict(resolved.mcp_headers),
    )
    if tool.operation:
        operation = tool.operation
        message.http.CopyFrom(
            ppb.HttpOperation(
                method=operation["method"],
                server_url=resolved.server_url,
                path=operation["path"],
                parameters=[
                    ppb.HttpParameter(
                        name=p["name"], location=p["location"], required=p["required"]
                    )
                    for p in operation["parameters"]
                ],
                has_json_body=operation["has_json_body"],
            )
        )
    return message
