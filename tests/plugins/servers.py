"""Real servers the plugin tests start: a small HTTP API for OpenAPI plugins and an MCP
server from the official SDK (streamable HTTP), each on a loopback port in its own thread
so registry and runner processes can reach them whatever the test's event loop is doing."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from mcp.server.mcpserver import MCPServer
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send


@contextmanager
def serve_in_thread(app: ASGIApp, host: str = "127.0.0.1") -> Iterator[str]:
    # IPPROTO_TCP named: asyncio sets TCP_NODELAY only on sockets whose proto says TCP, and
    # without it a kept-alive connection's response body waits 40 ms for a delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=1)
    )
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])))
    thread.start()
    try:
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("test server failed to start")
            threading.Event().wait(0.02)
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@dataclass
class ApiCalls:
    """What the weather API received."""

    requests: list[dict[str, Any]] = field(default_factory=list)


def weather_api(calls: ApiCalls, refused_url: str = "http://127.0.0.2:9") -> Starlette:
    async def weather(request: Request) -> Response:
        calls.requests.append(
            {
                "path": request.url.path,
                "query": dict(request.query_params),
                "headers": dict(request.headers),
                # Which connection it came on (a client reusing one sends from one port).
                "client_port": request.client.port if request.client else 0,
            }
        )
        city = request.path_params["city"]
        answer = JSONResponse(
            {"city": city, "temp_c": 21, "units": request.query_params.get("units")}
        )
        answer.set_cookie("visited", city)  # a client must not send it to the next call
        return answer

    async def notes(request: Request) -> Response:
        body = await request.json()
        calls.requests.append(
            {"path": request.url.path, "body": body, "headers": dict(request.headers)}
        )
        return JSONResponse({"saved": body}, status_code=201)

    async def fail(request: Request) -> Response:
        calls.requests.append({"path": request.url.path})
        return JSONResponse({"error": "boom"}, status_code=500)

    async def hang(request: Request) -> Response:
        calls.requests.append({"path": request.url.path})
        await asyncio.sleep(60)
        return Response("late")

    async def big(request: Request) -> Response:
        calls.requests.append({"path": request.url.path})
        return Response(b"x" * (10 * 1024 * 1024), media_type="text/plain")

    async def redirect(request: Request) -> Response:
        calls.requests.append({"path": request.url.path})
        return RedirectResponse(refused_url + "/stolen", status_code=302)

    return Starlette(
        routes=[
            Route("/weather/{city}", weather),
            Route("/notes", notes, methods=["POST"]),
            Route("/fail", fail),
            Route("/hang", hang),
            Route("/big", big),
            Route("/redirect", redirect),
        ]
    )


WEATHER_OPENAPI = """
openapi: 3.1.0
info: {title: Weather, version: "1"}
servers: [{url: "SERVER"}]
paths:
  /weather/{city}:
    get:
      operationId: get_weather
      summary: Current weather of a city
      parameters:
        - {name: city, in: path, required: true, schema: {type: string}}
        - {name: units, in: query, schema: {type: string, enum: [c, f]}}
        - {name: X-Trace, in: header, schema: {type: string}}
      responses: {"200": {description: ok}}
  /notes:
    post:
      operationId: add_note
      requestBody:
        required: true
        content: {application/json: {schema: {$ref: "#/components/schemas/Note"}}}
      responses: {"201": {description: saved}}
  /fail: {get: {operationId: always_fails, responses: {"500": {description: "fails"}}}}
  /hang: {get: {operationId: hangs, responses: {"200": {description: never}}}}
  /big: {get: {operationId: huge_answer, responses: {"200": {description: 10 MB}}}}
  /redirect: {get: {operationId: redirects_away, responses: {"302": {description: away}}}}
components:
  schemas:
    Note:
      type: object
      properties: {text: {type: string}}
      required: [text]
"""


def weather_openapi(server_url: str) -> str:
    return WEATHER_OPENAPI.replace("SERVER", server_url)


@dataclass
class McpSeen:
    headers: list[dict[str, str]] = field(default_factory=list)
    # (HTTP method, the mcp-session-id it carried or "") per request.
    requests: list[tuple[str, str]] = field(default_factory=list)
    # Set when the `slow` tool starts running.
    slow_started: threading.Event = field(default_factory=threading.Event)

    def sessions_opened(self) -> int:
        """Initialize requests: the only POSTs sent without a session id."""
        return sum(1 for method, session in self.requests if method == "POST" and not session)

    def sessions_ended(self) -> set[str]:
        return {session for method, session in self.requests if method == "DELETE"}


class _RecordHeaders:
    def __init__(self, app: ASGIApp, seen: McpSeen) -> None:
        self.app = app
        self.seen = seen

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = {k.decode(): v.decode() for k, v in scope.get("headers", [])}
            self.seen.headers.append(headers)
            self.seen.requests.append((scope["method"], headers.get("mcp-session-id", "")))
        await self.app(scope, receive, send)


def mcp_app(seen: McpSeen) -> ASGIApp:
    server = MCPServer("cozeplus-test-tools")

    @server.tool()
    def add(a: int, b: int) -> int:
        """Adds two integers."""
        return a + b

    @server.tool()
    async def slow(seconds: float) -> str:
        """Sleeps, then answers."""
        seen.slow_started.set()
        await asyncio.sleep(seconds)
        return "done"

    @server.tool()
    def big(size: int) -> str:
        """Answers `size` characters."""
        return "y" * size

    @server.tool()
    def explode() -> str:
        """Always fails."""
        raise ValueError("the tool exploded")

    return _RecordHeaders(server.streamable_http_app(), seen)
