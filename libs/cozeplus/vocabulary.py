"""One vocabulary for every service: chat statuses, message roles and types, tool types.

The values are the wire strings (wire contract sections 2, 3 and 7); each enum is a `StrEnum`
so a member compares equal to, and serialises as, its string. Adding a value here is the
one edit that makes it known to the edge, the registry and the runners.
"""

from __future__ import annotations

from enum import StrEnum


class ChatStatus(StrEnum):
    CREATED = "created"
    IN_PROGRESS = "in_progress"
    REQUIRES_ACTION = "requires_action"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELED = "canceled"

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL_STATUSES


_TERMINAL_STATUSES = frozenset({ChatStatus.COMPLETED, ChatStatus.FAILED, ChatStatus.CANCELED})


class MessageRole(StrEnum):
    USER = "user"
    ASSISTANT = "assistant"


class MessageType(StrEnum):
    QUESTION = "question"
    ANSWER = "answer"
    FUNCTION_CALL = "function_call"
    TOOL_RESPONSE = "tool_response"
    FOLLOW_UP = "follow_up"
    VERBOSE = "verbose"


class ContentType(StrEnum):
    TEXT = "text"
    IMAGE = "image"
    FILE = "file"
    OBJECT_STRING = "object_string"
    CARD = "card"


class ToolType(StrEnum):
    """A bot's tool reference (`tools[].type`)."""

    KNOWLEDGE_BASE = "knowledge_base"
    PLUGIN = "plugin"


class PluginType(StrEnum):
    """How a plugin's tools run (wire contract section 7)."""

    OPENAPI = "openapi"
    MCP = "mcp"
    # Functions the client runs: the chat pauses in requires_action.
    LOCAL = "local"
    # Not a plugin: the bot's datasets as a search tool (knowledge_base tools without
    # auto_call). Runs in the runner; plugin_id and api_id are 0.
    KNOWLEDGE = "knowledge"
