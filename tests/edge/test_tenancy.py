"""Another account's credentials on every bot and key route: 404 (existence is not revealed)
and the owner's data is unchanged."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.conftest import Account
from tests.edge.envelope import assert_error, data_of


@dataclass
class OwnedBot:
    owner: httpx.Client
    intruder: httpx.Client
    bot_id: int
    space_id: int

    def snapshot(self) -> tuple[Any, Any]:
        return (
            data_of(self.owner.get(f"/v1/bots/{self.bot_id}?is_published=false")),
            data_of(self.owner.get(f"/v1/bots/{self.bot_id}")),
        )


@pytest.fixture
def owned_bot(edge_url: str, account: Account, other_account: Account) -> Iterator[OwnedBot]:
    with (
        httpx.Client(base_url=edge_url, headers=account.headers) as owner,
        httpx.Client(base_url=edge_url, headers=other_account.headers) as intruder,
    ):
        bot = data_of(
            owner.post(
                "/api/draftbot/create",
                json={"name": "private", "prompt": "secret prompt", "model": "echo"},
            )
        )
        data_of(owner.post("/api/draftbot/publish", json={"bot_id": bot["bot_id"]}))
        yield OwnedBot(owner, intruder, bot["bot_id"], account.user_id)


ATTACKS: dict[str, Callable[[httpx.Client, int], httpx.Response]] = {
    "api update_display_info": lambda c, b: c.post(
        "/api/draftbot/update_display_info", json={"bot_id": b, "name": "pwned"}
    ),
    "api update config only": lambda c, b: c.post(
        "/api/draftbot/update_display_info", json={"bot_id": b, "prompt": "pwned"}
    ),
    "api update tools via knowledge": lambda c, b: c.post(
        "/api/draftbot/update_display_info", json={"bot_id": b, "knowledge": {"dataset_ids": [1]}}
    ),
    "api publish": lambda c, b: c.post("/api/draftbot/publish", json={"bot_id": b}),
    "api delete": lambda c, b: c.post("/api/draftbot/delete", json={"bot_id": str(b)}),
    "v1 update": lambda c, b: c.post("/v1/bot/update", json={"bot_id": str(b), "name": "pwned"}),
    "v1 publish": lambda c, b: c.post("/v1/bot/publish", json={"bot_id": str(b)}),
    "v1 get_online_info": lambda c, b: c.get("/v1/bot/get_online_info", params={"bot_id": b}),
    "v1 bot details": lambda c, b: c.get(f"/v1/bots/{b}"),
    "v1 bot draft details": lambda c, b: c.get(f"/v1/bots/{b}", params={"is_published": False}),
}


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_other_accounts_bot_is_not_found(owned_bot: OwnedBot, attack: str) -> None:
    before = owned_bot.snapshot()
    assert_error(ATTACKS[attack](owned_bot.intruder, owned_bot.bot_id), 404)
    assert owned_bot.snapshot() == before


def test_other_accounts_space_lists_nothing_of_it(owned_bot: OwnedBot) -> None:
    bot_id = str(owned_bot.bot_id)
    space = str(owned_bot.space_id)
    listings: list[dict[str, str]] = [
        {"workspace_id": space},
        {"workspace_id": space, "publish_status": "all"},
        {},
    ]
    for params in listings:
        response = owned_bot.intruder.get("/v1/bots", params=params)
        if response.status_code == 200:
            assert bot_id not in {item["id"] for item in data_of(response)["items"]}
        else:
            assert_error(response, response.status_code)
            assert response.status_code in (403, 404)
    response = owned_bot.intruder.get("/v1/space/published_bots_list", params={"space_id": space})
    if response.status_code == 200:
        assert bot_id not in {b["bot_id"] for b in data_of(response)["space_bots"]}
    else:
        assert response.status_code in (403, 404)
        assert_error(response, response.status_code)


def test_cannot_create_in_another_accounts_space(owned_bot: OwnedBot) -> None:
    response = owned_bot.intruder.post(
        "/v1/bot/create", json={"name": "squatter", "space_id": str(owned_bot.space_id)}
    )
    assert response.status_code in (403, 404)
    assert_error(response, response.status_code)
    listing = data_of(owned_bot.owner.get("/v1/bots", params={"publish_status": "all"}))
    assert [item["id"] for item in listing["items"]] == [str(owned_bot.bot_id)]


PAT = "/api/permission_api/pat"


def test_other_accounts_api_key_is_not_found(
    edge_url: str, account: Account, other_account: Account
) -> None:
    with httpx.Client(base_url=edge_url, headers=other_account.headers) as intruder:
        key_id = account.key_id
        for response in (
            intruder.post(f"{PAT}/get_personal_access_token_and_permission", json={"id": key_id}),
            intruder.get(f"{PAT}/get_personal_access_token_and_permission", params={"id": key_id}),
            intruder.post(
                f"{PAT}/update_personal_access_token_and_permission",
                json={"id": key_id, "name": "pwned"},
            ),
            intruder.post(
                f"{PAT}/delete_personal_access_token_and_permission", json={"id": key_id}
            ),
        ):
            assert_error(response, 404)
        listed = data_of(intruder.get(f"{PAT}/list_personal_access_tokens"))
        assert key_id not in {k["id"] for k in listed["personal_access_tokens"]}

    with httpx.Client(base_url=edge_url, headers=account.headers) as owner:
        mine = data_of(
            owner.get(f"{PAT}/get_personal_access_token_and_permission", params={"id": key_id})
        )
        assert mine["personal_access_token"]["name"] == "test"
        assert mine["personal_access_token"]["revoked"] is False
