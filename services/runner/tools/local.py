"""`local` plugin functions: tools the client runs (wire contract section 7).

The run loop never calls one: a call to it pauses the chat in requires_action and the
client submits the output through /v3/chat/submit_tool_outputs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from cozeplus.rpc.v1 import plugins_pb2 as ppb
from cozeplus.vocabulary import PluginType
from services.runner.tools.base import ToolDefinition, ToolOutput


def parameters_schema(parameters_json: str) -> dict[str, Any]:
    """A tool's argument schema; anything unusable becomes an empty object schema."""
    try:
        value = orjson.loads(parameters_json) if parameters_json else None
    except orjson.JSONDecodeError:
        value = None
    return value if isinstance(value, dict) else {"type": "object", "properties": {}}


@dataclass(frozen=True, slots=True)
class LocalTool:
    definition: ToolDefinition
    plugin_id: int
    api_id: int

    @property
    def plugin_type(self) -> PluginType:
        return PluginType.LOCAL

    @classmethod
    def from_resolved(cls, resolved: ppb.ResolvedTool) -> LocalTool:
        return cls(
            definition=ToolDefinition(
                name=resolved.name,
                description=resolved.description,
                parameters=parameters_schema(resolved.parameters_json),
            ),
            plugin_id=resolved.plugin_id,
            api_id=resolved.api_id,
        )

    async def call(self, arguments: Mapping[str, Any]) -> ToolOutput:
        # Never reached through the loop, which pauses instead; say so if it ever is.
        return ToolOutput(f"{self.definition.name} runs on the client", is_error=True)
