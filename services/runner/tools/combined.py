"""Several ToolSources as one: a bot's plugin tools and its knowledge search tool.

Sources are asked concurrently and their tools listed in source order. Tool names must be
unique in a chat (the model calls tools by name): the first source's tool keeps a name, a
later one with the same name is left out with a warning.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from cozeplus.rpc.v1 import registry_pb2 as pb
from services.runner.tools.base import Tool, ToolSource

log = logging.getLogger("cozeplus.runner.tools")


class CombinedToolSource:
    def __init__(self, *sources: ToolSource) -> None:
        self._sources = sources

    async def tools_for(
        self, *, owner_id: int, bot_id: int, bot_version: int, config: pb.BotConfig
    ) -> Sequence[Tool]:
        found = await asyncio.gather(
            *(
                source.tools_for(
                    owner_id=owner_id, bot_id=bot_id, bot_version=bot_version, config=config
                )
                for source in self._sources
            )
        )
        tools: dict[str, Tool] = {}
        for source_tools in found:
            for tool in source_tools:
                name = tool.definition.name
                if name in tools:
                    log.warning("bot %d: a second tool named %r is left out", bot_id, name)
                    continue
                tools[name] = tool
        return list(tools.values())
