"""Calls one tool of a streamable-HTTP MCP server through the official `mcp` SDK, under the
outbound policy (checked addresses, a deadline for each call, a size cap on what the model
gets). Failures become `ToolOutput(is_error=True)`; nothing raises.

A chat run opens one session per server (URL and headers) at its first call there and keeps
it for the rest of the run: a second call, in the same round or a later one, skips the
handshake (initialize, then the call, then the session's end: three requests more per call).
Sessions are never shared between runs, so a stateful server never mixes two chats. A
session that fails a call is dropped, and the run's next call to that server opens a new
one; the run's end closes them all (the SDK ends each session on the server)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections.abc import Mapping
from typing import Any

import anyio
import httpx2
import mcp_types
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_REQUEST

from cozeplus.outbound import OutboundPolicy, RefusedAddress, ResponseTooLarge, outbound_client
from cozeplus.rpc.v1 import plugins_pb2 as ppb
from services.runner.tools.base import ToolOutput
from services.runner.tools.resolved import ResolvedPluginTool, cut_note

# The wire carries JSON-RPC (escaped text, maybe SSE framing, maybe structured content
# twice), so the transport may read this many times the output cap; the text the model gets
# is then cut to the cap itself, with the usual note.
TRANSPORT_CAP_FACTOR = 16
# How long the run's end waits for a session to end politely before cutting it.
CLOSE_WAIT_S = 5.0

log = logging.getLogger("cozeplus.runner.tools")

_ServerKey = tuple[str, tuple[tuple[str, str], ...]]


class McpSessions:
    """The MCP sessions of one chat run, one per server, each held open by a task of its own
    (the SDK's transport and session are anyio task groups, which must be left by the task
    that entered them, while the run calls tools from tasks of its own)."""

    def __init__(self, policy: OutboundPolicy) -> None:
        self._policy = policy
        self._transport_policy = dataclasses.replace(
            policy, max_response_bytes=policy.max_response_bytes * TRANSPORT_CAP_FACTOR
        )
        self._open: dict[_ServerKey, _HeldSession] = {}
        self._closed = False

    async def call_tool(
        self, url: str, headers: Mapping[str, str], name: str, arguments: dict[str, Any]
    ) -> mcp_types.CallToolResult:
        if self._closed:
            raise RuntimeError("the chat run's MCP sessions are closed")
        key: _ServerKey = (url, tuple(sorted(headers.items())))
        held = self._open.get(key)
        reused = held is not None and held.opened
        for _ in range(2):
            if held is None:
                held = self._open[key] = _HeldSession(url, dict(headers), self._transport_policy)
            try:
                session = await held.ready()
                result = await session.call_tool(
                    name, arguments, read_timeout_seconds=self._policy.timeout_s
                )
                break
            except Exception as exc:
                # Whatever failed (a server that restarted, a transport cut, an error the
                # server answered), the next call starts afresh.
                await self._drop(key, held)
                # A session the server no longer knows (HTTP 404, which the SDK reads as
                # INVALID_REQUEST) ran nothing: the MCP spec has the client start a new
                # one, and the call is sent again there, once.
                if not (reused and isinstance(exc, MCPError) and exc.code == INVALID_REQUEST):
                    raise
                held, reused = None, False
        if not isinstance(result, mcp_types.CallToolResult):
            raise TypeError(f"the server answered the call with a {type(result).__name__}")
        return result

    async def _drop(self, key: _ServerKey, held: _HeldSession) -> None:
        if self._open.get(key) is held:
            del self._open[key]
        await held.close()

    async def aclose(self) -> None:
        """Ends every session. Idempotent; later calls raise."""
        self._closed = True
        held, self._open = list(self._open.values()), {}
        await asyncio.gather(*(h.close() for h in held))


class _HeldSession:
    def __init__(self, url: str, headers: dict[str, str], policy: OutboundPolicy) -> None:
        loop = asyncio.get_running_loop()
        self._session: asyncio.Future[ClientSession] = loop.create_future()
        self._done = asyncio.Event()
        self._task = loop.create_task(self._hold(url, headers, policy), name=f"mcp {url}")

    @property
    def opened(self) -> bool:
        """The handshake is over and went well: a call now reuses the session."""
        done = self._session.done() and not self._session.cancelled()
        return done and self._session.exception() is None

    async def ready(self) -> ClientSession:
        # Shielded: a caller's deadline must not cancel a handshake others may be waiting on.
        return await asyncio.shield(self._session)

    async def _hold(self, url: str, headers: dict[str, str], policy: OutboundPolicy) -> None:
        try:
            async with (
                outbound_client(policy, headers=headers) as http,
                streamable_http_client(url, http_client=http) as (read, write, *_),
                ClientSession(read, write, read_timeout_seconds=policy.timeout_s) as session,
            ):
                await session.initialize()
                self._session.set_result(session)
                await self._done.wait()
        except BaseException as exc:
            if not self._session.done():
                failure = (
                    exc
                    if isinstance(exc, Exception)
                    else ConnectionError("the MCP session was closed before it opened")
                )
                self._session.set_exception(failure)
                # Retrieved here too, so a handshake nobody waits for any more (every
                # caller timed out) is not reported as never retrieved.
                self._session.exception()
            if not isinstance(exc, Exception):
                raise
            log.debug("MCP session with %s ended: %s", url, _reason(exc))

    async def close(self) -> None:
        """Lets the session end itself (the SDK tells the server), or cuts it after a while."""
        self._done.set()
        try:
            async with asyncio.timeout(CLOSE_WAIT_S):
                await asyncio.shield(self._task)
        except TimeoutError:
            self._task.cancel()
        except asyncio.CancelledError:
            self._task.cancel()
            raise


class McpTool(ResolvedPluginTool):
    def __init__(
        self, resolved: ppb.ResolvedTool, policy: OutboundPolicy, sessions: McpSessions
    ) -> None:
        super().__init__(resolved)
        self._policy = policy
        self._sessions = sessions

    async def aclose(self) -> None:
        """Ends the run's MCP sessions (every MCP tool of the run shares them)."""
        await self._sessions.aclose()

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
        return await self._sessions.call_tool(
            self._resolved.mcp_url,
            self._resolved.mcp_headers,
            self.operation_name,
            arguments,
        )

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
