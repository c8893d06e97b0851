"""What the run loop asks of a tool (wire contract section 7).

The loop sees a bot's tools as `Tool`s from a `ToolSource`. A server-side tool runs in
`call()` and never raises for the tool's own failures (HTTP errors, timeouts, refused
addresses, oversized output): it returns a `ToolOutput` with `is_error` set and a text the
model can read, and the chat goes on. A client-side tool (a `local` plugin function) is
never called: the run pauses in `requires_action` and the client submits its output.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from cozeplus.rpc.v1 import registry_pb2 as pb
from cozeplus.vocabulary import PluginType


@dataclass(frozen=True, slots=True)
class ToolDefinition:
    """What the model is told about a tool: a function definition."""

    name: str
    description: str
    # JSON Schema of the arguments (an object schema).
    parameters: Mapping[str, Any] = field(default_factory=lambda: {"type": "object"})


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One call the model asked for."""

    id: str
    name: str
    # JSON text, as the model wrote it (it may not parse).
    arguments: str


@dataclass(frozen=True, slots=True)
class ToolOutput:
    """What a tool gave back, as the text the model will read."""

    content: str
    is_error: bool = False


class Tool(Protocol):
    @property
    def definition(self) -> ToolDefinition: ...

    @property
    def plugin_id(self) -> int: ...

    @property
    def api_id(self) -> int: ...

    @property
    def plugin_type(self) -> PluginType: ...

    async def call(self, arguments: Mapping[str, Any]) -> ToolOutput:
        """Runs the tool. Only server-side tools are called; returns, never raises, for
        the tool's own failures."""
        ...


@runtime_checkable
class HoldsResources(Protocol):
    """A tool that holds something for its chat run (an MCP session) until the run ends."""

    async def aclose(self) -> None: ...


class ToolSource(Protocol):
    """The tools a chat's bot binds (its plugins', and later its knowledge search)."""

    async def tools_for(
        self, *, owner_id: int, bot_id: int, bot_version: int, config: pb.BotConfig
    ) -> Sequence[Tool]:
        """A new set for each chat run: the run closes those that hold resources."""
        ...
