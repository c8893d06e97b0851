"""The official /v1 bot routes: every id and version a JSON string, official object shapes."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import Account
from tests.edge.envelope import assert_error, data_of
from tests.edge.plugin_fixtures import local_plugin

OFFICIAL_CREATE = {
    "name": "official",
    "description": "made like cozepy does",
    "prompt_info": {"prompt": "be brief"},
    "model_info_config": {"model_id": "echo", "temperature": 0.2, "context_round": 3},
    "onboarding_info": {"prologue": "hello", "suggested_questions": ["why?"]},
    "knowledge": {"dataset_ids": ["55"]},
}

STRING_ID_FIELDS = ("bot_id", "owner_user_id", "space_id", "version")


def assert_v1_bot(bot: dict[str, Any]) -> None:
    for field in STRING_ID_FIELDS:
        assert type(bot[field]) is str and bot[field].isdigit(), (field, bot[field])
    for tool in bot["tools"]:
        assert all(type(v) is str for v in tool.values()), tool
    assert all(type(i) is str for i in bot["knowledge"]["dataset_ids"])
    for stamp in ("created_at", "updated_at", "create_time", "update_time", "published_at"):
        assert type(bot[stamp]) is int, stamp


def v1_create(client: httpx.Client, account: Account, **fields: Any) -> dict[str, Any]:
    plugin = local_plugin(client)
    plugin_id_list = {
        "id_list": [{"plugin_id": plugin["plugin_id"], "api_id": plugin["tools"][1]["api_id"]}]
    }
    body = {
        **OFFICIAL_CREATE,
        "plugin_id_list": plugin_id_list,
        "space_id": str(account.user_id),
        **fields,
    }
    data: dict[str, Any] = data_of(client.post("/v1/bot/create", json=body))
    return data


def test_v1_create_returns_the_official_bot(client: httpx.Client, account: Account) -> None:
    bot = v1_create(client, account)
    assert_v1_bot(bot)
    assert bot["space_id"] == str(account.user_id)
    assert bot["owner_user_id"] == str(account.user_id)
    assert (bot["status"], bot["version"], bot["published_at"]) == ("draft", "0", 0)
    assert bot["prompt_info"] == {"prompt": "be brief"}
    assert bot["model_info"]["model_id"] == "echo"
    assert bot["model_info"]["temperature"] == 0.2
    assert bot["model_info"]["context_round"] == 3
    assert bot["onboarding_info"] == {"prologue": "hello", "suggested_questions": ["why?"]}
    plugin_id = bot["plugin_info_list"][0]["plugin_id"]
    assert bot["tools"] == [
        {"type": "knowledge_base", "knowledge_id": "55"},
        {"type": "plugin", "plugin_id": plugin_id, "api_name": "get_battery"},
    ]
    [info] = bot["plugin_info_list"]
    assert (info["name"], info["description"]) == ("device", "functions the client runs")
    assert [(a["name"], a["description"]) for a in info["api_info_list"]] == [
        ("get_battery", "get_battery on the device")
    ]
    assert info["api_info_list"][0]["api_id"].isdigit()


def test_v1_update_then_publish_then_read(client: httpx.Client, account: Account) -> None:
    bot = v1_create(client, account)
    updated = data_of(
        client.post(
            "/v1/bot/update",
            json={"bot_id": bot["bot_id"], "name": "official 2", "prompt_info": {"prompt": "p2"}},
        )
    )
    assert_v1_bot(updated)
    assert (updated["name"], updated["prompt"]) == ("official 2", "p2")

    published = data_of(client.post("/v1/bot/publish", json={"bot_id": bot["bot_id"]}))
    assert_v1_bot(published)
    assert (published["version"], published["status"]) == ("1", "online")

    online = data_of(client.get("/v1/bot/get_online_info", params={"bot_id": bot["bot_id"]}))
    details = data_of(client.get(f"/v1/bots/{bot['bot_id']}"))
    also_details = data_of(client.get(f"/v1/bots/{bot['bot_id']}?is_published=true"))
    assert online == details == also_details
    assert_v1_bot(details)
    assert (details["name"], details["prompt"], details["version"]) == ("official 2", "p2", "1")
    assert details["create_time"] == details["created_at"]


def test_never_published_bot_has_no_online_version(client: httpx.Client, account: Account) -> None:
    bot = v1_create(client, account)
    assert_error(client.get("/v1/bot/get_online_info", params={"bot_id": bot["bot_id"]}), 404)
    assert_error(client.get(f"/v1/bots/{bot['bot_id']}"), 404)
    assert data_of(client.get(f"/v1/bots/{bot['bot_id']}?is_published=false"))["name"] == (
        "official"
    )


def test_v1_list_filters_by_publish_status_and_pages(
    client: httpx.Client, account: Account
) -> None:
    # Every test has a fresh account, so its space holds exactly the bots made here.
    published_ids = []
    for name in ("p1", "p2", "p3"):
        bot = v1_create(client, account, name=name)
        data_of(client.post("/v1/bot/publish", json={"bot_id": bot["bot_id"]}))
        published_ids.append(bot["bot_id"])
    unpublished = v1_create(client, account, name="draft only")
    space = str(account.user_id)

    def listing(**params: Any) -> dict[str, Any]:
        data: dict[str, Any] = data_of(
            client.get("/v1/bots", params={"workspace_id": space, **params})
        )
        return data

    online = listing()
    assert online["total"] == 3
    assert {item["id"] for item in online["items"]} == set(published_ids)
    for item in online["items"]:
        assert item["is_published"] is True
        assert type(item["id"]) is str and item["bot_id"] == item["id"]
        assert type(item["owner_user_id"]) is str and type(item["updated_at"]) is int

    everything = listing(publish_status="all")
    assert everything["total"] == 4
    assert {i["id"] for i in listing(publish_status="unpublished_draft")["items"]} == {
        unpublished["bot_id"]
    }
    assert listing(publish_status="published_draft")["total"] == 3

    pages = [listing(publish_status="all", page_size=3, page_index=n)["items"] for n in (1, 2, 3)]
    assert [len(p) for p in pages] == [3, 1, 0]
    assert len({i["id"] for p in pages for i in p}) == 4

    assert_error(client.get("/v1/bots", params={"publish_status": "sometimes"}), 400, "publish")
    assert_error(client.get("/v1/bots", params={"page_size": 0}), 400, "page_size")


def test_published_bots_list_has_string_publish_time(
    client: httpx.Client, account: Account
) -> None:
    bot = v1_create(client, account)
    published = data_of(client.post("/v1/bot/publish", json={"bot_id": bot["bot_id"]}))
    v1_create(client, account, name="never published")

    data = data_of(
        client.get(
            "/v1/space/published_bots_list",
            params={"space_id": account.user_id, "page_index": 1, "page_size": 10},
        )
    )
    assert data["total"] == 1
    (entry,) = data["space_bots"]
    assert entry["bot_id"] == bot["bot_id"]
    assert entry["bot_name"] == "official"
    assert entry["publish_time"] == str(published["published_at"])
    assert_error(client.get("/v1/space/published_bots_list"), 400, "space_id")


def test_ids_accepted_as_numbers_and_numeric_strings(
    client: httpx.Client, account: Account
) -> None:
    bot = v1_create(client, account, space_id=account.user_id)
    as_number = int(bot["bot_id"])
    data_of(client.post("/v1/bot/update", json={"bot_id": as_number, "name": "by number"}))
    data_of(client.post("/v1/bot/update", json={"bot_id": bot["bot_id"], "name": "by string"}))
    assert data_of(client.post("/api/draftbot/publish", json={"bot_id": as_number}))["version"] == 1
    assert data_of(client.post("/v1/bot/publish", json={"bot_id": bot["bot_id"]}))["version"] == (
        "2"
    )
