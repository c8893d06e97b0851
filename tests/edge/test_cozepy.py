"""The official Python SDK, unchanged, against our bot routes."""

from __future__ import annotations

import pytest
from cozepy import (
    BotKnowledge,
    BotModelInfo,
    BotOnboardingInfo,
    BotPromptInfo,
    Coze,
    CozeAPIError,
    TokenAuth,
)
from cozepy.bots import PublishStatus

from tests.conftest import Account


@pytest.fixture
def coze(edge_url: str, account: Account) -> Coze:
    return Coze(auth=TokenAuth(account.token), base_url=edge_url)


def test_cozepy_create_update_publish_retrieve_list(coze: Coze, account: Account) -> None:
    space_id = str(account.user_id)
    created = coze.bots.create(
        space_id=space_id,
        name="sdk bot",
        description="from cozepy",
        prompt_info=BotPromptInfo(prompt="be kind"),
        model_info_config=BotModelInfo(model_id="echo", temperature=0.3, context_round=4),
        onboarding_info=BotOnboardingInfo(prologue="hi", suggested_questions=["q1"]),
    )
    assert created.bot_id.isdigit()
    assert created.response.logid

    coze.bots.update(
        bot_id=created.bot_id,
        name="sdk bot 2",
        knowledge=BotKnowledge(dataset_ids=["42"]),
    )
    published = coze.bots.publish(bot_id=created.bot_id)
    assert (published.bot_id, published.version) == (created.bot_id, "1")

    online = coze.bots.retrieve(bot_id=created.bot_id)
    assert online.name == "sdk bot 2"
    assert online.version == "1"
    assert online.prompt_info is not None and online.prompt_info.prompt == "be kind"
    assert online.model_info is not None and online.model_info.model_id == "echo"
    assert online.model_info.temperature == 0.3 and online.model_info.context_round == 4
    assert online.onboarding_info is not None
    assert online.onboarding_info.suggested_questions == ["q1"]
    assert online.knowledge is not None and online.knowledge.dataset_ids == ["42"]
    assert online.owner_user_id == space_id

    draft = coze.bots.retrieve(bot_id=created.bot_id, use_api_version=2, is_published=False)
    assert draft.name == "sdk bot 2"

    listed_v1 = list(coze.bots.list(space_id=space_id))
    assert [(b.bot_id, b.bot_name) for b in listed_v1] == [(created.bot_id, "sdk bot 2")]
    assert int(listed_v1[0].publish_time) > 0

    listed_v2 = list(coze.bots.list(space_id=space_id, use_api_version=2))
    assert [(b.id, b.is_published) for b in listed_v2] == [(created.bot_id, True)]


def test_cozepy_pages_through_every_bot(coze: Coze, account: Account) -> None:
    space_id = str(account.user_id)
    ids = {coze.bots.create(space_id=space_id, name=f"bot {n}").bot_id for n in range(5)}
    listed = coze.bots.list(
        space_id=space_id, use_api_version=2, publish_status=PublishStatus.ALL, page_size=2
    )
    assert {b.id for b in listed} == ids


def test_cozepy_sees_our_errors_with_the_log_id(coze: Coze) -> None:
    with pytest.raises(CozeAPIError) as raised:
        coze.bots.retrieve(bot_id="123456")
    assert raised.value.code == 404
    assert raised.value.logid
