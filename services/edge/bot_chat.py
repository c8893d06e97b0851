"""The one place the OpenAI-compatible routes reach the edge's chat core (runtime.chats): run a
published bot on some messages, as a normal chat through the queue, and read its events back
as (name, parsed data) pairs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from services.edge.chat_requests import chat_input
from services.edge.core.session import ChatOutcome, ChatSession
from services.edge.runtime import EdgeRuntime
from services.edge.schemas.chat import ChatMessageIn, ChatOptions


@dataclass(frozen=True, slots=True)
class BotChat:
    session: ChatSession
    chat_id: int

    async def events(self) -> AsyncIterator[tuple[str, Any]]:
        """The chat's events in order, each as its name and parsed data."""
        async for event in self.session.events():
            yield event.name, orjson.loads(event.data)

    async def outcome(self) -> ChatOutcome:
        return await self.session.outcome()

    async def close(self) -> None:
        await self.session.close()


async def start_bot_chat(
    runtime: EdgeRuntime,
    *,
    owner_id: int,
    bot_id: int,
    user_id: str,
    messages: Sequence[ChatMessageIn],
    stream: bool,
) -> BotChat:
    """A chat with the bot's latest published version in a new conversation that is not
    saved (the caller sends the whole history each time). 404 for an unknown bot. The end
    user's stored variables join it in the core, as for every chat."""
    options = ChatOptions(
        stream=stream, additional_messages=list(messages), auto_save_history=False
    )
    runtime.limits.chat(options, None)
    target = await runtime.chats.published_target(owner_id, bot_id)
    session = await runtime.chats.start(owner_id, target, chat_input(options, None, user_id, None))
    return BotChat(session, session.chat_id)
