"""Plugins over gRPC against a real registry process, on SQLite and PostgreSQL: OpenAPI,
MCP (a real server from the mcp SDK) and local plugins, tenancy, sealed secrets, bot
bindings and ResolveTools."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import pytest
import sqlalchemy as sa
from google.protobuf.field_mask_pb2 import FieldMask

from cozeplus.rpc.v1 import plugins_pb2 as ppb
from cozeplus.rpc.v1 import registry_pb2 as pb
from cozeplus.rpc.v1.plugins_pb2_grpc import PluginsStub
from tests.plugins.listeners import http_response, listener
from tests.plugins.servers import McpSeen, mcp_app, serve_in_thread, weather_openapi
from tests.registry.conftest import RegistryUnderTest

if TYPE_CHECKING:
    from cozeplus.rpc.v1.plugins_pb2_grpc import PluginsAsyncStub
    from cozeplus.rpc.v1.registry_pb2_grpc import BotRegistryAsyncStub

NOT_FOUND = grpc.StatusCode.NOT_FOUND
INVALID = grpc.StatusCode.INVALID_ARGUMENT
SECRET = "sk-test-SECRET-value-3141592653"
MCP_SECRET = "mcp-header-SECRET-2718281828"


@pytest.fixture
def plugins_rpc(registry_channel: grpc.aio.Channel) -> PluginsAsyncStub:
    return PluginsStub(registry_channel)  # type: ignore[return-value]


@pytest.fixture(scope="module")
def mcp_server() -> Iterator[tuple[str, McpSeen]]:
    seen = McpSeen()
    with serve_in_thread(mcp_app(seen)) as base:
        yield base + "/mcp", seen


@asynccontextmanager
async def expect_status(code: grpc.StatusCode, message_part: str = "") -> AsyncIterator[None]:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        yield
    details = caught.value.details() or ""
    assert caught.value.code() == code, (
        f"expected {code.name}, got {caught.value.code()}: {details}"
    )
    assert message_part in details, f"{message_part!r} not in {details!r}"


def openapi_spec(
    name: str = "weather", document: str | None = None, auth: ppb.PluginAuth | None = None
) -> ppb.PluginSpec:
    return ppb.PluginSpec(
        name=name,
        description="Weather API",
        type="openapi",
        openapi=document or weather_openapi("http://127.0.0.1:9"),
        auth=auth or ppb.PluginAuth(type="none"),
    )


async def create(rpc: PluginsAsyncStub, owner_id: int, spec: ppb.PluginSpec) -> ppb.Plugin:
    plugin: ppb.Plugin = await rpc.CreatePlugin(
        ppb.CreatePluginRequest(owner_id=owner_id, spec=spec)
    )
    return plugin


async def test_openapi_plugin_tools_and_secrets_never_returned(
    plugins_rpc: PluginsAsyncStub, owner_id: int
) -> None:
    spec = openapi_spec(
        auth=ppb.PluginAuth(type="api_key", location="query", name="key", value=SECRET)
    )
    plugin = await create(plugins_rpc, owner_id, spec)
    assert plugin.id > 0 and plugin.type == "openapi" and plugin.url == "http://127.0.0.1:9"
    assert [t.name for t in plugin.tools] == [
        "get_weather",
        "add_note",
        "always_fails",
        "hangs",
        "huge_answer",
        "redirects_away",
    ]
    weather = json.loads(plugin.tools[0].parameters_json)
    assert weather["required"] == ["city"]
    assert set(weather["properties"]) == {"city", "units", "X-Trace"}
    note = json.loads(plugin.tools[1].parameters_json)
    assert note["properties"]["body"]["required"] == ["text"]
    assert plugin.auth == ppb.PluginAuth(type="api_key", location="query", name="key")
    ref = ppb.PluginRef(owner_id=owner_id, plugin_id=plugin.id)
    for answer in (
        plugin,
        await plugins_rpc.GetPlugin(ref),
        await plugins_rpc.ListPlugins(ppb.ListPluginsRequest(owner_id=owner_id)),
    ):
        assert SECRET not in str(answer)
    listing = await plugins_rpc.ListPlugins(ppb.ListPluginsRequest(owner_id=owner_id))
    assert listing.total == 1 and listing.plugins[0].id == plugin.id


async def test_secrets_are_sealed_at_rest_and_absent_from_logs(
    plugins_rpc: PluginsAsyncStub,
    owner_id: int,
    registry_under_test: RegistryUnderTest,
    mcp_server: tuple[str, McpSeen],
) -> None:
    plugin = await create(
        plugins_rpc, owner_id, openapi_spec(auth=ppb.PluginAuth(type="bearer", value=SECRET))
    )
    mcp = await create(
        plugins_rpc,
        owner_id,
        ppb.PluginSpec(
            name="m", type="mcp", mcp_url=mcp_server[0], mcp_headers={"X-Token": MCP_SECRET}
        ),
    )
    engine = sa.create_engine(
        registry_under_test.database_url.replace("postgresql://", "postgresql+psycopg://")
    )
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.text("SELECT * FROM plugins WHERE id IN (:a, :b)"), {"a": plugin.id, "b": mcp.id}
            ).all()
    finally:
        engine.dispose()
    assert len(rows) == 2
    dumped = " ".join(str(tuple(r)) for r in rows)
    assert SECRET not in dumped and MCP_SECRET not in dumped
    assert all(r.sealed_secrets for r in rows)
    text = await asyncio.to_thread(Path(registry_under_test.process.log_path).read_text)
    assert SECRET not in text and MCP_SECRET not in text


async def test_update_keeps_api_ids_of_unchanged_operations(
    plugins_rpc: PluginsAsyncStub, owner_id: int
) -> None:
    plugin = await create(plugins_rpc, owner_id, openapi_spec())
    ids = {t.name: t.api_id for t in plugin.tools}
    changed = weather_openapi("http://127.0.0.1:9").replace(
        "operationId: add_note", "operationId: save_note"
    )
    updated = await plugins_rpc.UpdatePlugin(
        ppb.UpdatePluginRequest(
            owner_id=owner_id, plugin_id=plugin.id, spec=openapi_spec("w2", changed)
        )
    )
    new_ids = {t.name: t.api_id for t in updated.tools}
    assert updated.name == "w2"
    assert new_ids["get_weather"] == ids["get_weather"]
    assert "add_note" not in new_ids and new_ids["save_note"] not in ids.values()
    again = await plugins_rpc.GetPlugin(ppb.PluginRef(owner_id=owner_id, plugin_id=plugin.id))
    assert {t.name: t.api_id for t in again.tools} == new_ids


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ("not: [valid", "not valid JSON or YAML"),
        ("openapi: 2.0\ninfo: {title: x, version: '1'}", "unsupported version"),
        (
            "openapi: 3.0.3\ninfo: {title: x, version: '1'}\nservers: [{url: 'http://a.example'}]\n"
            "paths: {/a: {get: {operationId: a, parameters: [{$ref: 'http://169.254.169.254/latest'}],"
            " responses: {'200': {description: ok}}}}}",
            "is not local",
        ),
        (
            "openapi: 3.0.3\ninfo: {title: x, version: '1'}\nservers: [{url: 'http://a.example'}]\n"
            "paths: {/a: {get: {operationId: a, parameters: [{$ref: '#/components/parameters/P'}],"
            " responses: {'200': {description: ok}}}}}\n"
            "components: {parameters: {P: {$ref: '#/components/parameters/Q'},"
            " Q: {$ref: '#/components/parameters/P'}}}",
            "$ref loop",
        ),
        ("a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]", "aliases"),
        ('{"a":' + "[" * 5000 + "]" * 5000 + "}", "nested deeper"),
        ("a:\n" + "".join("  " * i + "- \n" for i in range(1, 200)), "nested deeper"),
        ("openapi: 3.0.3\n" + "x" * 1_100_000, "larger than"),
        (
            "openapi: 3.0.3\ninfo: {title: x, version: '1'}\nservers: [{url: 'http://a.example'}]\n"
            "paths: {/a: {get: {responses: {'200': {description: ok}}}}}",
            "has no operationId",
        ),
        (
            "openapi: 3.0.3\ninfo: {title: x, version: '1'}\npaths: {/a: {get: {operationId: a,"
            " responses: {'200': {description: ok}}}}}",
            "names no server",
        ),
        (
            "openapi: 3.0.3\ninfo: {title: x}\nservers: [{url: 'http://a.example'}]\npaths: {}",
            "invalid document",
        ),
    ],
)
async def test_invalid_documents_are_refused_naming_the_problem(
    plugins_rpc: PluginsAsyncStub, owner_id: int, document: str, problem: str
) -> None:
    async with expect_status(INVALID, problem):
        await create(plugins_rpc, owner_id, openapi_spec(document=document))
    listing = await plugins_rpc.ListPlugins(ppb.ListPluginsRequest(owner_id=owner_id))
    assert listing.total == 0


async def test_another_account_cannot_see_use_or_change_a_plugin(
    plugins_rpc: PluginsAsyncStub,
    bots_rpc: BotRegistryAsyncStub,
    owner_id: int,
    other_owner_id: int,
) -> None:
    plugin = await create(plugins_rpc, owner_id, openapi_spec())
    theirs = ppb.PluginRef(owner_id=other_owner_id, plugin_id=plugin.id)
    for method in (plugins_rpc.GetPlugin, plugins_rpc.DeletePlugin, plugins_rpc.RefreshPlugin):
        async with expect_status(NOT_FOUND):
            await method(theirs)
    async with expect_status(NOT_FOUND):
        await plugins_rpc.UpdatePlugin(
            ppb.UpdatePluginRequest(
                owner_id=other_owner_id, plugin_id=plugin.id, spec=openapi_spec("x")
            )
        )
    listing = await plugins_rpc.ListPlugins(ppb.ListPluginsRequest(owner_id=other_owner_id))
    assert listing.total == 0
    async with expect_status(NOT_FOUND, f"plugin {plugin.id} not found"):
        await bots_rpc.CreateDraft(
            pb.CreateDraftRequest(
                owner_id=other_owner_id,
                name="thief",
                config=pb.BotConfig(tools=[pb.ToolRef(type="plugin", plugin_id=plugin.id)]),
            )
        )
    mine = await plugins_rpc.GetPlugin(ppb.PluginRef(owner_id=owner_id, plugin_id=plugin.id))
    assert mine.name == "weather"


async def test_bot_bindings_and_resolve_tools(
    plugins_rpc: PluginsAsyncStub, bots_rpc: BotRegistryAsyncStub, owner_id: int
) -> None:
    first = await create(
        plugins_rpc,
        owner_id,
        openapi_spec("Weather One", auth=ppb.PluginAuth(type="bearer", value=SECRET)),
    )
    second = await create(plugins_rpc, owner_id, openapi_spec("weather.two!"))
    note_id = next(t.api_id for t in second.tools if t.name == "add_note")
    async with expect_status(INVALID, "has no tool with api_name 'nope'"):
        await bots_rpc.CreateDraft(
            pb.CreateDraftRequest(
                owner_id=owner_id,
                name="b",
                config=pb.BotConfig(
                    tools=[pb.ToolRef(type="plugin", plugin_id=first.id, api_name="nope")]
                ),
            )
        )
    bot = await bots_rpc.CreateDraft(
        pb.CreateDraftRequest(
            owner_id=owner_id,
            name="b",
            config=pb.BotConfig(
                tools=[
                    pb.ToolRef(type="plugin", plugin_id=first.id),
                    pb.ToolRef(type="plugin", plugin_id=second.id, api_name="get_weather"),
                    pb.ToolRef(type="plugin", plugin_id=second.id, api_id=note_id),
                ]
            ),
        )
    )
    stored = list(bot.config.tools)
    assert (stored[1].api_name, stored[1].api_id) == ("get_weather", second.tools[0].api_id)
    assert (stored[2].api_name, stored[2].api_id) == ("add_note", note_id)

    resolved = await plugins_rpc.ResolveTools(
        ppb.ResolveToolsRequest(owner_id=owner_id, bot_id=bot.id)
    )
    names = [t.name for t in resolved.tools]
    assert names == [
        "Weather_One_get_weather",
        "Weather_One_add_note",
        "always_fails",
        "hangs",
        "huge_answer",
        "redirects_away",
        "weather_two_get_weather",
        "weather_two_add_note",
    ]
    weather = resolved.tools[0]
    assert weather.operation_name == "get_weather" and weather.plugin_type == "openapi"
    assert weather.auth.type == "bearer" and weather.auth.value == SECRET
    assert weather.http.method == "GET" and weather.http.path == "/weather/{city}"
    assert weather.http.server_url == "http://127.0.0.1:9"
    assert [(p.name, p.location, p.required) for p in weather.http.parameters] == [
        ("city", "path", True),
        ("units", "query", False),
        ("X-Trace", "header", False),
    ]
    assert resolved.tools[1].http.has_json_body
    async with expect_status(NOT_FOUND):
        await plugins_rpc.ResolveTools(
            ppb.ResolveToolsRequest(owner_id=owner_id + 1, bot_id=bot.id)
        )
    await plugins_rpc.DeletePlugin(ppb.PluginRef(owner_id=owner_id, plugin_id=first.id))
    after = await plugins_rpc.ResolveTools(
        ppb.ResolveToolsRequest(owner_id=owner_id, bot_id=bot.id)
    )
    assert [t.name for t in after.tools] == ["get_weather", "add_note"]


async def test_mcp_plugin_discovers_tools_with_headers_and_refreshes(
    plugins_rpc: PluginsAsyncStub, owner_id: int, mcp_server: tuple[str, McpSeen]
) -> None:
    url, seen = mcp_server
    plugin = await create(
        plugins_rpc,
        owner_id,
        ppb.PluginSpec(name="calc", type="mcp", mcp_url=url, mcp_headers={"X-Token": MCP_SECRET}),
    )
    assert [t.name for t in plugin.tools] == ["add", "slow", "big", "explode"]
    assert json.loads(plugin.tools[0].parameters_json)["required"] == ["a", "b"]
    assert any(h.get("x-token") == MCP_SECRET for h in seen.headers)
    assert MCP_SECRET not in str(plugin)
    refreshed = await plugins_rpc.RefreshPlugin(
        ppb.PluginRef(owner_id=owner_id, plugin_id=plugin.id)
    )
    assert [t.api_id for t in refreshed.tools] == [t.api_id for t in plugin.tools]


async def test_mcp_discovery_obeys_outbound_safety(
    plugins_rpc: PluginsAsyncStub, owner_id: int
) -> None:
    async with listener("127.0.0.2", lambda h: http_response(200, b"{}")) as forbidden:
        async with expect_status(INVALID, "127.0.0.2 is a loopback address"):
            await create(
                plugins_rpc,
                owner_id,
                ppb.PluginSpec(name="m", type="mcp", mcp_url=forbidden.url + "/mcp"),
            )
        assert forbidden.connections == 0
    async with (
        listener("127.0.0.1", lambda h: None) as hanging,
        expect_status(INVALID, "did not answer"),
    ):
        await create(
            plugins_rpc,
            owner_id,
            ppb.PluginSpec(name="m", type="mcp", mcp_url=hanging.url + "/mcp"),
        )


async def test_local_plugin_functions_are_validated(
    plugins_rpc: PluginsAsyncStub, owner_id: int
) -> None:
    functions = [
        {
            "name": "get_location",
            "description": "Where the user is",
            "parameters": {"type": "object", "properties": {"precision": {"type": "string"}}},
        }
    ]
    plugin = await create(
        plugins_rpc,
        owner_id,
        ppb.PluginSpec(name="loc", type="local", functions_json=json.dumps(functions)),
    )
    assert [t.name for t in plugin.tools] == ["get_location"]
    for bad, problem in [
        ("", "non-empty list"),
        ('[{"name": "a b"}]', "must be 1-64 letters"),
        (
            '[{"name": "a", "parameters": {"type": "object", "properties": {"x": {"type": 5}}}}]',
            "not a valid JSON Schema",
        ),
        ('[{"name": "a", "parameters": {"type": "string"}}]', '"type": "object"'),
        ('[{"name": "a"}, {"name": "a"}]', "used twice"),
    ]:
        async with expect_status(INVALID, problem):
            await create(
                plugins_rpc, owner_id, ppb.PluginSpec(name="loc", type="local", functions_json=bad)
            )
    async with expect_status(INVALID, "type must be one of"):
        await create(plugins_rpc, owner_id, ppb.PluginSpec(name="x", type="workflow"))
    async with expect_status(INVALID, "type cannot change"):
        await plugins_rpc.UpdatePlugin(
            ppb.UpdatePluginRequest(owner_id=owner_id, plugin_id=plugin.id, spec=openapi_spec())
        )


async def test_resolve_tools_of_a_published_version(
    plugins_rpc: PluginsAsyncStub, bots_rpc: BotRegistryAsyncStub, owner_id: int
) -> None:
    plugin = await create(plugins_rpc, owner_id, openapi_spec())
    bot = await bots_rpc.CreateDraft(
        pb.CreateDraftRequest(
            owner_id=owner_id,
            name="b",
            config=pb.BotConfig(
                tools=[pb.ToolRef(type="plugin", plugin_id=plugin.id, api_name="get_weather")]
            ),
        )
    )
    await bots_rpc.Publish(pb.BotRef(owner_id=owner_id, bot_id=bot.id))
    # The draft moves on to every tool; version 1 keeps its one tool.
    await bots_rpc.UpdateConfig(
        pb.UpdateConfigRequest(
            owner_id=owner_id,
            bot_id=bot.id,
            config=pb.BotConfig(tools=[pb.ToolRef(type="plugin", plugin_id=plugin.id)]),
            update_mask=FieldMask(paths=["tools"]),
        )
    )
    v1 = await plugins_rpc.ResolveTools(
        ppb.ResolveToolsRequest(owner_id=owner_id, bot_id=bot.id, bot_version=1)
    )
    draft = await plugins_rpc.ResolveTools(
        ppb.ResolveToolsRequest(owner_id=owner_id, bot_id=bot.id, bot_version=0)
    )
    assert [t.name for t in v1.tools] == ["get_weather"]
    assert len(draft.tools) == len(plugin.tools)
    async with expect_status(NOT_FOUND, "no version 2"):
        await plugins_rpc.ResolveTools(
            ppb.ResolveToolsRequest(owner_id=owner_id, bot_id=bot.id, bot_version=2)
        )
