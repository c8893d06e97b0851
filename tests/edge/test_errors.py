"""Bad input as a new user sends it: each gets the documented envelope and status, carries
the log id, and leaves the store as it was."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.edge.envelope import assert_error, assert_log_id, data_of

TEN_MB = 10 * 1024 * 1024


def bot_count(client: httpx.Client) -> int:
    total: int = data_of(client.get("/v1/bots", params={"publish_status": "all"}))["total"]
    return total


@pytest.fixture
def bot(client: httpx.Client) -> dict[str, Any]:
    data: dict[str, Any] = data_of(client.post("/api/draftbot/create", json={"name": "target"}))
    return data


def test_success_and_error_responses_carry_a_log_id(client: httpx.Client) -> None:
    ok = client.get("/healthz")
    assert data_of(ok) == {"status": "ok"}
    unknown_route = client.get("/no/such/route")
    assert_error(unknown_route, 404)
    assert unknown_route.headers["x-log-id"] != ok.headers["x-log-id"]
    assert_error(client.put("/v1/bots"), 405)


def test_malformed_json(client: httpx.Client) -> None:
    response = client.post(
        "/api/draftbot/create",
        content=b'{"name": "x",',
        headers={"content-type": "application/json"},
    )
    assert_error(response, 400, "malformed JSON")
    assert bot_count(client) == 0


def test_body_that_is_not_an_object(client: httpx.Client) -> None:
    for body in (b"[1, 2]", b'"name"', b"42"):
        response = client.post(
            "/api/draftbot/create", content=body, headers={"content-type": "application/json"}
        )
        assert_error(response, 400, "JSON object")
    # curl -d without -H 'Content-Type: application/json' sends a form content type.
    response = client.post(
        "/api/draftbot/create",
        content=b'{"name": "x"}',
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert_error(response, 400, "Content-Type: application/json")
    assert bot_count(client) == 0


def test_missing_body_and_missing_name(client: httpx.Client) -> None:
    assert_error(client.post("/api/draftbot/create"), 400, "body is required")
    assert_error(client.post("/api/draftbot/create", json={}), 400, "name is required")
    assert_error(client.post("/api/draftbot/create", json={"name": None}), 400, "name is required")
    assert_error(client.post("/api/draftbot/create", json={"name": "   "}), 400, "name")
    assert_error(client.post("/v1/bot/create", json={"description": "x"}), 400, "name")
    assert bot_count(client) == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": 123}, "name"),
        ({"name": ["a"]}, "name"),
        ({"name": "x", "description": 5}, "description"),
        ({"name": "x", "space_id": "my space"}, "space_id"),
        ({"name": "x", "history_rounds": "many"}, "history_rounds"),
        (
            {"name": "x", "model_info_config": {"temperature": "hot"}},
            "model_info_config.temperature",
        ),
        ({"name": "x", "model_info_config": {"top_p": 3}}, "model_info_config.top_p"),
        ({"name": "x", "tools": [{"type": "plugin"}]}, "tools[0]"),
        ({"name": "x", "tools": [{"type": "workflow", "plugin_id": 1}]}, "tools[0].type"),
        ({"name": "x", "tools": {"type": "plugin"}}, "tools"),
        ({"name": "x", "variables": [{"description": "no key"}]}, "variables[0].key"),
        ({"name": "x", "knowledge": {"dataset_ids": [1.5]}}, "knowledge.dataset_ids[0]"),
    ],
)
def test_wrong_types_name_the_field(client: httpx.Client, body: dict[str, Any], field: str) -> None:
    msg = assert_error(client.post("/api/draftbot/create", json=body), 400)
    assert field in msg
    assert bot_count(client) == 0


@pytest.mark.parametrize(
    "bad_id",
    [
        0,
        -1,
        "0",
        "-5",
        "abc",
        "12abc",
        "",
        " 12",
        1.5,
        12.0,
        True,
        False,
        [12],
        {"id": 1},
        2**63,
        str(2**63),
        str(2**64),
        "99999999999999999999999",
    ],
)
def test_bad_ids_are_400_naming_the_field(
    client: httpx.Client, bot: dict[str, Any], bad_id: Any
) -> None:
    before = data_of(client.get(f"/v1/bots/{bot['bot_id']}?is_published=false"))
    assert_error(client.post("/api/draftbot/publish", json={"bot_id": bad_id}), 400, "bot_id")
    assert_error(
        client.post("/api/draftbot/update_display_info", json={"bot_id": bad_id, "name": "z"}),
        400,
        "bot_id",
    )
    assert_error(client.post("/api/draftbot/delete", json={"bot_id": bad_id}), 400, "bot_id")
    assert data_of(client.get(f"/v1/bots/{bot['bot_id']}?is_published=false")) == before


@pytest.mark.parametrize("bad_id", ["0", "-1", "abc", "1.5", "true", str(2**63)])
def test_bad_ids_in_query_and_path(client: httpx.Client, bad_id: str) -> None:
    assert_error(client.get("/v1/bot/get_online_info", params={"bot_id": bad_id}), 400, "bot_id")
    assert_error(client.get(f"/v1/bots/{bad_id}"), 400, "bot_id")
    assert_error(
        client.get("/v1/space/published_bots_list", params={"space_id": bad_id}), 400, "space_id"
    )


def test_largest_id_is_valid_input_and_simply_not_found(client: httpx.Client) -> None:
    largest = 2**63 - 1
    assert_error(client.post("/api/draftbot/publish", json={"bot_id": largest}), 404)
    assert_error(client.post("/api/draftbot/publish", json={"bot_id": str(largest)}), 404)
    assert_error(client.get(f"/v1/bots/{largest}"), 404)


def test_unknown_bot_is_404_everywhere(client: httpx.Client) -> None:
    unknown = 123456789
    for response in (
        client.post("/api/draftbot/update_display_info", json={"bot_id": unknown, "name": "x"}),
        client.post("/api/draftbot/publish", json={"bot_id": unknown}),
        client.post("/api/draftbot/delete", json={"bot_id": str(unknown)}),
        client.post("/v1/bot/update", json={"bot_id": str(unknown), "name": "x"}),
        client.post("/v1/bot/publish", json={"bot_id": str(unknown)}),
        client.get("/v1/bot/get_online_info", params={"bot_id": unknown}),
        client.get(f"/v1/bots/{unknown}"),
        client.get(f"/v1/bots/{unknown}", params={"is_published": "false"}),
    ):
        assert_error(response, 404)


def _big_name_body() -> bytes:
    return b'{"name": "' + b"x" * TEN_MB + b'"}'


def test_ten_megabyte_body_with_content_length_is_413(client: httpx.Client) -> None:
    response = client.post(
        "/api/draftbot/create",
        content=_big_name_body(),
        headers={"content-type": "application/json"},
    )
    assert_error(response, 413, "too large")
    assert bot_count(client) == 0


def test_ten_megabyte_chunked_body_is_413(client: httpx.Client) -> None:
    body = _big_name_body()

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 64 * 1024):
            yield body[start : start + 64 * 1024]

    response = client.post(
        "/api/draftbot/create", content=chunks(), headers={"content-type": "application/json"}
    )
    assert "content-length" not in {k.lower() for k in response.request.headers}
    assert_error(response, 413, "too large")
    assert bot_count(client) == 0


def test_body_just_under_the_limit_reaches_validation(client: httpx.Client) -> None:
    # 1 MiB of JSON passes the size check; the registry then refuses the overlong name.
    body = b'{"name": "' + b"x" * (1024 * 1024 - 20) + b'"}'
    response = client.post(
        "/api/draftbot/create", content=body, headers={"content-type": "application/json"}
    )
    assert_error(response, 400, "name")
    assert_log_id(response)


def test_bodyless_post_where_no_body_is_needed(client: httpx.Client) -> None:
    for headers in ({}, {"content-type": "application/x-www-form-urlencoded"}):
        data = data_of(
            client.post("/api/permission_api/pat/list_personal_access_tokens", headers=headers)
        )
        assert data["total"] >= 1


def test_unreachable_registry_and_nats_are_503(lonely_edge_url: str) -> None:
    with httpx.Client(base_url=lonely_edge_url, timeout=30) as http:
        assert_error(http.get("/healthz"), 503, "registry", "nats")
        # Liveness does not follow the dependencies: an orchestrator must not restart it.
        live = http.get("/livez")
        assert live.status_code == 200
        assert live.json() == {"code": 0, "msg": "success", "data": {"status": "ok"}}
        unavailable = assert_error(
            http.get("/v1/bots", headers={"Authorization": "Bearer pat_whatever"}), 503
        )
        assert "retry" in unavailable
        assert_error(http.post("/api/passport/login", json={"username": "a", "password": "b"}), 503)
        # Input is still checked first, and unknown routes are still 404.
        assert_error(http.post("/api/passport/login", json={"username": "a"}), 400, "password")
        assert_error(http.get("/nowhere"), 404)
