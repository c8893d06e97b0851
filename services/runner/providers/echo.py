"""The built-in `echo` model: answers without any network, so a fresh install can run a
bot end to end before any real model is configured, and tests are deterministic.

The answer is `Echo: ` followed by the last user message, images and files shown as
`[image: URL]` / `[file: URL]` notes, streamed one word at a time. Usage is counted with
the same approximation the OpenAI adapter falls back to.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncGenerator

from cozeplus.model_catalog import ModelSpec
from services.runner.providers.base import (
    Completion,
    CompletionRequest,
    FinishReason,
    StreamItem,
    TextDelta,
    Usage,
    part_as_text,
)
from services.runner.providers.token_count import count_prompt_tokens, count_text_tokens

ECHO_PREFIX = "Echo: "
NO_USER_MESSAGE = "(no user message)"
# A word with the whitespace after it, so the deltas join back into the exact answer.
_WORDS = re.compile(r"\s*\S+\s*")


def echo_answer(request: CompletionRequest) -> str:
    for message in reversed(request.messages):
        if message.role == "user":
            body = " ".join(t for t in (part_as_text(p).strip() for p in message.parts) if t)
            return ECHO_PREFIX + (body or NO_USER_MESSAGE)
    return ECHO_PREFIX + NO_USER_MESSAGE


class EchoProvider:
    def __init__(self, spec: ModelSpec) -> None:
        self._spec = spec

    @property
    def spec(self) -> ModelSpec:
        return self._spec

    async def stream(self, request: CompletionRequest) -> AsyncGenerator[StreamItem, None]:
        answer = echo_answer(request)
        max_tokens = request.max_tokens or self._spec.defaults.max_tokens
        sent = ""
        finish: FinishReason = "stop"
        for word in _WORDS.findall(answer):
            if max_tokens is not None and count_text_tokens(sent + word) > max_tokens:
                finish = "length"
                break
            # Yield to the loop between words, as a network stream would, so a cancel lands
            # mid-answer rather than after it.
            await asyncio.sleep(0)
            sent += word
            yield TextDelta(word)
        usage = Usage(
            prompt_tokens=count_prompt_tokens(request.messages, vision=self._spec.vision),
            completion_tokens=count_text_tokens(sent),
        )
        yield Completion(usage=usage, finish_reason=finish, usage_estimated=True)

    async def aclose(self) -> None:
        return None
