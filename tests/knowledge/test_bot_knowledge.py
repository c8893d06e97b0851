"""A bot's datasets and its knowledge settings: the SDKs' `knowledge` object and the seed's
`tools` list are two views of one stored config."""

from __future__ import annotations

import httpx
from cozepy import Coze
from cozepy.bots import BotKnowledge

from tests.conftest import Account
from tests.knowledge.test_knowledge_cozepy import new_dataset


def test_knowledge_settings_are_stored_per_bot_and_survive_the_tools_view(
    coze: Coze, account: Account, knowledge_system: str
) -> None:
    first, second = new_dataset(coze, account), new_dataset(coze, account)
    # cozepy's create sends no `knowledge`; its update does.
    bot = coze.bots.create(space_id=str(account.user_id), name="librarian")
    coze.bots.update(
        bot_id=bot.bot_id,
        knowledge=BotKnowledge(dataset_ids=[first], auto_call=False, search_strategy=20),
    )
    fetched = coze.bots.retrieve(bot_id=bot.bot_id, is_published=False, use_api_version=2)
    assert fetched.knowledge is not None
    assert fetched.knowledge.dataset_ids == [first]
    assert (fetched.knowledge.auto_call, fetched.knowledge.search_strategy) == (False, 20)

    with httpx.Client(base_url=knowledge_system, headers=account.headers) as http:
        # The seed's view replaces the datasets; the settings stay.
        updated = http.post(
            "/api/draftbot/update_display_info",
            json={
                "bot_id": bot.bot_id,
                "tools": [{"type": "knowledge_base", "knowledge_id": second}],
            },
        )
        assert updated.status_code == 200, updated.text
        detail = http.get(f"/v1/bots/{bot.bot_id}?is_published=false").json()["data"]
        assert detail["tools"] == [{"type": "knowledge_base", "knowledge_id": second}]
        assert detail["knowledge"] == {
            "dataset_ids": [second],
            "auto_call": False,
            "search_strategy": 20,
            "top_k": 0,
            "min_score": 0.0,
        }
        # top_k and min_score beside the SDKs' fields; a bad strategy changes nothing.
        tuned = http.post(
            "/v1/bot/update",
            json={
                "bot_id": bot.bot_id,
                "knowledge": {
                    "dataset_ids": [first],
                    "search_strategy": 1,
                    "top_k": 3,
                    "min_score": 0.25,
                },
            },
        )
        assert tuned.status_code == 200, tuned.text
        refused = http.post(
            "/v1/bot/update",
            json={"bot_id": bot.bot_id, "knowledge": {"dataset_ids": [], "search_strategy": 5}},
        )
        assert refused.status_code == 400 and "search_strategy" in refused.json()["msg"]
        knowledge = http.get(f"/v1/bots/{bot.bot_id}?is_published=false").json()["data"][
            "knowledge"
        ]
    assert knowledge == {
        "dataset_ids": [first],
        "auto_call": True,
        "search_strategy": 1,
        "top_k": 3,
        "min_score": 0.25,
    }
