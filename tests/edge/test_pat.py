"""API key management routes (/api/permission_api/pat/*)."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from tests.conftest import Account
from tests.edge.envelope import assert_error, data_of

PAT = "/api/permission_api/pat"
PAT_FIELDS = {
    "id",
    "name",
    "prefix",
    "created_at",
    "updated_at",
    "last_used_at",
    "expire_at",
    "revoked",
}


def create(client: httpx.Client, **body: Any) -> dict[str, Any]:
    data: dict[str, Any] = data_of(
        client.post(f"{PAT}/create_personal_access_token_and_permission", json=body)
    )
    return data


def test_create_shows_the_token_once(client: httpx.Client, edge_url: str) -> None:
    created = create(client, name="ci key")
    assert set(created) == {"personal_access_token", "token"}
    token = created["token"]
    info = created["personal_access_token"]
    assert set(info) == PAT_FIELDS
    assert token.startswith("pat_") and len(token) >= 32
    assert token.startswith(info["prefix"])
    assert type(info["id"]) is int
    assert (info["name"], info["expire_at"], info["last_used_at"]) == ("ci key", -1, -1)
    assert info["revoked"] is False

    with httpx.Client(base_url=edge_url, headers={"Authorization": f"Bearer {token}"}) as http:
        assert data_of(http.get("/api/passport/me"))["auth_kind"] == "api_key"

    listed = client.get(f"{PAT}/list_personal_access_tokens")
    assert token not in listed.text
    fetched = client.get(
        f"{PAT}/get_personal_access_token_and_permission", params={"id": info["id"]}
    )
    assert token not in fetched.text


def test_expiry_inputs(client: httpx.Client) -> None:
    now = int(time.time())
    in_30_days = create(client, name="a", duration_day="30")["personal_access_token"]
    assert abs(in_30_days["expire_at"] - (now + 30 * 86400)) <= 5
    assert create(client, name="b", duration_day=1)["personal_access_token"]["expire_at"] > now
    assert (
        create(client, name="c", duration_day="permanent")["personal_access_token"]["expire_at"]
        == -1
    )
    assert create(client, name="d", expire_at=0)["personal_access_token"]["expire_at"] == -1
    exact = create(client, name="e", expire_at=now + 3600, duration_day="customize")
    assert exact["personal_access_token"]["expire_at"] == now + 3600

    url = f"{PAT}/create_personal_access_token_and_permission"
    assert_error(client.post(url, json={"name": "f", "expire_at": now - 10}), 400, "expire_at")
    assert_error(
        client.post(url, json={"name": "g", "duration_day": "customize"}), 400, "expire_at"
    )
    assert_error(
        client.post(url, json={"name": "h", "duration_day": "forever"}), 400, "duration_day"
    )
    assert_error(client.post(url, json={"name": "i", "duration_day": 0}), 400, "duration_day")
    assert_error(client.post(url, json={}), 400, "name")


def test_list_get_update_delete(client: httpx.Client, account: Account) -> None:
    ids = [create(client, name=f"key {n}")["personal_access_token"]["id"] for n in range(3)]
    # The fixture's own key is there too.
    everything = data_of(client.post(f"{PAT}/list_personal_access_tokens", json={"size": 100}))
    assert everything["total"] == 4
    assert {k["id"] for k in everything["personal_access_tokens"]} == {*ids, account.key_id}
    for key in everything["personal_access_tokens"]:
        assert set(key) == PAT_FIELDS

    first = data_of(client.get(f"{PAT}/list_personal_access_tokens", params={"page": 1, "size": 3}))
    second = data_of(client.post(f"{PAT}/list_personal_access_tokens", json={"page": 2, "size": 3}))
    assert (first["has_more"], second["has_more"]) == (True, False)
    assert len(first["personal_access_tokens"]) == 3 and len(second["personal_access_tokens"]) == 1

    got = data_of(
        client.post(f"{PAT}/get_personal_access_token_and_permission", json={"id": ids[0]})
    )
    assert got["personal_access_token"]["name"] == "key 0"
    also = data_of(
        client.get(f"{PAT}/get_personal_access_token_and_permission", params={"id": str(ids[0])})
    )
    assert also == got

    renamed = data_of(
        client.post(
            f"{PAT}/update_personal_access_token_and_permission",
            json={"id": str(ids[0]), "name": "renamed"},
        )
    )
    assert renamed["personal_access_token"]["name"] == "renamed"

    assert (
        data_of(
            client.post(f"{PAT}/delete_personal_access_token_and_permission", json={"id": ids[1]})
        )
        == {}
    )


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("get_personal_access_token_and_permission", {}),
        ("get_personal_access_token_and_permission", {"id": "abc"}),
        ("update_personal_access_token_and_permission", {"id": 5}),
        ("update_personal_access_token_and_permission", {"id": 0, "name": "x"}),
        ("delete_personal_access_token_and_permission", {"id": 1.5}),
        ("list_personal_access_tokens", {"page": 0}),
        ("list_personal_access_tokens", {"size": 1000}),
    ],
)
def test_bad_pat_input_is_400(client: httpx.Client, path: str, body: dict[str, Any]) -> None:
    assert_error(client.post(f"{PAT}/{path}", json=body), 400)
