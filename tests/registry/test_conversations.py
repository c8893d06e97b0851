"""Conversations over gRPC against a real registry process, on each database backend."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import grpc
import pytest

from cozeplus.ids import MAX_NODE, IdGenerator
from cozeplus.rpc.v1 import conversations_pb2 as cpb
from cozeplus.rpc.v1 import registry_pb2 as pb
from tests.registry.rpc_expect import expect_status

if TYPE_CHECKING:
    from cozeplus.rpc.v1.conversations_pb2_grpc import ConversationsAsyncStub
    from cozeplus.rpc.v1.registry_pb2_grpc import BotRegistryAsyncStub

NOT_FOUND = grpc.StatusCode.NOT_FOUND
INVALID = grpc.StatusCode.INVALID_ARGUMENT
PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION
ALREADY_EXISTS = grpc.StatusCode.ALREADY_EXISTS


def user(content: str, **fields: Any) -> cpb.NewMessage:
    return cpb.NewMessage(role="user", content=content, **fields)


def assistant(content: str, **fields: Any) -> cpb.NewMessage:
    return cpb.NewMessage(role="assistant", content=content, **fields)


class Fixture:
    """One owner with a bot, and shortcuts for the calls most tests make."""

    def __init__(
        self, rpc: ConversationsAsyncStub, bots: BotRegistryAsyncStub, owner_id: int
    ) -> None:
        self.rpc = rpc
        self.bots = bots
        self.owner_id = owner_id
        self.bot_id = 0

    async def new_bot(self) -> int:
        bot = await self.bots.CreateDraft(pb.CreateDraftRequest(owner_id=self.owner_id, name="b"))
        return bot.id

    async def conversation(
        self, *messages: cpb.NewMessage, user_id: str = "u", **fields: Any
    ) -> cpb.Conversation:
        fields.setdefault("bot_id", self.bot_id)
        return await self.rpc.CreateConversation(
            cpb.CreateConversationRequest(
                owner_id=self.owner_id, user_id=user_id, messages=messages, **fields
            )
        )

    async def chat(
        self,
        conversation_id: int = 0,
        *messages: cpb.NewMessage,
        user_id: str = "u",
        auto_save_history: bool = True,
        **fields: Any,
    ) -> cpb.ChatRun:
        created = await self.created(
            conversation_id,
            *messages,
            user_id=user_id,
            auto_save_history=auto_save_history,
            **fields,
        )
        return created.run

    async def created(
        self,
        conversation_id: int = 0,
        *messages: cpb.NewMessage,
        user_id: str = "u",
        auto_save_history: bool = True,
        **fields: Any,
    ) -> cpb.CreatedChat:
        fields.setdefault("bot_id", self.bot_id)
        return await self.rpc.OpenChat(
            cpb.CreateChatRequest(
                owner_id=self.owner_id,
                user_id=user_id,
                conversation_id=conversation_id,
                messages=messages or (user("hello"),),
                auto_save_history=auto_save_history,
                **fields,
            )
        )

    async def start(self, chat_id: int, history_rounds: int = 0) -> cpb.StartRunResponse:
        return await self.rpc.StartRun(
            cpb.StartRunRequest(
                owner_id=self.owner_id, chat_id=chat_id, history_rounds=history_rounds
            )
        )

    async def finish(self, chat_id: int, status: str = "completed", **fields: Any) -> cpb.ChatRun:
        return await self.rpc.FinishRun(
            cpb.FinishRunRequest(owner_id=self.owner_id, chat_id=chat_id, status=status, **fields)
        )

    async def get_chat(self, chat_id: int, conversation_id: int = 0) -> cpb.ChatRun:
        return await self.rpc.GetChat(
            cpb.ChatRef(owner_id=self.owner_id, chat_id=chat_id, conversation_id=conversation_id)
        )

    async def chat_messages(self, chat_id: int) -> list[cpb.Message]:
        reply = await self.rpc.ListChatMessages(
            cpb.ChatRef(owner_id=self.owner_id, chat_id=chat_id)
        )
        return list(reply.messages)

    async def list_messages(self, conversation_id: int, **fields: Any) -> cpb.ListMessagesResponse:
        return await self.rpc.ListMessages(
            cpb.ListMessagesRequest(
                owner_id=self.owner_id, conversation_id=conversation_id, **fields
            )
        )

    def ref(self, conversation_id: int, user_id: str = "") -> cpb.ConversationRef:
        return cpb.ConversationRef(
            owner_id=self.owner_id, conversation_id=conversation_id, user_id=user_id
        )


@pytest.fixture
async def f(
    conversations_rpc: ConversationsAsyncStub, bots_rpc: BotRegistryAsyncStub, owner_id: int
) -> Fixture:
    fixture = Fixture(conversations_rpc, bots_rpc, owner_id)
    fixture.bot_id = await fixture.new_bot()
    return fixture


# ----------------------------------------------------------- conversations


async def test_create_conversation_stores_messages_in_the_first_section(f: Fixture) -> None:
    long_text = "  first\nline  " + "x" * 200
    conversation = await f.conversation(
        user(long_text, meta_data_json='{"k": "v"}'),
        assistant("reply", content_type="card"),
        meta_data_json='{"topic": "t"}',
    )

    assert 0 < conversation.id < 2**53
    assert conversation.owner_id == f.owner_id
    assert conversation.user_id == "u"
    assert conversation.bot_id == f.bot_id
    assert conversation.last_section_id == conversation.id
    assert conversation.name == ("first line " + "x" * 200)[:100], "first text, one line, cut"
    assert json.loads(conversation.meta_data_json) == {"topic": "t"}
    assert conversation.created_at == conversation.updated_at > 0
    assert await f.rpc.GetConversation(f.ref(conversation.id, "u")) == conversation

    listed = await f.list_messages(conversation.id, order="asc")
    question, answer = listed.messages
    assert (question.role, question.type, question.content_type) == ("user", "question", "text")
    assert question.content == long_text
    assert json.loads(question.meta_data_json) == {"k": "v"}
    assert (answer.role, answer.type, answer.content_type) == ("assistant", "answer", "card")
    for message in listed.messages:
        assert message.conversation_id == conversation.id
        assert message.section_id == conversation.id
        assert message.chat_id == 0
        assert message.bot_id == f.bot_id
    assert question.id < answer.id, "ids follow the order given"


async def test_create_conversation_names_and_empty_defaults(f: Fixture) -> None:
    named = await f.conversation(user("ignored"), name="  My chat  ")
    assert named.name == "My chat"
    empty = await f.conversation(bot_id=0, user_id="")
    assert (empty.name, empty.bot_id, empty.user_id) == ("", 0, "")
    assert json.loads(empty.meta_data_json) == {}
    image_first = await f.conversation(user("https://x/y.png", content_type="image"))
    assert image_first.name == ""
    mixed = await f.conversation(
        user(
            json.dumps([{"type": "image", "file_url": "u"}, {"type": "text", "text": "caption"}]),
            content_type="object_string",
        )
    )
    assert mixed.name == "caption"


@pytest.mark.parametrize(
    ("fields", "message_part"),
    [
        ({"messages": [cpb.NewMessage(role="system", content="x")]}, "messages[0].role"),
        ({"messages": [user("ok"), user("   ")]}, "messages[1].content must not be empty"),
        ({"messages": [user("x" * 100_001)]}, "messages[0].content must be at most 100000"),
        ({"messages": [user("x", content_type="video")]}, "messages[0].content_type"),
        ({"messages": [user("x", type="Not A Type")]}, "messages[0].type"),
        ({"messages": [user("[1]", content_type="object_string")]}, "messages[0].content:"),
        ({"messages": [user("{", content_type="object_string")]}, "not valid JSON"),
        ({"messages": [user("x", meta_data_json="[]")]}, "messages[0].meta_data_json"),
        ({"meta_data_json": "not json"}, "meta_data_json must be a JSON object"),
        ({"meta_data_json": '{"a": 1}'}, "the value of 'a' must be a string"),
        ({"meta_data_json": json.dumps({f"k{i}": "v" for i in range(17)})}, "at most 16 keys"),
        ({"meta_data_json": json.dumps({"k" * 65: "v"})}, "keys must be 1 to 64"),
        ({"meta_data_json": json.dumps({"k": "v" * 513})}, "at most 512 characters"),
        ({"name": "n" * 101}, "name must be at most 100"),
        ({"user_id": "u" * 256}, "user_id must be at most 255"),
        ({"messages": [user("m")] * 1001}, "messages: at most 1000"),
    ],
)
async def test_create_conversation_rejects_invalid_input(
    f: Fixture, fields: dict[str, Any], message_part: str
) -> None:
    request = cpb.CreateConversationRequest(owner_id=f.owner_id, bot_id=f.bot_id, **fields)
    await expect_status(f.rpc.CreateConversation(request), INVALID, message_part)


async def test_create_conversation_needs_a_live_bot_of_the_owner(
    f: Fixture, other_owner_id: int
) -> None:
    foreign = await f.bots.CreateDraft(pb.CreateDraftRequest(owner_id=other_owner_id, name="x"))
    await expect_status(f.conversation(bot_id=foreign.id), NOT_FOUND, "bot")
    await expect_status(f.conversation(bot_id=123), NOT_FOUND, "bot")
    deleted = await f.new_bot()
    await f.bots.DeleteDraft(pb.BotRef(owner_id=f.owner_id, bot_id=deleted))
    await expect_status(f.conversation(bot_id=deleted), NOT_FOUND, "bot")
    await expect_status(
        f.rpc.CreateConversation(cpb.CreateConversationRequest(owner_id=0)), INVALID, "owner_id"
    )


async def test_list_conversations_pages_by_number_and_filters(f: Fixture) -> None:
    other_bot = await f.new_bot()
    created = [await f.conversation(user_id=f"u{i % 2}") for i in range(5)]
    await f.conversation(bot_id=other_bot)

    async def all_pages(**fields: Any) -> list[int]:
        """Pages the way cozepy's NumberPaged does: page_num + 1 while has_more."""
        ids: list[int] = []
        page_num = 1
        while True:
            reply = await f.rpc.ListConversations(
                cpb.ListConversationsRequest(
                    owner_id=f.owner_id, bot_id=f.bot_id, page_num=page_num, **fields
                )
            )
            ids += [c.id for c in reply.conversations]
            if not reply.has_more:
                return ids
            page_num += 1

    newest_first = [c.id for c in reversed(created)]
    assert await all_pages(page_size=2) == newest_first
    assert await all_pages(page_size=5) == newest_first
    assert await all_pages(page_size=2, sort_order="asc") == newest_first[::-1]
    assert await all_pages(user_id="u1") == [created[3].id, created[1].id]
    everything = await f.rpc.ListConversations(
        cpb.ListConversationsRequest(owner_id=f.owner_id, page_size=50)
    )
    assert len(everything.conversations) == 6 and not everything.has_more

    for fields, part in (
        ({"page_size": 51}, "page_size must be between 1 and 50"),
        ({"page_size": -1}, "page_size"),
        ({"page_num": -1}, "page_num"),
        ({"sort_order": "sideways"}, "sort_order must be asc or desc"),
    ):
        request = cpb.ListConversationsRequest(owner_id=f.owner_id, bot_id=f.bot_id, **fields)
        await expect_status(f.rpc.ListConversations(request), INVALID, part)


async def test_update_conversation_changes_only_the_given_fields(f: Fixture) -> None:
    conversation = await f.conversation(user("hi"), meta_data_json='{"a": "1"}')

    def update(**fields: Any) -> Awaitable[cpb.Conversation]:
        return f.rpc.UpdateConversation(
            cpb.UpdateConversationRequest(
                owner_id=f.owner_id, conversation_id=conversation.id, **fields
            )
        )

    renamed = await update(name=" Renamed ")
    assert renamed.name == "Renamed"
    assert json.loads(renamed.meta_data_json) == {"a": "1"}
    assert renamed.updated_at >= conversation.updated_at
    updated = await update(meta_data_json='{"b": "2"}')
    assert (updated.name, json.loads(updated.meta_data_json)) == ("Renamed", {"b": "2"})
    cleared = await update(name="", meta_data_json="")
    assert (cleared.name, json.loads(cleared.meta_data_json)) == ("", {})
    assert await update() == cleared
    await expect_status(update(name="n" * 101), INVALID, "name")
    await expect_status(update(meta_data_json="[1]"), INVALID, "meta_data_json")


async def test_delete_conversation_hides_it_and_everything_in_it(f: Fixture) -> None:
    conversation = await f.conversation(user("hi"))
    chat = await f.chat(conversation.id)
    message_id = (await f.list_messages(conversation.id)).messages[0].id

    deleted = await f.rpc.DeleteConversation(f.ref(conversation.id))
    assert deleted == conversation

    await expect_status(f.rpc.GetConversation(f.ref(conversation.id)), NOT_FOUND, "conversation")
    await expect_status(f.rpc.DeleteConversation(f.ref(conversation.id)), NOT_FOUND)
    await expect_status(f.list_messages(conversation.id), NOT_FOUND)
    await expect_status(
        f.rpc.GetMessage(
            cpb.MessageRef(
                owner_id=f.owner_id, conversation_id=conversation.id, message_id=message_id
            )
        ),
        NOT_FOUND,
    )
    await expect_status(f.get_chat(chat.id), NOT_FOUND, "chat")
    await expect_status(f.start(chat.id), NOT_FOUND)
    await expect_status(f.chat(conversation.id), NOT_FOUND)
    listed = await f.rpc.ListConversations(
        cpb.ListConversationsRequest(owner_id=f.owner_id, bot_id=f.bot_id)
    )
    assert conversation.id not in [c.id for c in listed.conversations]


async def test_clear_conversation_starts_a_new_section(f: Fixture) -> None:
    conversation = await f.conversation(user("before"))

    section = await f.rpc.ClearConversation(f.ref(conversation.id, "u"))

    assert section.conversation_id == conversation.id
    assert section.id not in (0, conversation.id)
    current = await f.rpc.GetConversation(f.ref(conversation.id))
    assert current.last_section_id == section.id
    after = await f.rpc.CreateMessage(
        cpb.CreateMessageRequest(
            owner_id=f.owner_id, conversation_id=conversation.id, message=user("after")
        )
    )
    assert after.section_id == section.id
    chat = await f.chat(conversation.id)
    assert chat.section_id == section.id
    listed = await f.list_messages(conversation.id, order="asc")
    assert [m.section_id for m in listed.messages] == [conversation.id, section.id, section.id]
    again = await f.rpc.ClearConversation(f.ref(conversation.id))
    assert again.id > section.id


# ---------------------------------------------------------------- messages


async def test_message_create_get_modify_delete(f: Fixture) -> None:
    conversation = await f.conversation()

    def ref(message_id: int) -> cpb.MessageRef:
        return cpb.MessageRef(
            owner_id=f.owner_id, conversation_id=conversation.id, message_id=message_id
        )

    def modify(message_id: int, **fields: Any) -> Awaitable[cpb.Message]:
        return f.rpc.ModifyMessage(
            cpb.ModifyMessageRequest(
                owner_id=f.owner_id,
                conversation_id=conversation.id,
                message_id=message_id,
                **fields,
            )
        )

    created = await f.rpc.CreateMessage(
        cpb.CreateMessageRequest(
            owner_id=f.owner_id, conversation_id=conversation.id, message=assistant("hello")
        )
    )
    assert (created.role, created.type, created.content_type) == ("assistant", "answer", "text")
    assert (created.chat_id, created.section_id) == (0, conversation.last_section_id)
    assert created.bot_id == f.bot_id
    assert await f.rpc.GetMessage(ref(created.id)) == created

    items = json.dumps([{"type": "text", "text": "now structured"}])
    modified = await modify(created.id, content=items, content_type="object_string")
    assert (modified.content, modified.content_type) == (items, "object_string")
    assert modified.created_at == created.created_at
    assert modified.updated_at >= created.updated_at
    await expect_status(modify(created.id, content="plain"), INVALID, "content:")
    await expect_status(modify(created.id, content=""), INVALID, "content must not be empty")
    await expect_status(modify(created.id, content_type="video"), INVALID, "content_type")
    await expect_status(modify(created.id, meta_data_json="1"), INVALID, "meta_data_json")
    with_meta = await modify(created.id, meta_data_json='{"x": "y"}')
    assert json.loads(with_meta.meta_data_json) == {"x": "y"}
    assert with_meta.content == items
    assert await modify(created.id) == with_meta

    deleted = await f.rpc.DeleteMessage(ref(created.id))
    assert deleted == with_meta
    await expect_status(f.rpc.GetMessage(ref(created.id)), NOT_FOUND, "message")
    await expect_status(f.rpc.DeleteMessage(ref(created.id)), NOT_FOUND)
    await expect_status(modify(created.id, content="x"), NOT_FOUND)

    elsewhere = await f.conversation(user("elsewhere"))
    foreign_id = (await f.list_messages(elsewhere.id)).messages[0].id
    await expect_status(f.rpc.GetMessage(ref(foreign_id)), NOT_FOUND, "message")
    await expect_status(f.rpc.DeleteMessage(ref(foreign_id)), NOT_FOUND)
    await expect_status(
        f.rpc.CreateMessage(
            cpb.CreateMessageRequest(
                owner_id=f.owner_id, conversation_id=conversation.id, message=user("")
            )
        ),
        INVALID,
        "message.content",
    )


async def page_like_cozepy(
    list_page: Callable[[int], Awaitable[cpb.ListMessagesResponse]],
) -> list[int]:
    """cozepy's LastIDPaged: the first page without a cursor, then `after_id = last_id`
    for as long as `has_more`, whatever the order."""
    ids: list[int] = []
    after_id = 0
    for _ in range(100):
        page = await list_page(after_id)
        ids += [m.id for m in page.messages]
        if page.messages:
            assert (page.first_id, page.last_id) == (page.messages[0].id, page.messages[-1].id)
        if not page.has_more:
            return ids
        after_id = page.last_id
    raise AssertionError("paging did not terminate")


@pytest.mark.parametrize("order", ["desc", "asc", ""])
async def test_list_messages_pages_as_cozepy_expects(f: Fixture, order: str) -> None:
    conversation = await f.conversation(*(user(f"m{i}") for i in range(7)))
    oldest_first = [m.id for m in (await f.list_messages(conversation.id, order="asc")).messages]
    expected = oldest_first if order == "asc" else oldest_first[::-1]

    for limit in (1, 3, 7, 50, 0):

        def list_page(after_id: int, limit: int = limit) -> Awaitable[cpb.ListMessagesResponse]:
            return f.list_messages(conversation.id, order=order, limit=limit, after_id=after_id)

        assert await page_like_cozepy(list_page) == expected, f"limit {limit}"

    first = await f.list_messages(conversation.id, order=order, limit=3)
    assert first.has_more
    second = await f.list_messages(conversation.id, order=order, limit=3, after_id=first.last_id)
    # The previous page is before_id = first_id, as the Coze API defines it.
    back = await f.list_messages(conversation.id, order=order, limit=3, before_id=second.first_id)
    assert [m.id for m in back.messages] == [m.id for m in first.messages]
    assert not back.has_more, "nothing lies before the first page"
    back_one = await f.list_messages(
        conversation.id, order=order, limit=2, before_id=second.first_id
    )
    assert [m.id for m in back_one.messages] == expected[1:3]
    assert back_one.has_more
    window = await f.list_messages(
        conversation.id, order=order, after_id=expected[1], before_id=expected[5]
    )
    assert [m.id for m in window.messages] == expected[2:5]
    empty = await f.list_messages(conversation.id, order=order, after_id=expected[-1])
    assert (list(empty.messages), empty.first_id, empty.last_id, empty.has_more) == (
        [],
        0,
        0,
        False,
    )


async def test_list_messages_filters_by_chat_and_validates(f: Fixture) -> None:
    conversation = await f.conversation(user("outside"))
    chat = await f.chat(conversation.id, user("q1"), user("q2"))
    await f.chat(conversation.id, user("other chat"))

    only_chat = await f.list_messages(conversation.id, chat_id=chat.id, order="asc")
    assert [m.content for m in only_chat.messages] == ["q1", "q2"]
    assert len((await f.list_messages(conversation.id)).messages) == 4

    for fields, part in (
        ({"limit": 51}, "limit must be between 1 and 50"),
        ({"limit": -1}, "limit"),
        ({"order": "random"}, "order must be asc or desc"),
        ({"before_id": -5}, "before_id"),
    ):
        await expect_status(f.list_messages(conversation.id, **fields), INVALID, part)
    await expect_status(f.list_messages(0), INVALID, "conversation_id")


# --------------------------------------------------------------- chat runs


async def test_create_chat_starts_a_conversation_and_stores_the_input(f: Fixture) -> None:
    chat = await f.chat(
        0,
        user("What is up?", meta_data_json='{"m": "1"}'),
        user("https://x/i.png", content_type="image"),
        bot_version=3,
        model_id="echo",
        meta_data_json='{"trace": "t"}',
    )

    assert chat.status == "created"
    assert (chat.owner_id, chat.user_id, chat.bot_id) == (f.owner_id, "u", f.bot_id)
    assert (chat.bot_version, chat.model_id, chat.auto_save_history) == (3, "echo", True)
    assert chat.created_at > 0
    assert (chat.started_at, chat.completed_at, chat.failed_at, chat.canceled_at) == (0, 0, 0, 0)
    assert json.loads(chat.meta_data_json) == {"trace": "t"}
    conversation = await f.rpc.GetConversation(f.ref(chat.conversation_id, "u"))
    assert (conversation.user_id, conversation.bot_id) == ("u", f.bot_id)
    assert conversation.name == "What is up?"
    assert chat.section_id == conversation.last_section_id == conversation.id

    stored = await f.chat_messages(chat.id)
    assert [(m.role, m.type, m.content_type) for m in stored] == [
        ("user", "question", "text"),
        ("user", "question", "image"),
    ]
    assert json.loads(stored[0].meta_data_json) == {"m": "1"}
    assert all(
        (m.chat_id, m.section_id, m.conversation_id) == (chat.id, chat.section_id, conversation.id)
        for m in stored
    )
    assert await f.get_chat(chat.id) == chat
    assert await f.get_chat(chat.id, conversation.id) == chat
    other = await f.conversation()
    await expect_status(f.get_chat(chat.id, other.id), NOT_FOUND, "chat")
    await expect_status(
        f.rpc.ListChatMessages(
            cpb.ChatRef(owner_id=f.owner_id, chat_id=chat.id, conversation_id=other.id)
        ),
        NOT_FOUND,
    )


async def test_create_chat_in_an_existing_conversation_checks_the_end_user(f: Fixture) -> None:
    mine = await f.conversation(user_id="alice")
    await expect_status(f.chat(mine.id, user_id="bob"), NOT_FOUND, "conversation")
    chat = await f.chat(mine.id, user_id="alice")
    assert chat.conversation_id == mine.id

    anyone = await f.conversation(user_id="")
    chat = await f.chat(anyone.id, user_id="bob")
    assert (chat.conversation_id, chat.user_id) == (anyone.id, "bob")
    assert (await f.rpc.GetConversation(f.ref(anyone.id))).user_id == "", "not claimed"


async def test_create_chat_with_a_given_id_and_without_saving(f: Fixture) -> None:
    given = 1234567 + f.owner_id % 10_000_000
    chat = await f.chat(0, user("secret"), chat_id=given, auto_save_history=False)
    assert chat.id == given and not chat.auto_save_history
    assert await f.chat_messages(given) == []
    await expect_status(f.chat(0, chat_id=given), ALREADY_EXISTS, str(given))

    await f.start(given)
    await f.finish(given, answer="not kept")
    assert await f.chat_messages(given) == []
    assert (await f.list_messages(chat.conversation_id)).messages == []


async def test_a_taken_chat_id_changes_nothing(f: Fixture) -> None:
    # The primary key is the only existence check: the refused chat's new conversation and
    # input, written before its run row, must go with it.
    taken = (await f.chat(0, user("first"))).id
    conversation = await f.conversation(user("kept"))
    listed = cpb.ListConversationsRequest(owner_id=f.owner_id, bot_id=f.bot_id)
    before = [c.id for c in (await f.rpc.ListConversations(listed)).conversations]

    await expect_status(f.chat(0, user("second"), chat_id=taken), ALREADY_EXISTS, str(taken))
    await expect_status(
        f.chat(conversation.id, user("third"), chat_id=taken), ALREADY_EXISTS, str(taken)
    )

    after = [c.id for c in (await f.rpc.ListConversations(listed)).conversations]
    assert after == before, "no conversation left behind"
    contents = [m.content for m in (await f.list_messages(conversation.id)).messages]
    assert contents == ["kept"]
    assert [m.content for m in await f.chat_messages(taken)] == ["first"]


async def test_a_new_conversation_with_the_id_the_edge_minted(f: Fixture) -> None:
    # The edge queues such a chat while it is recorded, with the conversation id it minted.
    minted = 7654321 + f.owner_id % 10_000_000
    chat = await f.chat(0, user("hi"), new_conversation_id=minted)
    assert chat.conversation_id == chat.section_id == minted
    conversation = await f.rpc.GetConversation(f.ref(minted, "u"))
    assert conversation.last_section_id == minted
    assert [m.conversation_id for m in await f.chat_messages(chat.id)] == [minted]

    # A taken id is refused with nothing written; ids are for new conversations only.
    await expect_status(
        f.chat(0, user("again"), new_conversation_id=minted), ALREADY_EXISTS, str(minted)
    )
    assert [m.content for m in (await f.list_messages(minted)).messages] == ["hi"]
    await expect_status(
        f.chat(minted, new_conversation_id=minted + 1), INVALID, "new conversation only"
    )
    await expect_status(f.chat(0, new_conversation_id=-1), INVALID, "must not be negative")


async def test_a_taken_answer_id_leaves_the_run_in_progress(f: Fixture) -> None:
    # FinishRun ends the run before it stores the answer: refusing the answer's id must
    # undo the ending too, so the runner's retry with a fresh id still finishes it.
    other = await f.chat(0, user("other"))
    taken = (await f.chat_messages(other.id))[0].id
    chat = await f.chat()
    await f.start(chat.id)

    await expect_status(
        f.finish(chat.id, answer="the answer", answer_message_id=taken),
        ALREADY_EXISTS,
        str(taken),
    )

    assert (await f.get_chat(chat.id)).status == "in_progress"
    finished = await f.finish(chat.id, answer="the answer")
    assert finished.status == "completed"
    assert [m.content for m in await f.chat_messages(chat.id)] == ["hello", "the answer"]


async def test_a_deleted_conversation_ends_no_run_in_it(f: Fixture) -> None:
    chat = await f.chat()
    await f.start(chat.id)
    await f.rpc.DeleteConversation(f.ref(chat.conversation_id))

    await expect_status(f.finish(chat.id, answer="late"), NOT_FOUND, "chat")
    await expect_status(f.start(chat.id), NOT_FOUND, "chat")


async def test_create_chat_rejects_invalid_input(f: Fixture, other_owner_id: int) -> None:
    await expect_status(f.chat(bot_id=0), INVALID, "bot_id is required")
    await expect_status(f.chat(0, *[user("m")] * 101), INVALID, "messages: at most 100")
    await expect_status(f.chat(0, user("")), INVALID, "messages[0].content")
    await expect_status(f.chat(meta_data_json="[]"), INVALID, "meta_data_json")
    await expect_status(f.chat(model_id="m" * 129), INVALID, "model_id")
    await expect_status(f.chat(bot_version=-1), INVALID, "bot_version")
    foreign = await f.bots.CreateDraft(pb.CreateDraftRequest(owner_id=other_owner_id, name="x"))
    await expect_status(f.chat(bot_id=foreign.id), NOT_FOUND, "bot")
    await expect_status(f.chat(987654321), NOT_FOUND, "conversation")


async def test_a_run_from_start_to_completion(f: Fixture) -> None:
    chat = await f.chat(0, user("question"))

    started = await f.start(chat.id, history_rounds=5)
    assert not started.restarted
    assert started.run.status == "in_progress" and started.run.started_at > 0
    assert list(started.history) == []

    # Runners mint answer ids with their own node number.
    answer_id = IdGenerator(MAX_NODE).next_id()
    finished = await f.finish(
        chat.id,
        answer="the answer",
        reasoning_content="because",
        answer_message_id=answer_id,
        usage=cpb.Usage(prompt_tokens=11, completion_tokens=7),
        first_token_ms=120,
        duration_ms=900,
    )

    assert finished.status == "completed" and finished.completed_at > 0
    assert (finished.failed_at, finished.canceled_at) == (0, 0)
    assert (finished.usage.prompt_tokens, finished.usage.completion_tokens) == (11, 7)
    assert (finished.first_token_ms, finished.duration_ms) == (120, 900)
    assert finished.started_at == started.run.started_at
    assert await f.get_chat(chat.id) == finished
    question, answer = await f.chat_messages(chat.id)
    assert question.content == "question"
    assert answer.id == answer_id
    assert (answer.role, answer.type, answer.content_type) == ("assistant", "answer", "text")
    assert (answer.content, answer.reasoning_content) == ("the answer", "because")
    assert (answer.chat_id, answer.section_id, answer.bot_id) == (
        chat.id,
        chat.section_id,
        f.bot_id,
    )

    await expect_status(f.finish(chat.id), PRECONDITION, "chat already completed")
    await expect_status(f.start(chat.id), PRECONDITION, "chat already completed")
    assert len(await f.chat_messages(chat.id)) == 2, "a refused finish stores nothing"


async def test_a_minted_answer_id_and_failed_and_canceled_endings(f: Fixture) -> None:
    failing = await f.chat()
    await f.start(failing.id)
    failed = await f.finish(
        failing.id,
        status="failed",
        answer="partial",
        last_error=cpb.ChatError(code=500, msg="model broke"),
    )
    assert failed.status == "failed" and failed.failed_at > 0 and failed.completed_at == 0
    assert (failed.last_error.code, failed.last_error.msg) == (500, "model broke")
    answer = (await f.chat_messages(failing.id))[-1]
    assert answer.content == "partial" and answer.id > 0, "the partial answer is kept"

    canceling = await f.chat()
    await f.start(canceling.id)
    canceled = await f.finish(canceling.id, status="canceled", answer="")
    assert canceled.status == "canceled" and canceled.canceled_at > 0
    assert len(await f.chat_messages(canceling.id)) == 1, "an empty answer is not stored"
    await expect_status(f.finish(canceling.id, status="failed"), PRECONDITION, "already canceled")


async def test_finish_run_refuses_unstarted_chats_and_bad_input(f: Fixture) -> None:
    chat = await f.chat()
    await expect_status(f.finish(chat.id), PRECONDITION, "not been started")
    for status in ("requires_action", "in_progress", ""):
        await expect_status(f.finish(chat.id, status=status), INVALID, "status")
    await expect_status(
        f.finish(chat.id, usage=cpb.Usage(prompt_tokens=-1)), INVALID, "must not be negative"
    )
    await expect_status(f.finish(0), INVALID, "chat_id")
    assert (await f.get_chat(chat.id)).status == "created"


async def test_a_start_without_messages_reads_neither_history_nor_the_chat_s_own(
    f: Fixture,
) -> None:
    conversation = await f.conversation(user("earlier"), assistant("answer"))
    chat = await f.chat(conversation.id, user("now"))
    request = cpb.StartRunRequest(
        owner_id=f.owner_id, chat_id=chat.id, history_rounds=3, without_messages=True
    )
    started = await f.rpc.StartRun(request)
    assert started.run.status == "in_progress" and not started.restarted
    assert (list(started.history), list(started.chat_messages)) == ([], [])
    # A restart (another runner's retry) as well; the messages are the caller's to ask for.
    again = await f.rpc.StartRun(request)
    assert again.restarted and (list(again.history), list(again.chat_messages)) == ([], [])
    asked = await f.start(chat.id, history_rounds=3)
    assert [m.content for m in asked.history] == ["earlier", "answer"]
    assert [m.content for m in asked.chat_messages] == ["now"]


async def test_starting_a_running_chat_again_reports_a_restart(f: Fixture) -> None:
    chat = await f.chat()
    first = await f.start(chat.id)

    again = await f.start(chat.id, history_rounds=3)

    assert again.restarted
    assert again.run == first.run, "unchanged"
    await expect_status(f.start(chat.id, history_rounds=101), INVALID, "history_rounds")
    await expect_status(f.start(chat.id, history_rounds=-1), INVALID, "history_rounds")
    await expect_status(f.chat(0, history_rounds=101), INVALID, "history_rounds")


async def test_create_chat_of_the_previous_release_records_the_same_run(f: Fixture) -> None:
    # Edges of the previous release call CreateChat during a rolling upgrade.
    conversation = await f.conversation(user("earlier"), assistant("answer"))
    request = cpb.CreateChatRequest(
        owner_id=f.owner_id,
        user_id="u",
        conversation_id=conversation.id,
        bot_id=f.bot_id,
        messages=[user("now")],
        auto_save_history=True,
        history_rounds=3,
    )
    run = await f.rpc.CreateChat(request)
    assert isinstance(run, cpb.ChatRun) and run.status == "created"
    assert run.conversation_id == conversation.id
    started = await f.start(run.id, history_rounds=3)
    assert [m.content for m in started.history] == ["earlier", "answer"]


async def test_concurrent_starts_let_exactly_one_runner_start_the_chat(f: Fixture) -> None:
    chats = [await f.chat() for _ in range(5)]

    results = await asyncio.gather(*(f.start(c.id) for c in chats for _ in range(2)))

    for index in range(len(chats)):
        pair = results[2 * index : 2 * index + 2]
        assert sorted(r.restarted for r in pair) == [False, True]
        assert pair[0].run.started_at == pair[1].run.started_at


async def test_cancel_chat_state_machine(f: Fixture) -> None:
    conversation = await f.conversation()

    def cancel(chat_id: int = 0, conversation_id: int = conversation.id) -> Any:
        return f.rpc.CancelChat(
            cpb.CancelChatRequest(
                owner_id=f.owner_id, conversation_id=conversation_id, chat_id=chat_id
            )
        )

    queued = await f.chat(conversation.id)
    canceled = await cancel(queued.id)
    assert not canceled.running
    assert canceled.run.status == "canceled" and canceled.run.canceled_at > 0
    await expect_status(cancel(queued.id), PRECONDITION, "chat already canceled")
    await expect_status(f.start(queued.id), PRECONDITION, "chat already canceled")

    running = await f.chat(conversation.id)
    await f.start(running.id)
    reply = await cancel(running.id, 0)
    assert reply.running and reply.run.status == "in_progress", "the caller stops the runner"
    await f.finish(running.id, status="canceled")
    await expect_status(cancel(running.id), PRECONDITION, "chat already canceled")

    # Without a chat id: the newest chat still queued or running.
    await expect_status(cancel(), PRECONDITION, "no chat is running in this conversation")
    older = await f.chat(conversation.id)
    newer = await f.chat(conversation.id)
    assert (await cancel()).run.id == newer.id
    assert (await cancel()).run.id == older.id
    await expect_status(cancel(), PRECONDITION, "no chat is running")
    await expect_status(cancel(0, 0), INVALID, "conversation_id")
    other = await f.conversation()
    await expect_status(cancel(older.id, other.id), NOT_FOUND, "chat")


async def test_cancel_racing_a_start_has_exactly_one_winner(f: Fixture) -> None:
    for _ in range(3):
        chat = await f.chat()
        canceled, started = await asyncio.gather(
            f.rpc.CancelChat(cpb.CancelChatRequest(owner_id=f.owner_id, chat_id=chat.id)),
            f.start(chat.id),
            return_exceptions=True,
        )
        if isinstance(started, grpc.aio.AioRpcError):
            assert started.code() == PRECONDITION
            assert isinstance(canceled, cpb.CancelChatResponse) and not canceled.running
            assert (await f.get_chat(chat.id)).status == "canceled"
        else:
            assert isinstance(started, cpb.StartRunResponse) and not started.restarted
            assert isinstance(canceled, cpb.CancelChatResponse) and canceled.running
            assert (await f.get_chat(chat.id)).status == "in_progress"


async def test_abort_queued_chat(f: Fixture) -> None:
    def abort(chat_id: int, status: str, code: int = 0, msg: str = "") -> Any:
        return f.rpc.AbortQueuedChat(
            cpb.AbortQueuedChatRequest(
                owner_id=f.owner_id,
                chat_id=chat_id,
                status=status,
                last_error=cpb.ChatError(code=code, msg=msg),
            )
        )

    unqueued = await f.chat()
    failed = await abort(unqueued.id, "failed", 503, "no runner")
    assert failed.status == "failed" and failed.failed_at > 0
    assert (failed.last_error.code, failed.last_error.msg) == (503, "no runner")
    await expect_status(abort(unqueued.id, "canceled"), PRECONDITION, "chat already failed")
    await expect_status(f.start(unqueued.id), PRECONDITION, "chat already failed")

    abandoned = await f.chat()
    canceled = await abort(abandoned.id, "canceled")
    assert canceled.status == "canceled" and canceled.canceled_at > 0 and canceled.failed_at == 0

    running = await f.chat()
    await f.start(running.id)
    await expect_status(abort(running.id, "failed"), PRECONDITION, "runner has already started")
    assert (await f.get_chat(running.id)).status == "in_progress"
    await expect_status(abort(running.id, "completed"), INVALID, "status")


# ----------------------------------------------------------------- history


async def test_history_window_of_a_thousand_message_conversation(f: Fixture) -> None:
    old = [(user if i % 2 == 0 else assistant)(f"message {i}") for i in range(1000)]
    conversation = await f.conversation(*old)

    async def history(rounds: int) -> list[str]:
        # Not saved, so probing leaves the conversation as it was.
        created = await f.created(
            conversation.id, user("new"), auto_save_history=False, history_rounds=rounds
        )
        started = await f.start(created.run.id, history_rounds=rounds)
        window = [m.content for m in started.history]
        # CreateChat gives the edge the same window, for the runner to ask the model early.
        assert [m.content for m in created.history] == window
        return window

    assert await history(3) == [f"message {i}" for i in range(994, 1000)]
    assert await history(1) == ["message 998", "message 999"]
    assert await history(100) == [f"message {i}" for i in range(800, 1000)]
    assert await history(0) == []

    await f.rpc.ClearConversation(f.ref(conversation.id))
    assert await history(3) == []
    for message in (assistant("greeting"), user("a"), assistant("b"), user("c")):
        await f.rpc.CreateMessage(
            cpb.CreateMessageRequest(
                owner_id=f.owner_id, conversation_id=conversation.id, message=message
            )
        )
    assert await history(1) == ["c"]
    assert await history(2) == ["a", "b", "c"]
    assert await history(5) == ["greeting", "a", "b", "c"], "fewer rounds: the whole section"


async def test_history_leaves_out_the_chat_itself_later_messages_and_other_types(
    f: Fixture,
) -> None:
    # Tool traces are history (the model sees them in later chats); verbose messages are not.
    conversation = await f.conversation(
        user("q1"),
        assistant("a1"),
        assistant('{"name": "tool"}', type="function_call"),
        assistant("verbose", type="verbose"),
    )
    earlier = await f.chat(conversation.id, user("q2"))
    chat = await f.chat(conversation.id, user("q3"))
    await f.rpc.CreateMessage(
        cpb.CreateMessageRequest(
            owner_id=f.owner_id, conversation_id=conversation.id, message=user("later")
        )
    )

    started = await f.start(chat.id, history_rounds=10)

    assert [m.content for m in started.history] == ["q1", "a1", '{"name": "tool"}', "q2"]
    assert [m.chat_id for m in started.history] == [0, 0, 0, earlier.id]


# ----------------------------------------------------------------- tenancy


async def test_another_owner_finds_nothing(
    f: Fixture, conversations_rpc: ConversationsAsyncStub, other_owner_id: int
) -> None:
    conversation = await f.conversation(user("mine"))
    message = (await f.list_messages(conversation.id)).messages[0]
    chat = await f.chat(conversation.id)
    their_bot = await f.bots.CreateDraft(pb.CreateDraftRequest(owner_id=other_owner_id, name="t"))
    rpc, them = conversations_rpc, other_owner_id
    conversation_ref = cpb.ConversationRef(owner_id=them, conversation_id=conversation.id)
    message_ref = cpb.MessageRef(
        owner_id=them, conversation_id=conversation.id, message_id=message.id
    )
    chat_ref = cpb.ChatRef(owner_id=them, chat_id=chat.id)
    calls: list[Awaitable[Any]] = [
        rpc.CreateConversation(cpb.CreateConversationRequest(owner_id=them, bot_id=f.bot_id)),
        rpc.GetConversation(conversation_ref),
        rpc.ListConversations(cpb.ListConversationsRequest(owner_id=them, bot_id=f.bot_id)),
        rpc.UpdateConversation(
            cpb.UpdateConversationRequest(owner_id=them, conversation_id=conversation.id, name="x")
        ),
        rpc.DeleteConversation(conversation_ref),
        rpc.ClearConversation(conversation_ref),
        rpc.CreateMessage(
            cpb.CreateMessageRequest(
                owner_id=them, conversation_id=conversation.id, message=user("x")
            )
        ),
        rpc.GetMessage(message_ref),
        rpc.ListMessages(cpb.ListMessagesRequest(owner_id=them, conversation_id=conversation.id)),
        rpc.ModifyMessage(
            cpb.ModifyMessageRequest(
                owner_id=them, conversation_id=conversation.id, message_id=message.id, content="x"
            )
        ),
        rpc.DeleteMessage(message_ref),
        rpc.CreateChat(
            cpb.CreateChatRequest(
                owner_id=them, bot_id=their_bot.id, conversation_id=conversation.id
            )
        ),
        rpc.CreateChat(cpb.CreateChatRequest(owner_id=them, bot_id=f.bot_id)),
        rpc.OpenChat(cpb.CreateChatRequest(owner_id=them, bot_id=f.bot_id)),
        rpc.StartRun(cpb.StartRunRequest(owner_id=them, chat_id=chat.id)),
        rpc.FinishRun(cpb.FinishRunRequest(owner_id=them, chat_id=chat.id, status="failed")),
        rpc.GetChat(chat_ref),
        rpc.ListChatMessages(chat_ref),
        rpc.CancelChat(cpb.CancelChatRequest(owner_id=them, chat_id=chat.id)),
        rpc.CancelChat(cpb.CancelChatRequest(owner_id=them, conversation_id=conversation.id)),
        rpc.AbortQueuedChat(
            cpb.AbortQueuedChatRequest(owner_id=them, chat_id=chat.id, status="failed")
        ),
    ]
    for call in calls:
        await expect_status(call, NOT_FOUND)

    assert await f.rpc.GetConversation(f.ref(conversation.id)) == conversation
    assert (await f.get_chat(chat.id)).status == "created"
    assert [m.content for m in (await f.list_messages(conversation.id, order="asc")).messages] == [
        "mine",
        "hello",
    ]


async def test_another_end_user_finds_nothing(f: Fixture) -> None:
    conversation = await f.conversation(user("mine"), user_id="alice")
    bob = f.ref(conversation.id, "bob")
    for call in (
        f.rpc.GetConversation(bob),
        f.rpc.DeleteConversation(bob),
        f.rpc.ClearConversation(bob),
        f.chat(conversation.id, user_id="bob"),
    ):
        await expect_status(call, NOT_FOUND, "conversation")
    assert (await f.rpc.GetConversation(f.ref(conversation.id, "alice"))).id == conversation.id
    listed = await f.rpc.ListConversations(
        cpb.ListConversationsRequest(owner_id=f.owner_id, bot_id=f.bot_id, user_id="bob")
    )
    assert list(listed.conversations) == []
