"""The OpenAI-compatible stream's text, from a chat's events: a model that spoke before a round
of tool calls said two answers, and the stream sets the second apart from the first, as the
non-streaming completion does (chat_wire.ANSWER_SEPARATOR)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, cast

import orjson

from cozeplus.chat_protocol import CHAT_COMPLETED, MESSAGE_COMPLETED, MESSAGE_DELTA
from services.edge.bot_chat import BotChat
from services.edge.routes.openai_compat import _stream


class ScriptedChat:
    chat_id = 7

    def __init__(self, events: list[tuple[str, dict[str, Any]]]) -> None:
        self._events = events

    async def events(self) -> AsyncIterator[tuple[str, Any]]:
        for event in self._events:
            yield event


def delta(message_id: str, text: str, kind: str = "answer") -> tuple[str, dict[str, Any]]:
    return MESSAGE_DELTA, {"id": message_id, "type": kind, "content": text}


async def streamed_text(events: list[tuple[str, dict[str, Any]]]) -> str:
    text = []
    async for frame in _stream(cast(BotChat, ScriptedChat(events)), "bot", False):
        payload = frame.removeprefix(b"data: ").strip()
        if payload == b"[DONE]":
            break
        for choice in orjson.loads(payload)["choices"]:
            text.append(choice["delta"].get("content") or "")
    return "".join(text)


async def test_answers_said_around_a_tool_round_are_set_apart() -> None:
    events = [
        delta("39", "Let me "),
        delta("39", "look."),
        (MESSAGE_COMPLETED, {"id": "39", "type": "answer", "content": "Let me look."}),
        (MESSAGE_COMPLETED, {"id": "41", "type": "function_call", "content": "{}"}),
        delta("42", "Hello"),
        delta("42", " world"),
        (CHAT_COMPLETED, {"usage": {}}),
    ]
    assert await streamed_text(events) == "Let me look.\n\nHello world"


async def test_one_answer_streams_as_it_was_said() -> None:
    events = [delta("42", "Hello"), delta("42", " world"), (CHAT_COMPLETED, {"usage": {}})]
    assert await streamed_text(events) == "Hello world"
