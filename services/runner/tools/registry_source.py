"""The ToolSource of plugin tools: asks the registry which tools a bot version binds
(Plugins.ResolveTools, secrets included) and builds an executor per plugin type. A registry
that does not serve Plugins yet (an older one) means "no tools"."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import grpc

from cozeplus.outbound import OutboundPolicy
from cozeplus.rpc.v1 import plugins_pb2 as ppb
from cozeplus.rpc.v1 import registry_pb2 as pb
from cozeplus.vocabulary import PluginType, ToolType
from services.runner.tools.base import Tool
from services.runner.tools.local import LocalTool
from services.runner.tools.mcp import McpSessions, McpTool
from services.runner.tools.openapi import OpenApiTool, RunHttpClient

if TYPE_CHECKING:
    from cozeplus.rpc.v1.plugins_pb2_grpc import PluginsAsyncStub

log = logging.getLogger("cozeplus.runner.tools")


class RegistryToolSource:
    def __init__(self, plugins: PluginsAsyncStub, policy: OutboundPolicy) -> None:
        self._plugins = plugins
        self._policy = policy

    async def tools_for(
        self, *, owner_id: int, bot_id: int, bot_version: int, config: pb.BotConfig
    ) -> Sequence[Tool]:
        if not any(t.type == ToolType.PLUGIN for t in config.tools):
            return []  # no round trip for the common case
        try:
            reply = await self._plugins.ResolveTools(
                ppb.ResolveToolsRequest(owner_id=owner_id, bot_id=bot_id, bot_version=bot_version)
            )
        except grpc.aio.AioRpcError as err:
            if err.code() == grpc.StatusCode.UNIMPLEMENTED:
                log.warning(
                    "the registry does not serve Plugins: bot %d runs without tools", bot_id
                )
                return []
            raise
        # What one chat run's calls share: an HTTP client for its OpenAPI tools, a session
        # per MCP server (closed when the run ends: services/runner/tools/openapi.py, mcp.py).
        http, sessions = RunHttpClient(self._policy), McpSessions(self._policy)
        return [self._tool(resolved, http, sessions) for resolved in reply.tools]

    def _tool(self, resolved: ppb.ResolvedTool, http: RunHttpClient, sessions: McpSessions) -> Tool:
        kind = PluginType(resolved.plugin_type)
        if kind == PluginType.OPENAPI:
            return OpenApiTool(resolved, self._policy, http)
        if kind == PluginType.MCP:
            return McpTool(resolved, self._policy, sessions)
        return LocalTool.from_resolved(resolved)
