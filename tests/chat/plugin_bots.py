"""Bots with real plugins for chat tests: a local HTTP API (OpenAPI plugin) and an MCP server
from the mcp SDK, both on 127.0.0.1 (which the test runners may reach), and a listener on
127.0.0.2 (refused) that must never be contacted. The model's tool calls are scripted
through the mock LLM's /mock/scripts."""

from __future__ import annotations

import secrets
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.edge.envelope import data_of
from tests.plugins.servers import (
    ApiCalls,
    McpSeen,
    mcp_app,
    serve_in_thread,
    weather_api,
    weather_openapi,
)

API_SECRET = "chat-SECRET-key-1123581321"


class RefusedListener:
    """Listens on 127.0.0.2, which the runners refuse: a queued connection proves a breach."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.2", 0))
        self.sock.listen(8)
        self.sock.setblocking(False)
        self.url = f"http://127.0.0.2:{self.sock.getsockname()[1]}"

    def was_contacted(self) -> bool:
        try:
            connection, _ = self.sock.accept()
        except BlockingIOError:
            return False
        connection.close()
        return True


@dataclass
class PluginServers:
    api: str
    calls: ApiCalls
    mcp: str
    refused: RefusedListener
    mcp_seen: McpSeen


@pytest.fixture(scope="session")
def plugin_servers() -> Iterator[PluginServers]:
    refused = RefusedListener()
    calls = ApiCalls()
    seen = McpSeen()
    with (
        serve_in_thread(weather_api(calls, refused.url)) as api,
        serve_in_thread(mcp_app(seen)) as mcp,
    ):
        yield PluginServers(api, calls, mcp + "/mcp", refused, seen)
    refused.sock.close()


@pytest.fixture
def make_plugin_bot(
    api: httpx.Client, plugin_servers: PluginServers, mock_llm: str
) -> Callable[[list[dict[str, Any]]], tuple[str, dict[str, str]]]:
    """A published mock-model bot binding the weather (OpenAPI, api-key auth) and calc (MCP)
    plugins, with the model scripted to play `rounds`; returns (bot id, plugin ids by name)."""

    def make(rounds: list[dict[str, Any]]) -> tuple[str, dict[str, str]]:
        weather = data_of(
            api.post(
                "/v1/plugins",
                json={
                    "name": "weather",
                    "type": "openapi",
                    "openapi": weather_openapi(plugin_servers.api),
                    "auth": {
                        "type": "api_key",
                        "location": "query",
                        "name": "key",
                        "value": API_SECRET,
                    },
                },
            )
        )
        calc = data_of(
            api.post("/v1/plugins", json={"name": "calc", "type": "mcp", "url": plugin_servers.mcp})
        )
        key = f"plugin-script-{secrets.token_hex(6)}"
        created = data_of(
            api.post(
                "/api/draftbot/create",
                json={
                    "name": "plugin bot",
                    "prompt": f"You use tools. [{key}]",
                    "model": "mock",
                    "tools": [
                        {"type": "plugin", "plugin_id": weather["plugin_id"]},
                        {"type": "plugin", "plugin_id": calc["plugin_id"]},
                    ],
                },
            )
        )
        data_of(api.post("/api/draftbot/publish", json={"bot_id": created["bot_id"]}))
        scripted = httpx.post(f"{mock_llm}/mock/scripts", json={"key": key, "rounds": rounds})
        assert scripted.status_code == 200, scripted.text
        return str(created["bot_id"]), {"weather": weather["plugin_id"], "calc": calc["plugin_id"]}

    return make
