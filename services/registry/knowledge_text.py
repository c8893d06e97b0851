"""Text as the full-text index sees it: the same segmentation for chunks and queries, on
SQLite and PostgreSQL alike.

Latin-script words are lower-cased tokens. Chinese, Japanese and Korean have no spaces, so
each run of CJK characters becomes its overlapping bigrams ("知识库" -> "知识 识库"), the
scheme Lucene's CJKAnalyzer uses: it finds any two-or-more-character word without a
dictionary or model, and a query's bigrams match the chunk's. A lone CJK character stays a
unigram. Both backends then tokenize on the spaces (FTS5 unicode61, PostgreSQL 'simple').
"""

from __future__ import annotations

import re

# Han (with extension A and compatibility ideographs), kana and Hangul.
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_TOKEN = re.compile(rf"[{_CJK}]+|[^\W{_CJK}_]+", re.UNICODE)
_IS_CJK = re.compile(rf"[{_CJK}]")

# Query words that would match nearly every English chunk. Chunks keep them (phrases stay
# intact); queries drop them unless nothing else is left.
_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "do",
        "does",
        "did",
        "for",
        "from",
        "has",
        "have",
        "how",
        "i",
        "in",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "that",
        "the",
        "this",
        "to",
        "was",
        "were",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "will",
        "with",
        "you",
        "your",
    ]
)
MAX_QUERY_TERMS = 32


def terms(text: str) -> list[str]:
    out: list[str] = []
    for match in _TOKEN.finditer(text.lower()):
        token = match.group(0)
        if _IS_CJK.match(token):
            if len(token) == 1:
                out.append(token)
            else:
                out.extend(token[i : i + 2] for i in range(len(token) - 1))
        else:
            out.append(token)
    return out


def search_text(content: str) -> str:
    """What the index stores for a chunk."""
    return " ".join(terms(content))


def query_terms(query: str) -> list[str]:
    """Distinct terms of a query, in order, stop words dropped when others remain."""
    seen: dict[str, None] = {}
    for term in terms(query):
        seen.setdefault(term, None)
    all_terms = list(seen)
    kept = [t for t in all_terms if t not in _STOPWORDS] or all_terms
    return kept[:MAX_QUERY_TERMS]


def fts5_query(words: list[str], *, every: bool = False) -> str:
    """An FTS5 MATCH expression: any (or every) of the terms, each quoted (terms are word
    characters only, so quoting is all the escaping needed)."""
    return (" AND " if every else " OR ").join(f'"{w}"' for w in words)


def tsquery(words: list[str], *, every: bool = False) -> str:
    """A PostgreSQL to_tsquery('simple', ...) expression: any (or every) of the terms."""
    return (" & " if every else " | ").join("'" + w.replace("'", "''") + "'" for w in words)
