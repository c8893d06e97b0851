"""Calls one OpenAPI operation of a plugin (wire contract section 7).

Steps: arguments -> request (path, query, header, JSON body; auth applied) -> send through
the outbound policy (checked addresses, bounded redirects, one deadline for the whole
call) -> read at most the size cap -> the text the model reads. Every failure of the call
itself becomes `ToolOutput(is_error=True)` saying what happened; nothing raises.

A chat run's OpenAPI calls share one client (`RunHttpClient`), so a second call to the same
server reuses the connection (no new TCP and TLS handshake); it keeps no cookies, as a
client per call kept none, and the run's end closes it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.cookiejar import DefaultCookiePolicy
from typing import Any
from urllib.parse import quote

import anyio
import httpx2

from cozeplus.outbound import OutboundPolicy, RefusedAddress, outbound_client, read_capped
from cozeplus.rpc.v1 import plugins_pb2 as ppb
from services.runner.tools.base import ToolOutput
from services.runner.tools.resolved import ResolvedPluginTool, cut_note

BODY_PROPERTY = "body"


class ArgumentError(ValueError):
    pass


@dataclass
class HttpRequest:
    method: str
    url: str
    params: list[tuple[str, str]] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    json_body: Any = None
    has_body: bool = False


class RunHttpClient:
    """The HTTP client of one chat run's OpenAPI calls, made at the first call."""

    def __init__(self, policy: OutboundPolicy) -> None:
        self._policy = policy
        self._client: httpx2.AsyncClient | None = None
        self._closed = False

    def get(self) -> httpx2.AsyncClient:
        if self._closed:
            raise RuntimeError("the chat run's HTTP client is closed")
        if self._client is None:
            client = outbound_client(self._policy, cap_responses=False)
            # Nothing one API sets is sent to another, or to the next call (set on the
            # client's own jar: assigning a Cookies copies its cookies, not its policy).
            client.cookies.jar.set_policy(DefaultCookiePolicy(allowed_domains=[]))
            self._client = client
        return self._client

    async def aclose(self) -> None:
        self._closed = True
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()


class OpenApiTool(ResolvedPluginTool):
    def __init__(
        self, resolved: ppb.ResolvedTool, policy: OutboundPolicy, http: RunHttpClient
    ) -> None:
        super().__init__(resolved)
        self._policy = policy
        self._http = http

    async def aclose(self) -> None:
        """Closes the run's client (every OpenAPI tool of the run shares it)."""
        await self._http.aclose()

    async def call(self, arguments: Mapping[str, Any]) -> ToolOutput:
        try:
            request = build_request(self._resolved, arguments)
        except ArgumentError as exc:
            return ToolOutput(f"invalid arguments: {exc}", is_error=True)
        where = f"{request.method} {self._resolved.http.path}"
        try:
            with anyio.fail_after(self._policy.timeout_s):
                return await self._send(request, where)
        except TimeoutError:
            return ToolOutput(f"{where} timed out after {self._policy.timeout_s:g}s", is_error=True)
        except RefusedAddress as exc:
            return ToolOutput(f"{where} was refused by the outbound rules: {exc}", is_error=True)
        except httpx2.TooManyRedirects:
            return ToolOutput(
                f"{where} redirected more than {self._policy.max_redirects} times",
                is_error=True,
            )
        except httpx2.TimeoutException:
            return ToolOutput(f"{where} timed out after {self._policy.timeout_s:g}s", is_error=True)
        except httpx2.HTTPError as exc:
            return ToolOutput(f"{where} failed: {type(exc).__name__}: {exc}", is_error=True)

    async def _send(self, request: HttpRequest, where: str) -> ToolOutput:
        cap = self._policy.max_response_bytes
        async with (
            self._http.get().stream(
                request.method,
                request.url,
                params=tuple(request.params),
                headers=request.headers,
                **({"json": request.json_body} if request.has_body else {}),
            ) as response,
        ):
            body = await read_capped(response, cap)
            text = _as_text(response, body.content, truncated=body.truncated)
            if body.truncated:
                text += cut_note(cap)
            if not response.is_success:
                return ToolOutput(f"{where} answered HTTP {response.status_code}: {text}", True)
            return ToolOutput(text)


def build_request(resolved: ppb.ResolvedTool, arguments: Mapping[str, Any]) -> HttpRequest:
    http = resolved.http
    path = http.path
    request = HttpRequest(method=http.method, url="")
    for parameter in http.parameters:
        value = arguments.get(parameter.name)
        if value is None:
            if parameter.required:
                raise ArgumentError(f"missing required argument {parameter.name!r}")
            continue
        if parameter.location == "path":
            # safe="": a value cannot add path segments or leave the server's URL.
            path = path.replace("{" + parameter.name + "}", quote(_scalar(value), safe=""))
        elif parameter.location == "query":
            values = value if isinstance(value, list) else [value]
            request.params.extend((parameter.name, _scalar(v)) for v in values)
        else:
            text = _scalar(value)
            if any(c in text for c in "\r\n\0"):
                raise ArgumentError(f"header {parameter.name!r} must not contain line breaks")
            request.headers[parameter.name] = text
    if http.has_json_body and BODY_PROPERTY in arguments:
        request.json_body = arguments[BODY_PROPERTY]
        request.has_body = True
    _apply_auth(resolved.auth, request)
    request.url = http.server_url.rstrip("/") + path
    return request


def _apply_auth(auth: ppb.PluginAuth, request: HttpRequest) -> None:
    if auth.type == "bearer":
        request.headers["Authorization"] = f"Bearer {auth.value}"
    elif auth.type == "api_key":
        if auth.location == "query":
            request.params.append((auth.name, auth.value))
        else:
            request.headers[auth.name] = auth.value


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _as_text(response: httpx2.Response, content: bytes, *, truncated: bool) -> str:
    """JSON bodies as compact JSON text; others decoded as the response says."""
    media_type = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if not truncated and (media_type == "application/json" or media_type.endswith("+json")):
        try:
            return json.dumps(json.loads(content), ensure_ascii=False)
        except (ValueError, RecursionError):
            pass
    return content.decode(response.encoding or "utf-8", errors="replace")
