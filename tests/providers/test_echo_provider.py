"""The built-in echo model: no network, deterministic."""

from __future__ import annotations

import asyncio

from cozeplus.model_catalog import BUILTIN_MODELS, ECHO_MODEL_ID, ModelCatalog, ModelSpec
from services.runner.providers import (
    Completion,
    CompletionRequest,
    FilePart,
    ImagePart,
    PromptMessage,
    TextDelta,
    TextPart,
    collect,
    provider_for,
)
from services.runner.providers.echo import EchoProvider
from services.runner.providers.openai_compat import OpenAICompatProvider
from services.runner.providers.token_count import count_prompt_tokens, count_text_tokens


def _echo_spec() -> ModelSpec:
    spec = ModelCatalog.load(None).get(ECHO_MODEL_ID)
    assert spec is not None
    return spec


ECHO = _echo_spec()


def ask(*messages: PromptMessage, **kwargs: object) -> CompletionRequest:
    return CompletionRequest(messages=list(messages), **kwargs)  # type: ignore[arg-type]


async def test_echo_is_labelled_built_in() -> None:
    assert "echo" in ECHO.label.lower() and "built-in" in ECHO.label.lower()
    assert isinstance(provider_for(ECHO), EchoProvider)


async def test_echo_streams_the_last_user_message_word_by_word() -> None:
    request = ask(
        PromptMessage.text("system", "ignored"),
        PromptMessage.text("user", "old question"),
        PromptMessage.text("assistant", "old answer"),
        PromptMessage.text("user", "hello   big world"),
    )
    items = [item async for item in EchoProvider(ECHO).stream(request)]
    *deltas, completion = items
    assert [d.text for d in deltas if isinstance(d, TextDelta)] == [
        "Echo: ",
        "hello   ",
        "big ",
        "world",
    ]
    assert isinstance(completion, Completion)
    assert completion.finish_reason == "stop"
    assert completion.usage_estimated
    assert completion.usage.completion_tokens == count_text_tokens("Echo: hello   big world")
    assert completion.usage.prompt_tokens == count_prompt_tokens(request.messages)


async def test_echo_mentions_images_and_files() -> None:
    request = ask(
        PromptMessage(
            role="user",
            parts=[
                TextPart("look"),
                ImagePart("https://x.test/a.png"),
                FilePart("https://x.test/r.pdf", name="r.pdf"),
            ],
        )
    )
    answer, _ = await collect(EchoProvider(ECHO), request)
    assert answer == "Echo: look [image: https://x.test/a.png] [file: r.pdf https://x.test/r.pdf]"


async def test_echo_without_a_user_message() -> None:
    answer, completion = await collect(EchoProvider(ECHO), ask(PromptMessage.text("system", "s")))
    assert answer == "Echo: (no user message)"
    assert completion.finish_reason == "stop"


async def test_echo_honours_max_tokens() -> None:
    request = ask(PromptMessage.text("user", "one two three four five six seven"), max_tokens=3)
    answer, completion = await collect(EchoProvider(ECHO), request)
    assert completion.finish_reason == "length"
    assert answer.startswith("Echo: ")
    assert completion.usage.completion_tokens <= 3
    assert count_text_tokens(answer) == completion.usage.completion_tokens


async def test_echo_can_be_cancelled_mid_answer() -> None:
    long_text = " ".join(f"w{i}" for i in range(10_000))
    seen = 0
    started = asyncio.Event()

    async def consume() -> None:
        nonlocal seen
        async for _ in EchoProvider(ECHO).stream(ask(PromptMessage.text("user", long_text))):
            seen += 1
            if seen == 3:
                started.set()

    task = asyncio.create_task(consume())
    await started.wait()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert task.cancelled()
    assert seen < 10_000


def test_provider_for_caches_per_model_id() -> None:
    spec = ModelSpec(id="cached-x", provider="openai", base_url="http://127.0.0.1:9/v1", model="x")
    first = provider_for(spec)
    assert isinstance(first, OpenAICompatProvider)
    assert provider_for(spec.model_copy()) is first
    changed = provider_for(spec.model_copy(update={"model": "y"}))
    assert changed is not first
    assert provider_for(BUILTIN_MODELS[0]) is provider_for(BUILTIN_MODELS[0])
