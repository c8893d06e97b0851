"""/v1/plugins over HTTP against the real edge and registry (wire contract section 7), and
plugin bindings through both bot views and cozepy."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cozepy import Coze, PluginIDList, TokenAuth

from services.cli.system import ServiceProcess
from tests.conftest import Account
from tests.edge.envelope import assert_error, data_of
from tests.edge.plugin_fixtures import local_plugin
from tests.plugins.servers import McpSeen, mcp_app, serve_in_thread, weather_openapi

SECRET = "edge-SECRET-api-key-1618033988"
MCP_SECRET = "edge-mcp-SECRET-1414213562"


@pytest.fixture(scope="module")
def mcp_url() -> Iterator[str]:
    with serve_in_thread(mcp_app(McpSeen())) as base:
        yield base + "/mcp"


def openapi_body(**fields: Any) -> dict[str, Any]:
    return {
        "name": "weather",
        "description": "Weather API",
        "type": "openapi",
        "openapi": weather_openapi("http://127.0.0.1:9"),
        "auth": {"type": "api_key", "location": "header", "name": "X-Api-Key", "value": SECRET},
        **fields,
    }


def test_create_get_list_update_delete(client: httpx.Client) -> None:
    created = data_of(client.post("/v1/plugins", json=openapi_body()))
    assert set(created) >= {
        "plugin_id",
        "name",
        "description",
        "type",
        "tools",
        "created_at",
        "updated_at",
    }
    assert created["plugin_id"].isdigit() and created["type"] == "openapi"
    assert created["auth"] == {"type": "api_key", "location": "header", "name": "X-Api-Key"}
    tool = created["tools"][0]
    assert tool["name"] == "get_weather" and tool["api_id"].isdigit()
    assert tool["parameters"]["required"] == ["city"]
    plugin_id = created["plugin_id"]

    assert data_of(client.get(f"/v1/plugins/{plugin_id}")) == created
    listing = data_of(client.get("/v1/plugins", params={"page_num": 1, "page_size": 1}))
    assert listing["total"] >= 1 and [p["plugin_id"] for p in listing["items"]] == [plugin_id]

    # Re-import without the secret and with one operation renamed: the secret is kept,
    # api_ids of unchanged operations too.
    body = openapi_body(
        name="weather 2", auth={"type": "api_key", "location": "header", "name": "X-Api-Key"}
    )
    body["openapi"] = body["openapi"].replace("add_note", "save_note")
    updated = data_of(client.put(f"/v1/plugins/{plugin_id}", json=body))
    assert updated["name"] == "weather 2"
    assert updated["tools"][0]["api_id"] == tool["api_id"]
    assert updated["tools"][1]["name"] == "save_note"

    assert data_of(client.delete(f"/v1/plugins/{plugin_id}")) == {}
    assert_error(client.get(f"/v1/plugins/{plugin_id}"), 404, "not found")
    for response in (created, updated, listing):
        assert SECRET not in str(response)


def test_bad_input_is_a_400_naming_the_problem(client: httpx.Client) -> None:
    assert_error(
        client.post("/v1/plugins", json=openapi_body(openapi="openapi: 3.0.0\ninfo: {title: x}")),
        400,
        "openapi",
    )
    assert_error(
        client.post(
            "/v1/plugins",
            json=openapi_body(
                openapi=weather_openapi("x").replace("#/components", "https://evil.example/x")
            ),
        ),
        400,
        "is not local",
    )
    assert_error(client.post("/v1/plugins", json={"name": "x", "type": "workflow"}), 400, "type")
    assert_error(
        client.post("/v1/plugins", json=openapi_body(auth={"type": "bearer"})), 400, "auth.value"
    )
    assert_error(client.get("/v1/plugins/abc"), 400)
    assert_error(client.get("/v1/plugins", params={"page_size": 0}), 400, "page_size")


def test_mcp_plugin_via_http_with_refresh(client: httpx.Client, mcp_url: str) -> None:
    created = data_of(
        client.post(
            "/v1/plugins",
            json={
                "name": "calc",
                "type": "mcp",
                "url": mcp_url,
                "headers": {"X-Token": MCP_SECRET},
            },
        )
    )
    assert [t["name"] for t in created["tools"]] == ["add", "slow", "big", "explode"]
    assert (created["url"] == mcp_url and "auth" not in created) or created.get("auth") is None
    refreshed = data_of(client.post(f"/v1/plugins/{created['plugin_id']}/refresh"))
    assert [t["api_id"] for t in refreshed["tools"]] == [t["api_id"] for t in created["tools"]]
    assert MCP_SECRET not in str(created) + str(refreshed)
    assert_error(
        client.post(
            "/v1/plugins", json={"name": "m", "type": "mcp", "url": "http://127.0.0.2:1/mcp"}
        ),
        400,
        "loopback",
    )


def test_another_account_cannot_see_use_or_change_a_plugin(
    client: httpx.Client, edge_url: str, other_account: Account
) -> None:
    plugin = local_plugin(client)
    plugin_id = plugin["plugin_id"]
    with httpx.Client(base_url=edge_url, headers=other_account.headers, timeout=30) as other:
        assert_error(other.get(f"/v1/plugins/{plugin_id}"), 404)
        assert_error(other.put(f"/v1/plugins/{plugin_id}", json=openapi_body()), 404)
        assert_error(other.post(f"/v1/plugins/{plugin_id}/refresh"), 404)
        assert_error(other.delete(f"/v1/plugins/{plugin_id}"), 404)
        assert plugin_id not in str(data_of(other.get("/v1/plugins")))
        assert_error(
            other.post(
                "/v1/bot/create",
                json={"name": "b", "plugin_id_list": {"id_list": [{"plugin_id": plugin_id}]}},
            ),
            404,
            f"plugin {plugin_id} not found",
        )
        assert_error(
            other.post(
                "/api/draftbot/create",
                json={"name": "b", "tools": [{"type": "plugin", "plugin_id": plugin_id}]},
            ),
            404,
            f"plugin {plugin_id} not found",
        )
    assert data_of(client.get(f"/v1/plugins/{plugin_id}")) == plugin


def test_unknown_tool_of_a_plugin_is_a_400(client: httpx.Client) -> None:
    plugin = local_plugin(client)
    assert_error(
        client.post(
            "/api/draftbot/create",
            json={
                "name": "b",
                "tools": [{"type": "plugin", "plugin_id": plugin["plugin_id"], "api_name": "nope"}],
            },
        ),
        400,
        "api_name 'nope'",
    )
    assert_error(
        client.post(
            "/v1/bot/create",
            json={
                "name": "b",
                "plugin_id_list": {"id_list": [{"plugin_id": plugin["plugin_id"], "api_id": "1"}]},
            },
        ),
        400,
        "api_id 1",
    )


def test_both_views_read_the_same_stored_list(client: httpx.Client) -> None:
    plugin = local_plugin(client)
    location = plugin["tools"][0]
    bot = data_of(
        client.post(
            "/api/draftbot/create",
            json={
                "name": "b",
                "tools": [
                    {"type": "plugin", "plugin_id": plugin["plugin_id"], "api_name": "get_location"}
                ],
            },
        )
    )
    detail = data_of(client.get(f"/v1/bots/{bot['bot_id']}", params={"is_published": "false"}))
    assert detail["plugin_info_list"] == [
        {
            "plugin_id": plugin["plugin_id"],
            "name": "device",
            "description": "functions the client runs",
            "icon_url": "",
            "api_info_list": [
                {
                    "api_id": location["api_id"],
                    "name": "get_location",
                    "description": "get_location on the device",
                }
            ],
        }
    ]
    # The official view replaces the plugin bindings: the whole plugin now.
    data_of(
        client.post(
            "/v1/bot/update",
            json={
                "bot_id": bot["bot_id"],
                "plugin_id_list": {"id_list": [{"plugin_id": plugin["plugin_id"], "api_id": ""}]},
            },
        )
    )
    detail = data_of(client.get(f"/v1/bots/{bot['bot_id']}", params={"is_published": "false"}))
    assert detail["tools"] == [{"type": "plugin", "plugin_id": plugin["plugin_id"]}]
    assert [a["name"] for a in detail["plugin_info_list"][0]["api_info_list"]] == [
        "get_location",
        "get_battery",
    ]


def test_cozepy_binds_plugins_and_reads_plugin_info_list(
    client: httpx.Client, edge_url: str, account: Account
) -> None:
    plugin = local_plugin(client, "gadget")
    battery = plugin["tools"][1]
    coze = Coze(auth=TokenAuth(account.token), base_url=edge_url)
    created = coze.bots.create(
        space_id=str(account.user_id),
        name="with plugin",
        plugin_id_list=PluginIDList(
            id_list=[
                PluginIDList.PluginIDInfo(plugin_id=plugin["plugin_id"], api_id=battery["api_id"])
            ]
        ),
    )
    coze.bots.publish(bot_id=created.bot_id)
    bot = coze.bots.retrieve(bot_id=created.bot_id)
    [info] = bot.plugin_info_list
    assert (info.plugin_id, info.name) == (plugin["plugin_id"], "gadget")
    assert [(a.api_id, a.name) for a in info.api_info_list] == [(battery["api_id"], "get_battery")]
    # cozepy 0.20's bots.update accepts plugin_id_list but does not send it (its request body
    # leaves the field out), so updates through that view are tested over plain HTTP in
    # test_both_views_read_the_same_stored_list.


def test_secrets_are_in_no_log_line(
    client: httpx.Client, edge: ServiceProcess, registry: ServiceProcess, mcp_url: str
) -> None:
    data_of(client.post("/v1/plugins", json=openapi_body()))
    data_of(
        client.post(
            "/v1/plugins",
            json={"name": "c", "type": "mcp", "url": mcp_url, "headers": {"X-Token": MCP_SECRET}},
        )
    )
    # A refused create logs too; its secret must not appear either.
    assert_error(client.post("/v1/plugins", json=openapi_body(openapi="{")), 400)
    for process in (edge, registry):
        text = Path(process.log_path).read_text()
        assert SECRET not in text and MCP_SECRET not in text
