"""Text to chunks, per the SDKs' chunk_strategy.

chunk_type 1 (custom): split on `separator`, then pack consecutive pieces into chunks of
at most `max_tokens`; a piece longer than that is cut at sentence ends, then hard.
`remove_extra_spaces` collapses runs of spaces/tabs and of blank lines;
`remove_urls_emails` deletes URLs and e-mail addresses. chunk_type 0 (automatic) is Coze's
default: separator "\\n", 800 tokens, extra spaces removed.

Tokens are estimated without a tokenizer: one per CJK character, one per four other
characters (close to what BPE tokenizers give for English prose).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

AUTO_SEPARATOR = "\n"
AUTO_MAX_TOKENS = 800

_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")
_SPACES = re.compile(r"[ \t\u3000\u00a0]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")
_URL = re.compile(r"(?:https?://|www\.)[^\s<>\"']+", re.IGNORECASE)
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_SENTENCE_END = re.compile(r"(?<=[.!?。！？；;])\s*")


@dataclass(frozen=True)
class ChunkPlan:
    separator: str
    max_tokens: int
    remove_extra_spaces: bool
    remove_urls_emails: bool

    @classmethod
    def of(
        cls,
        chunk_type: int,
        separator: str,
        max_tokens: int,
        remove_extra_spaces: bool,
        remove_urls_emails: bool,
    ) -> ChunkPlan:
        if chunk_type != 1:
            return cls(AUTO_SEPARATOR, AUTO_MAX_TOKENS, True, False)
        # The SDKs send separators as typed: "\\n" means a newline.
        separator = separator.replace("\\n", "\n").replace("\\t", "\t") or AUTO_SEPARATOR
        return cls(
            separator, max_tokens or AUTO_MAX_TOKENS, remove_extra_spaces, remove_urls_emails
        )


def estimate_tokens(text: str) -> int:
    cjk = len(_CJK.findall(text))
    return cjk + math.ceil((len(text) - cjk) / 4)


def clean(text: str, plan: ChunkPlan) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if plan.remove_urls_emails:
        text = _EMAIL.sub("", _URL.sub("", text))
    if plan.remove_extra_spaces:
        text = _BLANK_LINES.sub("\n", _SPACES.sub(" ", text))
    return text.strip()


def chunk(text: str, plan: ChunkPlan) -> list[str]:
    text = clean(text, plan)
    pieces: list[str] = []
    for piece in text.split(plan.separator):
        piece = piece.strip()
        if piece:
            pieces.extend(_fit(piece, plan.max_tokens))
    chunks: list[str] = []
    current: list[str] = []
    current_tokens = 0
    joiner = plan.separator if plan.separator.strip() == "" else "\n"
    for piece in pieces:
        tokens = estimate_tokens(piece)
        if current and current_tokens + tokens > plan.max_tokens:
            chunks.append(joiner.join(current))
            current, current_tokens = [], 0
        current.append(piece)
        current_tokens += tokens
    if current:
        chunks.append(joiner.join(current))
    return chunks


def _fit(piece: str, max_tokens: int) -> list[str]:
    """A piece cut into parts of at most max_tokens: at sentence ends, else hard."""
    if estimate_tokens(piece) <= max_tokens:
        return [piece]
    out: list[str] = []
    current = ""
    for sentence in (s for s in _SENTENCE_END.split(piece) if s):
        if estimate_tokens(sentence) > max_tokens:
            if current:
                out.append(current)
                current = ""
            out.extend(_hard_cut(sentence, max_tokens))
        elif estimate_tokens(current + " " + sentence) > max_tokens:
            out.append(current)
            current = sentence
        else:
            current = f"{current} {sentence}" if current else sentence
    if current:
        out.append(current)
    return [p.strip() for p in out if p.strip()]


def _hard_cut(text: str, max_tokens: int) -> list[str]:
    out: list[str] = []
    start = 0
    while start < len(text):
        end = start + 1
        # Grow the slice while it fits; steps of max_tokens characters keep this linear.
        step = max(1, max_tokens)
        while (
            end < len(text)
            and estimate_tokens(text[start : min(end + step, len(text))]) <= max_tokens
        ):
            end = min(end + step, len(text))
        while end < len(text) and estimate_tokens(text[start : end + 1]) <= max_tokens:
            end += 1
        out.append(text[start:end])
        start = end
    return out
