"""Moved: chats live in the edge's transport-neutral core (services/edge/core/chats.py and
core/session.py), reached as `runtime.chats`. These wrappers keep the old names importable
for routes written before the move; new code calls the core."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from services.edge.chat_requests import chat_input
from services.edge.core.chats import ChatInput, ChatTarget, answer_data
from services.edge.core.session import (
    NO_RUNNER_CODE,
    NO_RUNNER_MSG,
    RUNNER_LOST_CODE,
    RUNNER_LOST_MSG,
    ChatOutcome,
    ChatSession,
)
from services.edge.runtime import EdgeRuntime
from services.edge.schemas.chat import ChatMessageIn, ChatOptions

__all__ = [
    "NO_RUNNER_CODE",
    "NO_RUNNER_MSG",
    "RUNNER_LOST_CODE",
    "RUNNER_LOST_MSG",
    "ChatInput",
    "ChatOutcome",
    "ChatSession",
    "ChatTarget",
    "answer_data",
    "cancel_chat",
    "draft_target",
    "published_target",
    "start_chat",
]


async def published_target(runtime: EdgeRuntime, owner_id: int, bot_id: int) -> ChatTarget:
    return await runtime.chats.published_target(owner_id, bot_id)


async def draft_target(runtime: EdgeRuntime, owner_id: int, bot_id: int) -> ChatTarget:
    return await runtime.chats.draft_target(owner_id, bot_id)


async def start_chat(
    runtime: EdgeRuntime,
    *,
    owner_id: int,
    user_id: str,
    target: ChatTarget,
    conversation_id: int | None,
    messages: Sequence[ChatMessageIn],
    options: ChatOptions,
) -> ChatSession:
    body = options.model_copy(update={"additional_messages": list(messages)})
    chat = chat_input(body, None, user_id, conversation_id)
    return await runtime.chats.start(owner_id, target, chat)


async def cancel_chat(
    runtime: EdgeRuntime, owner_id: int, conversation_id: int, chat_id: int
) -> dict[str, Any]:
    return await runtime.chats.cancel(owner_id, conversation_id, chat_id)
