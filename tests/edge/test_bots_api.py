"""The product document's bot routes (/api/draftbot/*): exact shapes, ids as JSON numbers."""

from __future__ import annotations

import time
from typing import Any

import httpx

from tests.edge.envelope import assert_error, data_of
from tests.edge.plugin_fixtures import local_plugin

PRODUCT_DOC_BOT = {
    "name": "客服助手",
    "description": "专业的客服智能助手",
    "icon_url": "https://example.com/icon.png",
    "prompt": "你是一个专业的客服助手...",
    "model": "echo",
}


def create_bot(client: httpx.Client, **fields: Any) -> dict[str, Any]:
    data: dict[str, Any] = data_of(
        client.post("/api/draftbot/create", json={**PRODUCT_DOC_BOT, **fields})
    )
    return data


def draft(client: httpx.Client, bot_id: int | str) -> dict[str, Any]:
    data: dict[str, Any] = data_of(client.get(f"/v1/bots/{bot_id}?is_published=false"))
    return data


def test_create_draft_returns_the_documented_shape(client: httpx.Client) -> None:
    before = int(time.time())
    data = create_bot(client)

    assert set(data) == {
        "bot_id",
        "name",
        "description",
        "icon_url",
        "status",
        "created_at",
        "updated_at",
    }
    assert type(data["bot_id"]) is int and 0 < data["bot_id"] < 2**53
    assert data["name"] == PRODUCT_DOC_BOT["name"]
    assert data["description"] == PRODUCT_DOC_BOT["description"]
    assert data["icon_url"] == PRODUCT_DOC_BOT["icon_url"]
    assert data["status"] == "draft"
    assert type(data["created_at"]) is int and before - 1 <= data["created_at"] <= time.time() + 1
    assert data["updated_at"] == data["created_at"]


def test_update_display_info_returns_the_documented_shape(client: httpx.Client) -> None:
    bot = create_bot(client)
    data = data_of(
        client.post(
            "/api/draftbot/update_display_info",
            json={"bot_id": bot["bot_id"], "name": "高级客服助手", "description": "更专业"},
        )
    )
    assert data == {
        "bot_id": bot["bot_id"],
        "name": "高级客服助手",
        "description": "更专业",
        "updated_at": data["updated_at"],
    }
    assert type(data["updated_at"]) is int and data["updated_at"] >= bot["updated_at"]
    # Fields not sent keep their value.
    assert draft(client, bot["bot_id"])["icon_url"] == PRODUCT_DOC_BOT["icon_url"]


def test_publish_freezes_numbered_versions(client: httpx.Client) -> None:
    bot = create_bot(client)
    first = data_of(client.post("/api/draftbot/publish", json={"bot_id": bot["bot_id"]}))
    assert set(first) == {"bot_id", "version", "status", "published_at"}
    assert first["bot_id"] == bot["bot_id"]
    assert first["version"] == 1 and type(first["version"]) is int
    assert first["status"] == "online"
    assert type(first["published_at"]) is int and first["published_at"] >= bot["created_at"]

    second = data_of(client.post("/api/draftbot/publish", json={"bot_id": str(bot["bot_id"])}))
    assert second["version"] == 2


def test_curl_walkthrough_create_publish_get_online_info(client: httpx.Client) -> None:
    """The product document's sequence, with its own sample values."""
    bot = create_bot(client)
    bot_id = bot["bot_id"]
    published = data_of(client.post("/api/draftbot/publish", json={"bot_id": bot_id}))

    online = data_of(client.get("/v1/bot/get_online_info", params={"bot_id": bot_id}))
    assert online["bot_id"] == str(bot_id)
    assert online["name"] == "客服助手"
    assert online["description"] == "专业的客服智能助手"
    assert online["icon_url"] == "https://example.com/icon.png"
    assert online["version"] == "1"
    assert online["status"] == "online"
    assert online["model"] == "echo"
    assert online["published_at"] == published["published_at"]
    assert online["prompt"] == "你是一个专业的客服助手..."


def test_drafts_keep_changing_without_touching_the_published_version(
    client: httpx.Client,
) -> None:
    bot = create_bot(client, prompt="v1 prompt")
    data_of(client.post("/api/draftbot/publish", json={"bot_id": bot["bot_id"]}))
    data_of(
        client.post(
            "/api/draftbot/update_display_info",
            json={"bot_id": bot["bot_id"], "name": "renamed", "prompt": "v2 prompt"},
        )
    )
    online = data_of(client.get("/v1/bot/get_online_info", params={"bot_id": bot["bot_id"]}))
    assert (online["name"], online["prompt"]) == ("客服助手", "v1 prompt")
    current = draft(client, bot["bot_id"])
    assert (current["name"], current["prompt"], current["status"]) == (
        "renamed",
        "v2 prompt",
        "draft",
    )


def test_bot_config_fields_round_trip(client: httpx.Client) -> None:
    plugin_id = local_plugin(client)["plugin_id"]
    bot = create_bot(
        client,
        model_info_config={"temperature": 0.5, "max_tokens": 256, "top_p": 0.9},
        history_rounds=6,
        onboarding_info={"prologue": "你好", "suggested_questions": ["a?", "b?"]},
        variables=[{"key": "city", "description": "where", "default_value": "Beijing"}],
        tools=[
            {"type": "knowledge_base", "knowledge_id": 987654321},
            {"type": "plugin", "plugin_id": plugin_id},
            {"type": "plugin", "plugin_id": plugin_id, "api_name": "get_location"},
        ],
    )
    details = draft(client, bot["bot_id"])
    assert details["model"] == "echo"
    assert details["model_info"] == {
        "model_id": "echo",
        "model_name": "Built-in echo model (no network): repeats the last user message",
        "temperature": 0.5,
        "max_tokens": 256,
        "top_p": 0.9,
        "context_round": 6,
    }
    assert details["history_rounds"] == 6
    assert details["onboarding_info"] == {"prologue": "你好", "suggested_questions": ["a?", "b?"]}
    assert details["variables"][0]["keyword"] == "city"
    assert details["variables"][0]["default_value"] == "Beijing"
    assert details["tools"] == [
        {"type": "knowledge_base", "knowledge_id": "987654321"},
        {"type": "plugin", "plugin_id": plugin_id},
        {"type": "plugin", "plugin_id": plugin_id, "api_name": "get_location"},
    ]


def test_new_bots_keep_ten_rounds_of_history_unless_told_otherwise(client: httpx.Client) -> None:
    assert draft(client, create_bot(client)["bot_id"])["history_rounds"] == 10
    assert data_of(client.post("/v1/bot/create", json={"name": "official"}))["history_rounds"] == 10
    chosen = create_bot(client, model_info_config={"context_round": 3})
    assert draft(client, chosen["bot_id"])["history_rounds"] == 3
    # Zero is a choice too ("no history"), not a missing value.
    assert draft(client, create_bot(client, history_rounds=0)["bot_id"])["history_rounds"] == 0
    # Updates leave it alone unless sent.
    bot = create_bot(client, history_rounds=4)
    data_of(client.post("/api/draftbot/update_display_info", json={"bot_id": bot["bot_id"]}))
    data_of(client.post("/v1/bot/update", json={"bot_id": bot["bot_id"], "prompt": "p"}))
    assert draft(client, bot["bot_id"])["history_rounds"] == 4


def test_update_changes_only_the_config_fields_sent(client: httpx.Client) -> None:
    plugin_id = local_plugin(client)["plugin_id"]
    bot = create_bot(
        client,
        model_info_config={"temperature": 0.5},
        tools=[
            {"type": "knowledge_base", "knowledge_id": 1},
            {"type": "plugin", "plugin_id": plugin_id},
        ],
    )
    data_of(
        client.post(
            "/api/draftbot/update_display_info",
            json={
                "bot_id": bot["bot_id"],
                "model_info_config": {"max_tokens": 99},
                # The official shape replaces the knowledge bases and keeps the plugins.
                "knowledge": {"dataset_ids": ["3", 4]},
            },
        )
    )
    details = draft(client, bot["bot_id"])
    assert details["model_info"]["temperature"] == 0.5
    assert details["model_info"]["max_tokens"] == 99
    assert details["prompt"] == PRODUCT_DOC_BOT["prompt"]
    assert details["name"] == PRODUCT_DOC_BOT["name"]
    assert details["tools"] == [
        {"type": "knowledge_base", "knowledge_id": "3"},
        {"type": "knowledge_base", "knowledge_id": "4"},
        {"type": "plugin", "plugin_id": plugin_id},
    ]


def test_unknown_model_is_refused_at_create_and_update(client: httpx.Client) -> None:
    assert_error(
        client.post("/api/draftbot/create", json={"name": "m", "model": "no-such-model"}),
        400,
        "no-such-model",
    )
    bot = create_bot(client)
    before = draft(client, bot["bot_id"])
    assert_error(
        client.post(
            "/api/draftbot/update_display_info",
            json={"bot_id": bot["bot_id"], "name": "changed", "model": "no-such-model"},
        ),
        400,
        "no-such-model",
    )
    assert draft(client, bot["bot_id"]) == before


def test_delete_removes_the_bot(client: httpx.Client) -> None:
    bot = create_bot(client)
    data_of(client.post("/api/draftbot/publish", json={"bot_id": bot["bot_id"]}))
    assert data_of(client.post("/api/draftbot/delete", json={"bot_id": bot["bot_id"]})) == {}

    assert_error(client.get(f"/v1/bots/{bot['bot_id']}?is_published=false"), 404)
    assert_error(client.get("/v1/bot/get_online_info", params={"bot_id": bot["bot_id"]}), 404)
    assert_error(client.post("/api/draftbot/publish", json={"bot_id": bot["bot_id"]}), 404)
    assert_error(client.post("/api/draftbot/delete", json={"bot_id": bot["bot_id"]}), 404)


def test_null_fields_are_absent_and_unknown_fields_ignored(client: httpx.Client) -> None:
    data = data_of(
        client.post(
            "/api/draftbot/create",
            json={
                "name": "tolerant",
                "description": None,
                "icon_url": None,
                "space_id": None,
                "model_info_config": None,
                "something_new": {"nested": [1, 2]},
            },
        )
    )
    assert (data["description"], data["icon_url"]) == ("", "")
