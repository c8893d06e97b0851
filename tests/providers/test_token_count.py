from __future__ import annotations

from services.runner.providers import ImagePart, PromptMessage, TextPart
from services.runner.providers.token_count import (
    TOKENS_PER_IMAGE,
    TOKENS_PER_MESSAGE,
    TOKENS_REPLY_PRIMING,
    count_prompt_tokens,
    count_text_tokens,
)


def test_cjk_characters_are_one_token_each() -> None:
    assert count_text_tokens("你好，世界") == 5
    assert count_text_tokens("こんにちは") == 5
    assert count_text_tokens("안녕하세요") == 5


def test_other_text_is_a_token_per_four_characters() -> None:
    assert count_text_tokens("") == 0
    assert count_text_tokens("abcd") == 1
    assert count_text_tokens("abcde") == 2
    assert count_text_tokens("hello world") == 3


def test_whitespace_runs_count_once() -> None:
    assert count_text_tokens("def f():\n        return 1") == count_text_tokens("def f(): return 1")


def test_mixed_text() -> None:
    assert count_text_tokens("用 Python 写") == 2 + count_text_tokens("Python")


def test_prompt_adds_framing_and_images() -> None:
    image = ImagePart("https://x.test/a.png")
    messages = [
        PromptMessage.text("system", "abcd"),
        PromptMessage(role="user", parts=[TextPart("abcd"), image]),
    ]
    framing = TOKENS_REPLY_PRIMING + 2 * TOKENS_PER_MESSAGE
    assert count_prompt_tokens(messages) == framing + 2 + TOKENS_PER_IMAGE
    note = count_text_tokens("[image: https://x.test/a.png]")
    assert count_prompt_tokens(messages, vision=False) == framing + 2 + note
