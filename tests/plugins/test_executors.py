"""The runner's plugin executors end to end below the chat loop: a real registry resolves a
bot's tools (secrets included), RegistryToolSource builds them, and they call a real local
HTTP API and a real MCP server (from the mcp SDK) through the outbound rules."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest

from cozeplus.outbound import OutboundPolicy, parse_networks
from cozeplus.rpc.v1 import plugins_pb2 as ppb
from cozeplus.rpc.v1 import registry_pb2 as pb
from cozeplus.rpc.v1.plugins_pb2_grpc import PluginsStub
from cozeplus.rpc.v1.registry_pb2_grpc import BotRegistryStub
from cozeplus.service_auth import find_token, service_aio_channel
from cozeplus.vocabulary import PluginType
from services.runner.tools.base import HoldsResources, Tool
from services.runner.tools.openapi import OpenApiTool, RunHttpClient
from services.runner.tools.registry_source import RegistryToolSource
from tests.conftest import Account
from tests.plugins.servers import (
    ApiCalls,
    McpSeen,
    mcp_app,
    serve_in_thread,
    weather_api,
    weather_openapi,
)

SECRET = "runner-SECRET-token-5772156649"
CAP = 64_000


class RefusedListener:
    """A socket listening on 127.0.0.2 (refused by the policy): the kernel would queue any
    connection attempt, so a pending accept proves the rules were broken."""

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
class Servers:
    api: str
    calls: ApiCalls
    mcp: str
    mcp_seen: McpSeen
    refused: RefusedListener


@pytest.fixture(scope="module")
def servers() -> Iterator[Servers]:
    refused = RefusedListener()
    calls = ApiCalls()
    seen = McpSeen()
    with (
        serve_in_thread(weather_api(calls, refused.url)) as api,
        serve_in_thread(mcp_app(seen)) as mcp,
    ):
        yield Servers(api, calls, mcp + "/mcp", seen, refused)
    refused.sock.close()


@pytest.fixture
async def tools(
    servers: Servers, registry_addr: str, make_account: Callable[..., Account]
) -> dict[str, Tool]:
    owner = make_account().user_id
    async with service_aio_channel(registry_addr, find_token()) as channel:
        plugins = PluginsStub(channel)
        bots = BotRegistryStub(channel)
        weather = await plugins.CreatePlugin(
            ppb.CreatePluginRequest(
                owner_id=owner,
                spec=ppb.PluginSpec(
                    name="weather",
                    type="openapi",
                    openapi=weather_openapi(servers.api),
                    auth=ppb.PluginAuth(type="api_key", location="query", name="key", value=SECRET),
                ),
            )
        )
        calc = await plugins.CreatePlugin(
            ppb.CreatePluginRequest(
                owner_id=owner,
                spec=ppb.PluginSpec(name="calc", type="mcp", mcp_url=servers.mcp),
            )
        )
        device = await plugins.CreatePlugin(
            ppb.CreatePluginRequest(
                owner_id=owner,
                spec=ppb.PluginSpec(
                    name="device",
                    type="local",
                    functions_json='[{"name": "get_location", "parameters": {"type": "object"}}]',
                ),
            )
        )
        bot = await bots.CreateDraft(
            pb.CreateDraftRequest(
                owner_id=owner,
                name="agent",
                config=pb.BotConfig(
                    tools=[
                        pb.ToolRef(type="plugin", plugin_id=p.id) for p in (weather, calc, device)
                    ]
                ),
            )
        )
        policy = OutboundPolicy(
            allowed_networks=parse_networks("127.0.0.1/32"),
            timeout_s=2.0,
            max_response_bytes=CAP,
        )
        source = RegistryToolSource(PluginsStub(channel), policy)  # type: ignore[arg-type]
        resolved = await source.tools_for(
            owner_id=owner, bot_id=bot.id, bot_version=0, config=bot.config
        )
        return {t.definition.name: t for t in resolved}


async def test_source_builds_one_executor_per_plugin_type(tools: dict[str, Tool]) -> None:
    assert list(tools) == [
        "get_weather",
        "add_note",
        "always_fails",
        "hangs",
        "huge_answer",
        "redirects_away",
        "add",
        "slow",
        "big",
        "explode",
        "get_location",
    ]
    assert tools["get_weather"].plugin_type == PluginType.OPENAPI
    assert tools["add"].plugin_type == PluginType.MCP
    assert tools["get_location"].plugin_type == PluginType.LOCAL
    assert tools["get_weather"].definition.parameters["required"] == ["city"]
    assert tools["get_weather"].api_id > 0 and tools["get_weather"].plugin_id > 0


async def test_openapi_call_sends_path_query_header_and_auth(
    tools: dict[str, Tool], servers: Servers, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    output = await tools["get_weather"].call({"city": "São Paulo", "units": "c", "X-Trace": "t1"})
    assert not output.is_error, output
    assert json.loads(output.content) == {"city": "São Paulo", "temp_c": 21, "units": "c"}
    seen = servers.calls.requests[-1]
    assert seen["path"] == "/weather/São Paulo"
    assert seen["query"] == {"units": "c", "key": SECRET}
    assert seen["headers"]["x-trace"] == "t1"
    # The key travels in the query string; no log line may carry it (httpx2 logs URLs).
    assert SECRET not in caplog.text


async def test_openapi_json_body(tools: dict[str, Tool], servers: Servers) -> None:
    output = await tools["add_note"].call({"body": {"text": "buy milk"}})
    assert not output.is_error and json.loads(output.content) == {"saved": {"text": "buy milk"}}
    assert servers.calls.requests[-1]["body"] == {"text": "buy milk"}


async def test_openapi_failures_are_error_outputs(tools: dict[str, Tool], servers: Servers) -> None:
    missing = await tools["get_weather"].call({})
    assert missing.is_error and "missing required argument 'city'" in missing.content

    failed = await tools["always_fails"].call({})
    assert failed.is_error and "HTTP 500" in failed.content and "boom" in failed.content

    hung = await tools["hangs"].call({})
    assert hung.is_error and "timed out after 2s" in hung.content

    huge = await tools["huge_answer"].call({})
    assert not huge.is_error
    assert huge.content.startswith("x" * 1000) and len(huge.content) < CAP + 200
    assert f"more than {CAP} bytes" in huge.content

    redirected = await tools["redirects_away"].call({})
    assert redirected.is_error and "refused by the outbound rules" in redirected.content
    assert "127.0.0.2" in redirected.content
    assert not servers.refused.was_contacted()


async def test_openapi_refuses_a_server_outside_the_allowed_networks(
    servers: Servers, tools: dict[str, Tool]
) -> None:
    resolved = tools["get_weather"]
    assert isinstance(resolved, OpenApiTool)
    strict = OutboundPolicy()  # the default rules
    tool = OpenApiTool(resolved._resolved, strict, RunHttpClient(strict))
    before = len(servers.calls.requests)
    output = await tool.call({"city": "Paris"})
    assert output.is_error and "127.0.0.1 is a loopback address" in output.content
    assert len(servers.calls.requests) == before


async def test_mcp_tools(tools: dict[str, Tool]) -> None:
    added = await tools["add"].call({"a": 2, "b": 40})
    assert (added.content, added.is_error) == ("42", False)
    exploded = await tools["explode"].call({})
    assert exploded.is_error and "explode" in exploded.content
    big = await tools["big"].call({"size": CAP * 3})
    assert not big.is_error and big.content.startswith("y" * 1000)
    assert big.content.endswith(f"[output cut: the tool returned more than {CAP} bytes]")
    assert len(big.content) < CAP + 100
    slow = await tools["slow"].call({"seconds": 30})
    assert slow.is_error and "timed out after 2s" in slow.content


async def test_local_functions_are_not_run_by_the_runner(tools: dict[str, Tool]) -> None:
    output = await tools["get_location"].call({})
    assert output.is_error and "runs on the client" in output.content


async def test_no_plugins_means_no_registry_call() -> None:
    source = RegistryToolSource(None, OutboundPolicy())  # type: ignore[arg-type]
    tools = await source.tools_for(owner_id=1, bot_id=2, bot_version=0, config=pb.BotConfig())
    assert tools == []


async def test_a_runs_mcp_calls_share_one_session_which_its_end_closes(
    tools: dict[str, Tool], servers: Servers
) -> None:
    seen = servers.mcp_seen
    opened, start = seen.sessions_opened(), len(seen.requests)
    outputs = await asyncio.gather(*(tools["add"].call({"a": i, "b": 1}) for i in range(3)))
    assert [o.content for o in outputs] == ["1", "2", "3"]
    assert (await tools["explode"].call({})).is_error  # the tool's failure, not the session's
    assert (await tools["add"].call({"a": 1, "b": 1})).content == "2"
    assert seen.sessions_opened() == opened + 1
    # This test's calls (an earlier test's session may still be saying goodbye meanwhile).
    session_ids = {s for method, s in seen.requests[start:] if method == "POST" and s}
    assert len(session_ids) == 1

    add = tools["add"]
    assert isinstance(add, HoldsResources)
    await add.aclose()
    assert session_ids <= seen.sessions_ended()  # the server was told
    late = await tools["add"].call({"a": 1, "b": 1})
    assert late.is_error and "closed" in late.content


async def test_a_session_the_server_ended_is_replaced(
    tools: dict[str, Tool], servers: Servers
) -> None:
    seen = servers.mcp_seen
    assert (await tools["add"].call({"a": 1, "b": 2})).content == "3"
    session_id = seen.requests[-1][1]
    async with httpx.AsyncClient() as client:  # the server forgets it (as after a restart)
        ended = await client.delete(servers.mcp, headers={"mcp-session-id": session_id})
    assert ended.status_code == 200
    opened = seen.sessions_opened()

    outputs = [await tools["add"].call({"a": 2, "b": 2}) for _ in range(2)]

    # The server answered 404 (it ran nothing): the call went again on a new session.
    assert [o.content for o in outputs] == ["4", "4"]
    assert seen.sessions_opened() == opened + 1
    await tools["add"].aclose()  # type: ignore[attr-defined]


async def test_a_tool_error_the_server_answers_is_not_sent_twice(
    tools: dict[str, Tool], servers: Servers
) -> None:
    seen = servers.mcp_seen
    assert (await tools["add"].call({"a": 1, "b": 2})).content == "3"
    posts = sum(1 for method, _ in seen.requests if method == "POST")

    # Arguments the server's schema refuses: its error reaches the model, once.
    wrong = await tools["add"].call({"a": "not a number", "b": 2})

    assert wrong.is_error
    assert sum(1 for method, _ in seen.requests if method == "POST") - posts == 1
    await tools["add"].aclose()  # type: ignore[attr-defined]


async def test_a_session_idle_longer_than_the_call_deadline_still_answers(
    tools: dict[str, Tool], servers: Servers
) -> None:
    # Between two rounds the model may think for longer than one call may take; the session
    # (and any stream it keeps open) must not have timed out meanwhile.
    assert (await tools["add"].call({"a": 1, "b": 1})).content == "2"
    opened = servers.mcp_seen.sessions_opened()
    await asyncio.sleep(2.5)  # the policy's timeout_s is 2
    assert (await tools["add"].call({"a": 2, "b": 1})).content == "3"
    assert servers.mcp_seen.sessions_opened() == opened, "the same session answered"
    await tools["add"].aclose()  # type: ignore[attr-defined]


async def test_a_run_canceled_mid_call_still_ends_its_session(
    tools: dict[str, Tool], servers: Servers
) -> None:
    seen = servers.mcp_seen
    before = len(seen.requests)
    seen.slow_started.clear()
    call = asyncio.create_task(tools["slow"].call({"seconds": 30}))
    assert await asyncio.to_thread(seen.slow_started.wait, 10), "the call reached the tool"
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call

    await tools["slow"].aclose()  # type: ignore[attr-defined]

    session = next(s for _, s in seen.requests[before:] if s)
    assert session in seen.sessions_ended()


async def test_a_runs_openapi_calls_share_a_connection_and_no_cookies(
    tools: dict[str, Tool], servers: Servers
) -> None:
    weather = tools["get_weather"]
    before = len(servers.calls.requests)
    for city in ("Paris", "Lyon", "Nice"):
        assert not (await weather.call({"city": city})).is_error
    seen = servers.calls.requests[before:]

    assert len({r["client_port"] for r in seen}) == 1, "one connection for the run's calls"
    assert all("cookie" not in r["headers"] for r in seen)

    assert isinstance(weather, HoldsResources)
    await weather.aclose()
    with pytest.raises(RuntimeError, match="closed"):  # a run's tools end with the run
        await weather.call({"city": "Paris"})
