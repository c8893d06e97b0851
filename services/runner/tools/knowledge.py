"""A bot's datasets as a tool the model may call (knowledge_base tools without auto_call).

One tool per bot, `search_knowledge`, searching every dataset the bot binds; its output is
the matching excerpts with their document names (services/runner/knowledge_retrieval.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import grpc

from cozeplus.rpc.v1 import registry_pb2 as pb
from cozeplus.vocabulary import PluginType
from services.runner import knowledge_retrieval
from services.runner.tools.base import Tool, ToolDefinition, ToolOutput

if TYPE_CHECKING:
    from cozeplus.rpc.v1.knowledge_pb2_grpc import KnowledgeAsyncStub

TOOL_NAME = "search_knowledge"
MAX_TOP_K = 10


class KnowledgeSearchTool:
    def __init__(self, knowledge: KnowledgeAsyncStub, owner_id: int, config: pb.BotConfig) -> None:
        self._knowledge = knowledge
        self._owner_id = owner_id
        self._config = config

    @property
    def definition(self) -> ToolDefinition:
        return ToolDefinition(
            name=TOOL_NAME,
            description=(
                "Search the bot's knowledge base (its datasets) and return the most relevant "
                "excerpts with the names of their documents."
            ),
            parameters={
                "type": "object",
                "properties": {
                    "query": {"type": "string", "description": "What to look for."},
                    "top_k": {
                        "type": "integer",
                        "minimum": 1,
                        "maximum": MAX_TOP_K,
                        "description": "How many excerpts to return.",
                    },
                },
                "required": ["query"],
            },
        )

    @property
    def plugin_id(self) -> int:
        return 0

    @property
    def api_id(self) -> int:
        return 0

    @property
    def plugin_type(self) -> PluginType:
        return PluginType.KNOWLEDGE

    async def call(self, arguments: Mapping[str, Any]) -> ToolOutput:
        query = arguments.get("query")
        if not isinstance(query, str) or not query.strip():
            return ToolOutput("search_knowledge needs a non-empty string `query`", is_error=True)
        top_k = arguments.get("top_k", 0)
        if not isinstance(top_k, int) or isinstance(top_k, bool):
            top_k = 0
        try:
            chunks = await knowledge_retrieval.search(
                self._knowledge,
                owner_id=self._owner_id,
                config=self._config,
                query=query,
                top_k=max(0, min(top_k, MAX_TOP_K)),
            )
        except grpc.aio.AioRpcError as err:
            return ToolOutput(f"the knowledge search failed: {err.details()}", is_error=True)
        if not chunks:
            return ToolOutput("No matching excerpts in the knowledge base.")
        return ToolOutput(knowledge_retrieval.knowledge_prompt(chunks))


class KnowledgeToolSource:
    """The search tool for bots that bind datasets without auto_call; nothing otherwise."""

    def __init__(self, knowledge: KnowledgeAsyncStub) -> None:
        self._knowledge = knowledge

    async def tools_for(
        self, *, owner_id: int, bot_id: int, bot_version: int, config: pb.BotConfig
    ) -> Sequence[Tool]:
        if not knowledge_retrieval.dataset_ids(config) or knowledge_retrieval.auto_call(config):
            return []
        return [KnowledgeSearchTool(self._knowledge, owner_id, config)]
