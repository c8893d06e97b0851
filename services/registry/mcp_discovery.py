"""Tool discovery on streamable-HTTP MCP servers, through the official `mcp` SDK and the
outbound safety rules (the registry must not become a way to probe its own network)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from urllib.parse import urlsplit

import anyio
import httpx2
import mcp_types
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client

from cozeplus.outbound import OutboundPolicy, RefusedAddress, outbound_client
from services.registry.errors import InvalidArgument
from services.registry.plugins import DiscoveredTool

MAX_TOOLS = 200
MAX_PAGES = 20

log = logging.getLogger(__name__)


class McpToolDiscovery:
    def __init__(self, policy: OutboundPolicy) -> None:
        self._policy = policy

    async def discover(self, url: str, headers: Mapping[str, str]) -> list[DiscoveredTool]:
        try:
            with anyio.fail_after(self._policy.timeout_s):
                return await self._list_tools(url, headers)
        except TimeoutError:
            raise InvalidArgument(
                f"mcp: the server did not answer within {self._policy.timeout_s:g}s"
            ) from None
        except InvalidArgument:
            raise
        except Exception as exc:
            reason = _reason(exc)
            # Neither the headers (secrets) nor the URL's credentials or query.
            log.info("mcp discovery failed for %s: %s", _loggable(url), reason)
            raise InvalidArgument(f"mcp: cannot list the server's tools: {reason}") from None

    async def _list_tools(self, url: str, headers: Mapping[str, str]) -> list[DiscoveredTool]:
        tools: list[DiscoveredTool] = []
        async with (
            outbound_client(self._policy, headers=dict(headers)) as http,
            streamable_http_client(url, http_client=http) as (read, write, *_),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            cursor: str | None = None
            for _ in range(MAX_PAGES):
                page = await session.list_tools(params=None if cursor is None else _page(cursor))
                for tool in page.tools:
                    tools.append(
                        DiscoveredTool(tool.name, tool.description or "", dict(tool.input_schema))
                    )
                if len(tools) > MAX_TOOLS:
                    raise InvalidArgument(f"mcp: the server offers more than {MAX_TOOLS} tools")
                cursor = page.next_cursor
                if not cursor:
                    break
        if not tools:
            raise InvalidArgument("mcp: the server offers no tools")
        return tools


def _loggable(url: str) -> str:
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}{parts.path}"


def _page(cursor: str) -> mcp_types.PaginatedRequestParams:
    return mcp_types.PaginatedRequestParams(cursor=cursor)


def _reason(exc: BaseException) -> str:
    """The innermost useful message (the SDK wraps transport errors in task groups)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, RefusedAddress):
        return str(exc)
    if isinstance(exc, httpx2.HTTPError):
        return f"{type(exc).__name__}: {exc}"[:300]
    return f"{type(exc).__name__}: {exc}"[:300]
