"""Token counts for when a provider reports no usage.

This is an approximation, not a tokenizer: models tokenize differently and shipping each
vocabulary is not worth it for a usage figure. The rule, close to what BPE tokenizers of
the GPT/Qwen/DeepSeek families produce on ordinary text:

- each CJK character (ideographs, kana, hangul, fullwidth punctuation) is one token;
- the rest is one token per started 4 characters, after collapsing whitespace runs to one
  space (so indentation does not inflate code).

A prompt adds the per-message framing chat models bill for (OpenAI documents 3 tokens
per message plus 3 to prime the reply), and each image a vision model sees counts as 85
tokens (OpenAI's cost for a low-detail image). Expect ±30% against a real tokenizer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from services.runner.providers.base import ImagePart, PromptMessage, part_as_text

_CJK = (
    "\u2e80-\u2fdf"  # radicals
    "\u3000-\u303f"  # CJK symbols and punctuation
    "\u3040-\u30ff"  # hiragana, katakana
    "\u3100-\u31ff"  # bopomofo, hangul compatibility jamo, kanbun, ...
    "\u3400-\u4dbf"  # extension A
    "\u4e00-\u9fff"  # unified ideographs
    "\uac00-\ud7af"  # hangul syllables
    "\uf900-\ufaff"  # compatibility ideographs
    "\uff00-\uffef"  # halfwidth and fullwidth forms
    "\U00020000-\U0003134f"  # extensions B-H
)
_CJK_CHAR = re.compile(f"[{_CJK}]")
_WHITESPACE = re.compile(r"\s+")

CHARS_PER_TOKEN = 4
TOKENS_PER_MESSAGE = 3
TOKENS_REPLY_PRIMING = 3
TOKENS_PER_IMAGE = 85


def count_text_tokens(text: str) -> int:
    other, cjk = _CJK_CHAR.subn(" ", text)
    other = _WHITESPACE.sub(" ", other).strip()
    return cjk + -(-len(other) // CHARS_PER_TOKEN)


def count_prompt_tokens(messages: Iterable[PromptMessage], *, vision: bool = True) -> int:
    """Tokens of a prompt as sent. Images reach a model natively only in user messages of a
    vision model; elsewhere they count as the text notes that replace them."""
    tokens = TOKENS_REPLY_PRIMING
    for message in messages:
        tokens += TOKENS_PER_MESSAGE
        for part in message.parts:
            if vision and message.role == "user" and isinstance(part, ImagePart):
                tokens += TOKENS_PER_IMAGE
            else:
                tokens += count_text_tokens(part_as_text(part))
        for call in message.tool_calls:
            tokens += count_text_tokens(call.name) + count_text_tokens(call.arguments)
    return tokens
