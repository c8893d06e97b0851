"""cozepy against the routes of wire contract section 10 and the rest of the SDK surface:
workspaces, users.me, bot unpublish, message feedback, variables, and registration by email.
The error paths are checked over plain HTTP: each is refused with the envelope and changes
nothing."""

from __future__ import annotations

import secrets
from collections.abc import Callable

import httpx
import pytest
from cozepy import (
    COZE_CN_BASE_URL,  # noqa: F401  (imported to prove the SDK is the real one)
    Coze,
    CozeAPIError,
    FeedbackType,
    Message,
    PublishStatus,
    TokenAuth,
    VariableValue,
)

from tests.chat.conftest import user_message
from tests.conftest import Account


@pytest.fixture
def coze(chat_system: str, account: Account) -> Coze:
    return Coze(auth=TokenAuth(account.token), base_url=chat_system)


def test_workspaces_list_finds_the_space_bots_create_uses(coze: Coze, account: Account) -> None:
    workspaces = list(coze.workspaces.list())
    assert len(workspaces) == 1
    [personal] = workspaces
    assert personal.id == str(account.user_id)
    assert (personal.workspace_type, personal.role_type) == ("personal", "owner")
    assert personal.enterprise_id == ""

    bot = coze.bots.create(space_id=personal.id, name="made in my workspace")
    listed = coze.bots.list(
        space_id=personal.id, publish_status=PublishStatus.ALL, use_api_version=2
    )
    assert bot.bot_id in [b.id for b in listed.items]


def test_workspaces_paging_past_the_only_workspace_is_empty(api: httpx.Client) -> None:
    page = api.get("/v1/workspaces", params={"page_num": 2, "page_size": 1})
    assert page.status_code == 200
    assert page.json()["data"] == {"total_count": 1, "workspaces": []}
    bad = api.get("/v1/workspaces", params={"page_size": 0})
    assert bad.status_code == 400 and "page_size" in bad.json()["msg"]


def test_users_me(coze: Coze, account: Account) -> None:
    me = coze.users.me()
    assert me.user_id == str(account.user_id)
    assert me.user_name == account.username
    assert me.nick_name == account.username  # registered without a display name
    assert me.avatar_url == ""


def test_users_me_needs_credentials(chat_system: str) -> None:
    response = httpx.get(f"{chat_system}/v1/users/me")
    assert response.status_code == 401 and response.json()["data"] is None


def test_unpublish_takes_the_bot_offline_until_the_next_publish(
    coze: Coze, api: httpx.Client, make_bot: Callable[..., str]
) -> None:
    bot_id = make_bot(model="mock-echo")
    space = next(iter(coze.workspaces.list())).id
    online = coze.bots.list(
        space_id=space, publish_status=PublishStatus.PUBLISHED_ONLINE, use_api_version=2
    )
    assert bot_id in [b.id for b in online.items]
    coze.bots.unpublish(bot_id=bot_id, connector_id="1024", unpublish_reason="maintenance")

    chat = api.post(
        "/v3/chat",
        json={"bot_id": bot_id, "user_id": "u", "additional_messages": [user_message("hi")]},
    )
    assert chat.status_code == 404
    assert api.get("/v1/bot/get_online_info", params={"bot_id": bot_id}).status_code == 404
    online = coze.bots.list(
        space_id=space, publish_status=PublishStatus.PUBLISHED_ONLINE, use_api_version=2
    )
    assert bot_id not in [b.id for b in online.items]
    # The draft lists are per publish state: an unpublished bot is an unpublished draft.
    published = coze.bots.list(
        space_id=space, publish_status=PublishStatus.PUBLISHED_DRAFT, use_api_version=2
    )
    assert bot_id not in [b.id for b in published.items]
    unpublished = coze.bots.list(
        space_id=space, publish_status=PublishStatus.UNPUBLISHED_DRAFT, use_api_version=2
    )
    [offline] = [b for b in unpublished.items if b.id == bot_id]
    assert offline.is_published is False
    # The draft is still there.
    assert coze.bots.retrieve(bot_id=bot_id, is_published=False, use_api_version=2).bot_id == bot_id

    # Unpublishing twice is a conflict; the bot stays offline.
    again = api.post(f"/v1/bots/{bot_id}/unpublish", json={"connector_id": "1024"})
    assert again.status_code == 409 and again.json()["msg"] == "bot is unpublished already"

    assert api.post("/api/draftbot/publish", json={"bot_id": bot_id}).status_code == 200
    published = coze.bots.list(
        space_id=space, publish_status=PublishStatus.PUBLISHED_DRAFT, use_api_version=2
    )
    [back] = [b for b in published.items if b.id == bot_id]
    assert back.is_published is True
    answer = coze.chat.create_and_poll(
        bot_id=bot_id, user_id="u", additional_messages=[Message.build_user_question_text("hi")]
    )
    assert answer.chat.status == "completed"


def test_unpublish_refusals(api: httpx.Client, make_bot: Callable[..., str]) -> None:
    draft = make_bot(publish=False)
    never = api.post(f"/v1/bots/{draft}/unpublish")
    assert never.status_code == 409 and never.json()["msg"] == "bot has not been published"
    unknown = api.post("/v1/bots/123/unpublish", json={"connector_id": "1024"})
    assert unknown.status_code == 404


def test_unpublish_of_another_accounts_bot_is_not_found(
    chat_system: str, make_account: Callable[..., Account], make_bot: Callable[..., str]
) -> None:
    bot_id = make_bot()
    other = make_account()
    response = httpx.post(f"{chat_system}/v1/bots/{bot_id}/unpublish", headers=other.headers)
    assert response.status_code == 404


def _answered_chat(coze: Coze, bot_id: str) -> tuple[str, str]:
    """(conversation id, answer message id) of a finished chat."""
    done = coze.chat.create_and_poll(
        bot_id=bot_id, user_id="u", additional_messages=[Message.build_user_question_text("hi")]
    )
    answer = next(m for m in done.messages if m.type == "answer")
    return done.chat.conversation_id, answer.id


def test_message_feedback_is_stored_replaced_and_deleted(
    coze: Coze, make_bot: Callable[..., str], registry_addr: str, account: Account
) -> None:
    import grpc

    from cozeplus.rpc.v1 import user_state_pb2 as us
    from cozeplus.rpc.v1.user_state_pb2_grpc import MessageFeedbackStub
    from cozeplus.service_auth import service_channel

    conversation_id, message_id = _answered_chat(coze, make_bot(model="mock-echo"))
    feedback = coze.conversations.messages.feedback
    feedback.create(
        conversation_id=conversation_id,
        message_id=message_id,
        feedback_type=FeedbackType.UNLIKE,
        reason_types=["inaccurate"],
        comment="wrong city",
    )
    ref = us.FeedbackRef(
        owner_id=account.user_id, conversation_id=int(conversation_id), message_id=int(message_id)
    )
    with service_channel(registry_addr) as channel:
        stub = MessageFeedbackStub(channel)
        stored = stub.GetFeedback(ref)
        assert (stored.feedback_type, list(stored.reason_types), stored.comment) == (
            "unlike",
            ["inaccurate"],
            "wrong city",
        )
        feedback.create(
            conversation_id=conversation_id, message_id=message_id, feedback_type=FeedbackType.LIKE
        )
        replaced = stub.GetFeedback(ref)
        assert (replaced.feedback_type, list(replaced.reason_types), replaced.comment) == (
            "like",
            [],
            "",
        )
        feedback.delete(conversation_id=conversation_id, message_id=message_id)
        with pytest.raises(grpc.RpcError) as gone:
            stub.GetFeedback(ref)
        assert gone.value.code() == grpc.StatusCode.NOT_FOUND
    # Deleting again is not an error.
    feedback.delete(conversation_id=conversation_id, message_id=message_id)


def test_message_feedback_refusals(
    coze: Coze, api: httpx.Client, make_bot: Callable[..., str]
) -> None:
    conversation_id, message_id = _answered_chat(coze, make_bot(model="mock-echo"))
    url = f"/v1/conversations/{conversation_id}/messages/{message_id}/feedback"
    bad_type = api.post(url, json={"feedback_type": "love"})
    assert bad_type.status_code == 400 and "feedback_type" in bad_type.json()["msg"]
    elsewhere = api.post(
        f"/v1/conversations/{conversation_id}/messages/123/feedback", json={"feedback_type": "like"}
    )
    assert elsewhere.status_code == 404
    question = next(
        m
        for m in coze.conversations.messages.list(conversation_id=conversation_id).items
        if m.role == "user"
    )
    on_question = api.post(
        f"/v1/conversations/{conversation_id}/messages/{question.id}/feedback",
        json={"feedback_type": "like"},
    )
    assert on_question.status_code == 400
    with pytest.raises(CozeAPIError) as err:
        coze.conversations.messages.feedback.create(
            conversation_id="123", message_id=message_id, feedback_type=FeedbackType.LIKE
        )
    assert err.value.code == 404


def test_variables_update_retrieve_and_reach_the_prompt(
    coze: Coze, make_bot: Callable[..., str], mock_llm: str
) -> None:
    bot_id = make_bot(model="mock-echo", prompt="You help people in {{city}} ({{lang}}).")
    uid = f"end-user-{secrets.token_hex(4)}"
    coze.variables.update(
        bot_id=bot_id,
        connector_uid=uid,
        data=[
            VariableValue(keyword="city", value="Paris"),
            VariableValue(keyword="lang", value="fr"),
        ],
    )
    got = coze.variables.retrieve(bot_id=bot_id, connector_uid=uid, keywords=["city"])
    assert [(v.keyword, v.value) for v in got] == [("city", "Paris")]
    assert got[0].create_time > 0 and got[0].update_time >= got[0].create_time
    everything = coze.variables.retrieve(bot_id=bot_id, connector_uid=uid, keywords=[])
    assert sorted(v.keyword for v in everything) == ["city", "lang"]
    # Another end user has none.
    assert list(coze.variables.retrieve(bot_id=bot_id, connector_uid="other", keywords=[])) == []

    coze.chat.create_and_poll(
        bot_id=bot_id, user_id=uid, additional_messages=[Message.build_user_question_text("hi")]
    )
    system = httpx.get(f"{mock_llm}/mock/requests").json()[-1]["messages"][0]
    assert system == {"role": "system", "content": "You help people in Paris (fr)."}

    # A chat's own custom_variables win over the stored values.
    coze.chat.create_and_poll(
        bot_id=bot_id,
        user_id=uid,
        custom_variables={"city": "Lyon"},
        additional_messages=[Message.build_user_question_text("hi")],
    )
    system = httpx.get(f"{mock_llm}/mock/requests").json()[-1]["messages"][0]
    assert system["content"] == "You help people in Lyon (fr)."


def test_variables_refusals_change_nothing(
    coze: Coze, api: httpx.Client, make_bot: Callable[..., str]
) -> None:
    bot_id = make_bot()
    body = {"bot_id": bot_id, "connector_uid": "u", "data": [{"keyword": "x", "value": "1"}]}
    assert api.put("/v1/variables", json=body).status_code == 200
    for change, status in (
        ({"data": [{"keyword": "has space", "value": "2"}]}, 400),
        ({"data": []}, 400),
        ({"connector_uid": ""}, 400),
        ({"bot_id": None}, 400),
        ({"bot_id": None, "app_id": "77"}, 400),
        ({"bot_id": "123"}, 404),
    ):
        response = api.put("/v1/variables", json={**body, **change})
        assert response.status_code == status, (change, response.text)
        assert response.json()["data"] is None
    got = coze.variables.retrieve(bot_id=bot_id, connector_uid="u", keywords=[])
    assert [(v.keyword, v.value) for v in got] == [("x", "1")]


def test_register_and_log_in_by_email(chat_system: str) -> None:
    email = f"Ada.{secrets.token_hex(4)}@Example.com"
    with httpx.Client(base_url=chat_system) as client:
        registered = client.post(
            "/api/passport/register", json={"email": email, "password": "correct horse"}
        )
        assert registered.status_code == 200, registered.text
        user = registered.json()["data"]["user"]
        assert user["email"] == email
        assert user["username"].startswith("Ada.")
        taken = client.post(
            "/api/passport/register", json={"email": email.lower(), "password": "another one"}
        )
        assert taken.status_code == 409
        neither = client.post("/api/passport/register", json={"password": "correct horse"})
        assert neither.status_code == 400 and "username or email" in neither.json()["msg"]
        not_an_email = client.post(
            "/api/passport/register", json={"email": "nobody", "password": "correct horse"}
        )
        assert not_an_email.status_code == 400

    with httpx.Client(base_url=chat_system) as client:
        by_email = client.post(
            "/api/passport/login", json={"email": email.upper(), "password": "correct horse"}
        )
        assert by_email.status_code == 200, by_email.text
        assert by_email.json()["data"]["user"]["user_id"] == user["user_id"]
        me = client.get("/v1/users/me")
        assert me.json()["data"]["user_id"] == str(user["user_id"])
        wrong = client.post("/api/passport/login", json={"email": email, "password": "nope nope"})
        assert wrong.status_code == 401


def test_stored_variables_reach_draft_chats_too(
    api: httpx.Client, account: Account, make_bot: Callable[..., str], mock_llm: str
) -> None:
    # /api/conversation/chat runs the draft; its end user defaults to the account id.
    bot_id = make_bot(model="mock-echo", prompt="Hi {{name}}.", publish=False)
    stored = api.put(
        "/v1/variables",
        json={
            "bot_id": bot_id,
            "connector_uid": str(account.user_id),
            "data": [{"keyword": "name", "value": "Ada"}],
        },
    )
    assert stored.status_code == 200, stored.text
    chat = api.post("/api/conversation/chat", json={"agent_id": bot_id, "query": "hello"})
    assert chat.status_code == 200 and chat.json()["data"]["status"] == "completed", chat.text
    system = httpx.get(f"{mock_llm}/mock/requests").json()[-1]["messages"][0]
    assert system == {"role": "system", "content": "Hi Ada."}
