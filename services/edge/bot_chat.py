"""The one place the OpenAI-compatible routes reach the edge's chat core: run a published bot
on some messages, as a normal chat through the queue, and read its events back as
(name, parsed data) pairs rather than Coze SSE bytes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from services.edge import chat_gateway
from services.edge.chat_gateway import ChatOutcome, ChatSession
from services.edge.chat_variables import with_stored_variables
from services.edge.runtime import EdgeRuntime
from services.edge.schemas.chat import ChatMessageIn, ChatOptions


@dataclass(frozen=True, slots=True)
class BotChat:
    session: ChatSession
    chat_id: int

    async def events(self) -> AsyncIterator[tuple[str, Any]]:
        """The chat's events in order, each as its name and parsed data."""
        async for frame in self.session.frames():
            # Exactly `event: NAME\ndata: JSON\n\n` (wire contract section 2).
            head, _, rest = frame.partition(b"\n")
            data = rest.removeprefix(b"data: ").rstrip(b"\n")
            yield head.removeprefix(b"event: ").decode(), orjson.loads(data)

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
    saved (the caller sends the whole history each time). 404 for an unknown bot."""
    options = ChatOptions(
        stream=stream, additional_messages=list(messages), auto_save_history=False
    )
    runtime.limits.chat(options, None)
    target = await chat_gateway.published_target(runtime, owner_id, bot_id)
    options = await with_stored_variables(
        runtime, owner_id=owner_id, bot_id=bot_id, user_id=user_id, options=options
    )
    session = await chat_gateway.start_chat(
        runtime,
        owner_id=owner_id,
        user_id=user_id,
        target=target,
        conversation_id=None,
        messages=messages,
        options=options,
    )
    return BotChat(session, session.chat_id)
