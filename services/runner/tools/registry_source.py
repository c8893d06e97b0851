"""The tools of a chat's bot, as the registry's Plugins service resolves them.

Minimal version written by the agent loop for `local` functions; the plugins work adds the
server-side kinds (openapi, mcp) here. A registry that does not serve Plugins yet (an older
one) means "no tools".
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import grpc

from cozeplus.rpc.v1 import plugins_pb2 as ppb
from cozeplus.rpc.v1 import registry_pb2 as pb
from cozeplus.vocabulary import PluginType, ToolType
from services.runner.tools.base import Tool
from services.runner.tools.local import LocalTool

if TYPE_CHECKING:
    from cozeplus.rpc.v1.plugins_pb2_grpc import PluginsAsyncStub

log = logging.getLogger("cozeplus.runner.tools")

# Builds the Tool of one resolved tool of a kind; kinds without a builder are skipped.
ToolBuilder = Callable[[ppb.ResolvedTool], Tool]
BUILDERS: dict[str, ToolBuilder] = {PluginType.LOCAL: LocalTool.from_resolved}


class RegistryToolSource:
    def __init__(self, plugins: PluginsAsyncStub) -> None:
        self._plugins = plugins

    async def tools_for(
        self, *, owner_id: int, bot_id: int, bot_version: int, config: pb.BotConfig
    ) -> Sequence[Tool]:
        if not any(t.type == ToolType.PLUGIN for t in config.tools):
            return ()
        try:
            resolved = await self._plugins.ResolveTools(
                ppb.ResolveToolsRequest(owner_id=owner_id, bot_id=bot_id, bot_version=bot_version)
            )
        except grpc.aio.AioRpcError as err:
            if err.code() == grpc.StatusCode.UNIMPLEMENTED:
                log.warning(
                    "the registry does not serve Plugins: bot %d runs without tools", bot_id
                )
                return ()
            raise
        tools: list[Tool] = []
        for item in resolved.tools:
            builder = BUILDERS.get(item.plugin_type)
            if builder is None:
                log.warning(
                    "bot %d: tool %r of type %r is not supported",
                    bot_id,
                    item.name,
                    item.plugin_type,
                )
                continue
            tools.append(builder(item))
        return tools
