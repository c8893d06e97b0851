"""What every server-side plugin tool knows from its `ResolvedTool` (the registry's answer to
ResolveTools): its definition for the model and its ids for the function_call message."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from cozeplus.rpc.v1 import plugins_pb2 as ppb
from cozeplus.vocabulary import PluginType
from services.runner.tools.base import ToolDefinition


class ResolvedPluginTool:
    """Base of the plugin executors: the Tool protocol's properties from a ResolvedTool."""

    def __init__(self, resolved: ppb.ResolvedTool) -> None:
        self._resolved = resolved
        try:
            parameters: Mapping[str, Any] = json.loads(resolved.parameters_json or "{}")
        except ValueError:
            parameters = {}
        if not isinstance(parameters, dict) or not parameters:
            parameters = {"type": "object", "properties": {}}
        self._definition = ToolDefinition(
            name=resolved.name, description=resolved.description, parameters=parameters
        )

    @property
    def definition(self) -> ToolDefinition:
        return self._definition

    @property
    def plugin_id(self) -> int:
        return self._resolved.plugin_id

    @property
    def api_id(self) -> int:
        return self._resolved.api_id

    @property
    def plugin_type(self) -> PluginType:
        return PluginType(self._resolved.plugin_type)

    @property
    def operation_name(self) -> str:
        return self._resolved.operation_name


def cut_note(limit: int) -> str:
    return f"\n[output cut: the tool returned more than {limit} bytes]"
