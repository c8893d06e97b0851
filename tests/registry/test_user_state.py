"""user_state.proto on a real registry, on SQLite and PostgreSQL: message feedback, per-user
variables, unpublishing, and accounts registered by email."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

import grpc
import pytest

from cozeplus.rpc.v1 import conversations_pb2 as cpb
from cozeplus.rpc.v1 import registry_pb2 as pb
from cozeplus.rpc.v1 import user_state_pb2 as us
from cozeplus.rpc.v1.user_state_pb2_grpc import (
    BotPublishingStub,
    MessageFeedbackStub,
    VariablesStub,
)
from tests.registry.rpc_expect import expect_status

if TYPE_CHECKING:
    from cozeplus.rpc.v1.conversations_pb2_grpc import ConversationsAsyncStub
    from cozeplus.rpc.v1.registry_pb2_grpc import AccountsAsyncStub, BotRegistryAsyncStub
    from cozeplus.rpc.v1.user_state_pb2_grpc import (
        BotPublishingAsyncStub,
        MessageFeedbackAsyncStub,
        VariablesAsyncStub,
    )


@pytest.fixture
def feedback_rpc(registry_channel: grpc.aio.Channel) -> MessageFeedbackAsyncStub:
    return MessageFeedbackStub(registry_channel)  # type: ignore[return-value]


@pytest.fixture
def variables_rpc(registry_channel: grpc.aio.Channel) -> VariablesAsyncStub:
    return VariablesStub(registry_channel)  # type: ignore[return-value]


@pytest.fixture
def publishing_rpc(registry_channel: grpc.aio.Channel) -> BotPublishingAsyncStub:
    return BotPublishingStub(registry_channel)  # type: ignore[return-value]


async def _messages(
    conversations_rpc: ConversationsAsyncStub, owner_id: int
) -> tuple[int, cpb.Message, cpb.Message]:
    conversation = await conversations_rpc.CreateConversation(
        cpb.CreateConversationRequest(
            owner_id=owner_id,
            user_id="u",
            messages=[
                cpb.NewMessage(role="user", content="q"),
                cpb.NewMessage(role="assistant", content="a"),
            ],
        )
    )
    listed = await conversations_rpc.ListMessages(
        cpb.ListMessagesRequest(owner_id=owner_id, conversation_id=conversation.id, order="asc")
    )
    question, answer = listed.messages
    return conversation.id, question, answer


async def test_feedback_set_replace_get_delete(
    feedback_rpc: MessageFeedbackAsyncStub,
    conversations_rpc: ConversationsAsyncStub,
    owner_id: int,
    other_owner_id: int,
) -> None:
    conversation_id, question, answer = await _messages(conversations_rpc, owner_id)
    ref = us.FeedbackRef(owner_id=owner_id, conversation_id=conversation_id, message_id=answer.id)
    first = await feedback_rpc.SetFeedback(
        us.SetFeedbackRequest(
            message=ref, feedback_type="unlike", reason_types=["slow", "wrong"], comment="meh"
        )
    )
    assert (first.feedback_type, list(first.reason_types), first.comment) == (
        "unlike",
        ["slow", "wrong"],
        "meh",
    )
    second = await feedback_rpc.SetFeedback(
        us.SetFeedbackRequest(message=ref, feedback_type="like")
    )
    assert second.created_at == first.created_at and second.updated_at >= first.updated_at
    got = await feedback_rpc.GetFeedback(ref)
    assert (got.feedback_type, list(got.reason_types), got.comment) == ("like", [], "")

    # Another account cannot see, change or delete it.
    foreign = us.FeedbackRef(
        owner_id=other_owner_id, conversation_id=conversation_id, message_id=answer.id
    )
    await expect_status(feedback_rpc.GetFeedback(foreign), grpc.StatusCode.NOT_FOUND)
    await expect_status(
        feedback_rpc.SetFeedback(us.SetFeedbackRequest(message=foreign, feedback_type="like")),
        grpc.StatusCode.NOT_FOUND,
    )
    await expect_status(feedback_rpc.DeleteFeedback(foreign), grpc.StatusCode.NOT_FOUND)
    assert (await feedback_rpc.GetFeedback(ref)).feedback_type == "like"

    assert (await feedback_rpc.DeleteFeedback(ref)).deleted
    assert not (await feedback_rpc.DeleteFeedback(ref)).deleted
    await expect_status(feedback_rpc.GetFeedback(ref), grpc.StatusCode.NOT_FOUND, "no feedback")

    on_question = us.FeedbackRef(
        owner_id=owner_id, conversation_id=conversation_id, message_id=question.id
    )
    await expect_status(
        feedback_rpc.SetFeedback(us.SetFeedbackRequest(message=on_question, feedback_type="like")),
        grpc.StatusCode.INVALID_ARGUMENT,
        "bot's messages",
    )
    for bad in (
        us.SetFeedbackRequest(message=ref, feedback_type="love"),
        us.SetFeedbackRequest(message=ref, feedback_type="like", reason_types=[""]),
        us.SetFeedbackRequest(message=ref, feedback_type="like", comment="x" * 1025),
    ):
        await expect_status(feedback_rpc.SetFeedback(bad), grpc.StatusCode.INVALID_ARGUMENT)
    await expect_status(feedback_rpc.GetFeedback(ref), grpc.StatusCode.NOT_FOUND)


async def test_variables_upsert_per_scope(
    variables_rpc: VariablesAsyncStub,
    bots_rpc: BotRegistryAsyncStub,
    owner_id: int,
    other_owner_id: int,
) -> None:
    bot = await bots_rpc.CreateDraft(pb.CreateDraftRequest(owner_id=owner_id, name="v"))
    scope = us.VariableScope(owner_id=owner_id, bot_id=bot.id, connector_uid="alice")
    await variables_rpc.SetVariables(
        us.SetVariablesRequest(
            scope=scope,
            values=[
                us.UserVariable(keyword="a", value="1"),
                us.UserVariable(keyword="b", value="2"),
            ],
        )
    )
    changed = await variables_rpc.SetVariables(
        us.SetVariablesRequest(scope=scope, values=[us.UserVariable(keyword="a", value="10")])
    )
    assert [(v.keyword, v.value) for v in changed.values] == [("a", "10")]
    every = await variables_rpc.GetVariables(us.GetVariablesRequest(scope=scope))
    assert [(v.keyword, v.value) for v in every.values] == [("a", "10"), ("b", "2")]
    some = await variables_rpc.GetVariables(us.GetVariablesRequest(scope=scope, keywords=["b"]))
    assert [v.keyword for v in some.values] == ["b"]

    bob = us.VariableScope(owner_id=owner_id, bot_id=bot.id, connector_uid="bob")
    assert not (await variables_rpc.GetVariables(us.GetVariablesRequest(scope=bob))).values
    foreign = us.VariableScope(owner_id=other_owner_id, bot_id=bot.id, connector_uid="alice")
    await expect_status(
        variables_rpc.GetVariables(us.GetVariablesRequest(scope=foreign)), grpc.StatusCode.NOT_FOUND
    )

    for bad in (
        us.SetVariablesRequest(scope=scope),
        us.SetVariablesRequest(scope=scope, values=[us.UserVariable(keyword="1x", value="")]),
        us.SetVariablesRequest(
            scope=scope,
            values=[
                us.UserVariable(keyword="a", value="1"),
                us.UserVariable(keyword="a", value="2"),
            ],
        ),
        us.SetVariablesRequest(
            scope=scope, values=[us.UserVariable(keyword="a", value="x" * 16_385)]
        ),
        us.SetVariablesRequest(
            scope=us.VariableScope(owner_id=owner_id, bot_id=bot.id),
            values=[us.UserVariable(keyword="a", value="1")],
        ),
        us.SetVariablesRequest(
            scope=us.VariableScope(owner_id=owner_id, app_id=5, connector_uid="alice"),
            values=[us.UserVariable(keyword="a", value="1")],
        ),
    ):
        await expect_status(variables_rpc.SetVariables(bad), grpc.StatusCode.INVALID_ARGUMENT)
    many = [us.UserVariable(keyword=f"k{i}", value="v") for i in range(63)]
    await expect_status(
        variables_rpc.SetVariables(us.SetVariablesRequest(scope=scope, values=many)),
        grpc.StatusCode.INVALID_ARGUMENT,
        "at most 64",
    )
    again = await variables_rpc.GetVariables(us.GetVariablesRequest(scope=scope))
    assert [(v.keyword, v.value) for v in again.values] == [("a", "10"), ("b", "2")]


async def test_unpublish_and_republish(
    publishing_rpc: BotPublishingAsyncStub,
    bots_rpc: BotRegistryAsyncStub,
    owner_id: int,
    other_owner_id: int,
) -> None:
    bot = await bots_rpc.CreateDraft(pb.CreateDraftRequest(owner_id=owner_id, name="p"))
    request = us.UnpublishRequest(owner_id=owner_id, bot_id=bot.id, reason="why not")
    await expect_status(
        publishing_rpc.Unpublish(request), grpc.StatusCode.FAILED_PRECONDITION, "not been published"
    )
    await bots_rpc.Publish(pb.BotRef(owner_id=owner_id, bot_id=bot.id))
    await expect_status(
        publishing_rpc.Unpublish(us.UnpublishRequest(owner_id=other_owner_id, bot_id=bot.id)),
        grpc.StatusCode.NOT_FOUND,
    )
    done = await publishing_rpc.Unpublish(request)
    assert done.bot_id == bot.id and done.unpublished_at > 0
    latest = pb.GetVersionRequest(owner_id=owner_id, bot_id=bot.id, version=0)
    await expect_status(bots_rpc.GetVersion(latest), grpc.StatusCode.NOT_FOUND, "unpublished")
    # The frozen versions stay readable by number.
    assert (
        await bots_rpc.GetVersion(pb.GetVersionRequest(owner_id=owner_id, bot_id=bot.id, version=1))
    ).version == 1
    listed = await bots_rpc.ListPublished(
        pb.ListPublishedRequest(owner_id=owner_id, page_size=50, page_num=1)
    )
    assert bot.id not in [v.bot_id for v in listed.versions]
    await expect_status(
        publishing_rpc.Unpublish(request), grpc.StatusCode.FAILED_PRECONDITION, "already"
    )
    await bots_rpc.Publish(pb.BotRef(owner_id=owner_id, bot_id=bot.id))
    assert (await bots_rpc.GetVersion(latest)).version == 2
    listed = await bots_rpc.ListPublished(
        pb.ListPublishedRequest(owner_id=owner_id, page_size=50, page_num=1)
    )
    assert bot.id in [v.bot_id for v in listed.versions]


async def test_register_by_email_and_log_in_with_it(accounts_rpc: AccountsAsyncStub) -> None:
    local = f"Grace.{secrets.token_hex(3)}"
    email = f"{local}@Example.org"
    user = await accounts_rpc.CreateUser(pb.CreateUserRequest(email=email, password="a long one"))
    assert (user.username, user.email) == (local, email)
    login = await accounts_rpc.Login(pb.LoginRequest(username=email.lower(), password="a long one"))
    assert login.user.id == user.id and login.user.email == email
    by_name = await accounts_rpc.Login(pb.LoginRequest(username=local, password="a long one"))
    assert by_name.user.email == email
    await expect_status(
        accounts_rpc.CreateUser(pb.CreateUserRequest(email=email.upper(), password="a long one")),
        grpc.StatusCode.ALREADY_EXISTS,
    )
    # The same local part at another domain gets a username with a suffix.
    twin = await accounts_rpc.CreateUser(
        pb.CreateUserRequest(email=f"{local}@elsewhere.org", password="a long one")
    )
    assert twin.username.startswith(f"{local}-") and twin.username != local
    for bad in (
        pb.CreateUserRequest(password="a long one"),
        pb.CreateUserRequest(email="no-at-sign", password="a long one"),
        pb.CreateUserRequest(email="a@b", password="a long one"),
    ):
        await expect_status(accounts_rpc.CreateUser(bad), grpc.StatusCode.INVALID_ARGUMENT)
    await expect_status(
        accounts_rpc.Login(pb.LoginRequest(username="nobody@example.org", password="a long one")),
        grpc.StatusCode.UNAUTHENTICATED,
    )
