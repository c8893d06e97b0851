"""Calls one tool of a streamable-HTTP MCP server through the official `mcp` SDK, under the
outbound policy (checked addresses, a deadline for the whole exchange, a size cap on what
the model gets). Failures become `ToolOutput(is_error=True)`; nothing raises."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

import anyio
import httpx2
import mcp_types
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client

from cozeplus.outbound import OutboundPolicy, RefusedAddress, ResponseTooLarge, outbound_client
from cozeplus.rpc.v1 import plugins_pb2 as ppb
from services.runner.tools.base import ToolOutput
from services.runner.tools.resolved import ResolvedPluginTool, cut_note

# The wire carries JSON-RPC (escaped text, maybe SSE framing, maybe structured content
# twice), so the transport may read this many times the output cap; the text the model gets
# is then cut to the cap itself, with the usual note.
TRANSPORT_CAP_FACTOR = 16


class McpTool(ResolvedPluginTool):
    def __init__(self, resolved: ppb.ResolvedTool, policy: OutboundPolicy) -> None:
        super().__init__(resolved)
        self._policy = policy
        self._transport_policy = dataclasses.replace(
            policy, max_response_bytes=policy.max_response_bytes * TRANSPORT_CAP_FACTOR
        )

    async def call(self, arguments: Mapping[str, Any]) -> ToolOutput:
        name = self.operation_name
        try:
            with anyio.fail_after(self._policy.timeout_s):
                result = await self._call(dict(arguments))
        except TimeoutError:
            return ToolOutput(
                f"MCP tool {name} timed out after {self._policy.timeout_s:g}s", is_error=True
            )
        except Exception as exc:
            return ToolOutput(f"MCP tool {name} failed: {_reason(exc)}", is_error=True)
        return self._output(result)

    async def _call(self, arguments: dict[str, Any]) -> mcp_types.CallToolResult:
        async with (
            outbound_client(
                self._transport_policy, headers=dict(self._resolved.mcp_headers)
            ) as http,
            streamable_http_client(self._resolved.mcp_url, http_client=http) as (read, write, *_),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            return await session.call_tool(self.operation_name, arguments)

    def _output(self, result: mcp_types.CallToolResult) -> ToolOutput:
        parts: list[str] = []
        for item in result.content:
            if isinstance(item, mcp_types.TextContent):
                parts.append(item.text)
            else:
                parts.append(f"[{item.type} content omitted]")
        if not parts and result.structured_content is not None:
            parts.append(json.dumps(result.structured_content, ensure_ascii=False))
        text = "\n".join(parts)
        cap = self._policy.max_response_bytes
        encoded = text.encode()
        if len(encoded) > cap:
            text = encoded[:cap].decode(errors="ignore") + cut_note(cap)
        return ToolOutput(text, is_error=bool(result.is_error))


def _reason(exc: BaseException) -> str:
    """The innermost error: the SDK wraps transport failures in exception groups."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, RefusedAddress):
        return f"refused by the outbound rules: {exc}"
    if isinstance(exc, ResponseTooLarge):
        return f"the server's answer was too large ({exc})"
    if isinstance(exc, httpx2.HTTPError):
        return f"{type(exc).__name__}: {exc}"[:500]
    return f"{type(exc).__name__}: {exc}"[:500]
