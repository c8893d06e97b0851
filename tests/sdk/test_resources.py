"""Bots, conversations and messages through the SDK, against the real edge and registry."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from coze import (
    AsyncCozeClient,
    Bot,
    BotDraft,
    CozeClient,
    InputMessage,
    NotFoundError,
)


def test_bots_lifecycle(client: CozeClient) -> None:
    draft = client.bots.create_draft(
        "客服助手",
        description="专业的客服智能助手",
        icon_url="https://example.com/icon.png",
        prompt="你是一个专业的客服助手。",
        model="mock-echo",
    )
    assert isinstance(draft, BotDraft)
    assert draft.status == "draft" and draft.name == "客服助手"
    assert isinstance(draft.bot_id, str) and draft.bot_id.isdigit()

    # Nothing is online before the first publish.
    with pytest.raises(NotFoundError):
        client.bots.online_info(draft.bot_id)
    assert client.bots.get(draft.bot_id, is_published=False).status == "draft"

    updated = client.bots.update_display_info(
        int(draft.bot_id), name="高级客服助手", description="更专业的客服智能助手"
    )
    assert updated.bot_id == draft.bot_id and updated.name == "高级客服助手"

    published = client.bots.publish(draft.bot_id)
    assert published.version == 1 and published.status == "online"

    online = client.bots.online_info(int(draft.bot_id))
    assert isinstance(online, Bot)
    assert (online.bot_id, online.name, online.version, online.status, online.model) == (
        draft.bot_id,
        "高级客服助手",
        "1",
        "online",
        "mock-echo",
    )
    details = client.bots.get(draft.bot_id)
    assert (
        details.prompt == "你是一个专业的客服助手。"
        and details.description == "更专业的客服智能助手"
    )
    # Official Bot fields are kept as extras.
    assert details.model_extra is not None and "prompt_info" in details.model_extra

    # A draft change is not online until published again.
    client.bots.update_display_info(draft.bot_id, prompt="new prompt")
    assert client.bots.get(draft.bot_id).prompt == "你是一个专业的客服助手。"
    assert client.bots.publish(draft.bot_id).version == 2
    assert client.bots.get(draft.bot_id).prompt == "new prompt"

    client.bots.delete(draft.bot_id)
    with pytest.raises(NotFoundError):
        client.bots.get(draft.bot_id)


def test_conversations_list_pages_automatically(
    client: CozeClient, make_bot: Callable[..., str]
) -> None:
    bot_id = make_bot(model="mock-echo")
    created = [
        client.conversations.create(bot_id=bot_id, meta_data={"n": str(i)}) for i in range(3)
    ]
    listed = list(client.conversations.list(bot_id, page_size=1))
    # Newest first, every one exactly once, across three pages.
    assert [c.id for c in listed] == [c.id for c in reversed(created)]
    oldest_first = list(client.conversations.list(int(bot_id), page_size=2, sort_order="asc"))
    assert [c.id for c in oldest_first] == [c.id for c in created]


def test_conversation_crud(client: CozeClient, make_bot: Callable[..., str]) -> None:
    bot_id = make_bot(model="mock-echo")
    conversation = client.conversations.create(
        bot_id=bot_id,
        messages=[InputMessage.user("hello"), InputMessage.assistant("hi!")],
        meta_data={"k": "v"},
        name="greetings",
    )
    assert conversation.meta_data == {"k": "v"} and conversation.last_section_id
    retrieved = client.conversations.retrieve(int(conversation.id))
    assert retrieved.id == conversation.id and retrieved.name == "greetings"
    renamed = client.conversations.update(conversation.id, name="renamed")
    assert renamed.name == "renamed"

    section = client.conversations.clear(conversation.id)
    assert section.conversation_id == conversation.id
    assert section.id != conversation.last_section_id
    assert client.conversations.retrieve(conversation.id).last_section_id == section.id

    client.conversations.delete(conversation.id)
    with pytest.raises(NotFoundError):
        client.conversations.retrieve(conversation.id)


def test_messages_list_pages_over_every_message(
    client: CozeClient, make_bot: Callable[..., str]
) -> None:
    bot_id = make_bot(model="mock-echo")
    texts = [f"m{i}" for i in range(7)]
    conversation = client.conversations.create(
        bot_id=bot_id, messages=[InputMessage.user(t) for t in texts]
    )
    newest_first = list(client.messages.list(conversation.id, limit=3))
    assert [m.content for m in newest_first] == texts[::-1]
    oldest_first = list(client.messages.list(conversation.id, order="asc", limit=2))
    assert [m.content for m in oldest_first] == texts
    assert len({m.id for m in oldest_first}) == 7
    # Starting from a cursor continues from there.
    after_third = list(
        client.messages.list(conversation.id, order="asc", after_id=oldest_first[2].id, limit=2)
    )
    assert [m.content for m in after_third] == texts[3:]


def test_message_crud(client: CozeClient, make_bot: Callable[..., str]) -> None:
    bot_id = make_bot(model="mock-echo")
    conversation = client.conversations.create(bot_id=bot_id)
    message = client.messages.create(
        conversation.id, content="draft text", meta_data={"from": "sdk"}
    )
    assert message.role == "user" and message.content == "draft text"
    assert message.conversation_id == conversation.id and message.meta_data == {"from": "sdk"}

    retrieved = client.messages.retrieve(conversation.id, int(message.id))
    assert retrieved.id == message.id and retrieved.content == "draft text"
    modified = client.messages.modify(conversation.id, message.id, content="final text")
    assert modified.id == message.id and modified.content == "final text"
    assert client.messages.retrieve(conversation.id, message.id).content == "final text"

    deleted = client.messages.delete(conversation.id, message.id)
    assert deleted.id == message.id
    with pytest.raises(NotFoundError):
        client.messages.retrieve(conversation.id, message.id)
    assert list(client.conversations.messages.list(conversation.id)) == []


async def test_async_resources(aclient: AsyncCozeClient) -> None:
    draft = await aclient.bots.create_draft("async bot", model="mock-echo")
    published = await aclient.bots.publish(draft.bot_id)
    assert published.version == 1
    assert (await aclient.bots.get(draft.bot_id)).version == "1"
    assert (await aclient.bots.online_info(draft.bot_id)).name == "async bot"

    conversations = [
        await aclient.conversations.create(
            bot_id=draft.bot_id, messages=[InputMessage.user(f"c{i}-{j}") for j in range(3)]
        )
        for i in range(2)
    ]
    listed = [c.id async for c in aclient.conversations.list(draft.bot_id, page_size=1)]
    assert listed == [c.id for c in reversed(conversations)]
    contents = [
        m.content async for m in aclient.messages.list(conversations[0].id, order="asc", limit=1)
    ]
    assert contents == ["c0-0", "c0-1", "c0-2"]

    message = await aclient.messages.create(conversations[0].id, content="added")
    modified = await aclient.messages.modify(conversations[0].id, message.id, content="changed")
    assert modified.content == "changed"
    await aclient.messages.delete(conversations[0].id, message.id)
    await aclient.conversations.delete(conversations[1].id)
    with pytest.raises(NotFoundError):
        await aclient.conversations.retrieve(conversations[1].id)
    await aclient.bots.delete(draft.bot_id)
    with pytest.raises(NotFoundError):
        await aclient.bots.get(draft.bot_id)
