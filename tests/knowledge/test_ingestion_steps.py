"""The worker's steps in process, with a fake registry: chunking rules, segmentation for
the index, and the give-up rule for jobs whose workers kept dying."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

import pytest

from cozeplus.knowledge_jobs import MAX_ATTEMPTS, decode_job, encode_job
from cozeplus.rpc.v1 import knowledge_pb2 as kpb
from services.knowledge.chunking import ChunkPlan, chunk, estimate_tokens
from services.knowledge.ingestion import IngestionDeps, ingest
from services.knowledge.web_page import WebLimits, WebPageError, fetch_web_page
from services.registry.knowledge_text import fts5_query, query_terms, search_text, tsquery


def test_custom_strategy_splits_on_the_separator_and_packs_up_to_max_tokens() -> None:
    plan = ChunkPlan.of(1, "###", 100, remove_extra_spaces=False, remove_urls_emails=False)
    pieces = ["a" * 200, "b" * 200, "c" * 200]  # 50 tokens each
    assert chunk("###".join(pieces), plan) == [pieces[0] + "\n" + pieces[1], pieces[2]]


def test_long_pieces_are_cut_at_sentences_then_hard() -> None:
    plan = ChunkPlan.of(1, "\n", 100, False, False)
    sentence = "word " * 60 + "end."  # ~76 tokens
    chunks = chunk(f"{sentence} {sentence}", plan)
    assert len(chunks) == 2 and all(estimate_tokens(c) <= 100 for c in chunks)
    cjk = chunk("长" * 450, plan)
    assert [len(c) for c in cjk] == [100, 100, 100, 100, 50]


def test_cleaning_rules_as_the_sdks_define_them() -> None:
    text = "Mail  me at a.b@example.com\t or see https://example.com/x?y=1 \n\n\n next"
    both = ChunkPlan.of(1, "|", 800, remove_extra_spaces=True, remove_urls_emails=True)
    assert chunk(text, both) == ["Mail me at or see \n next"]
    neither = ChunkPlan.of(1, "|", 800, remove_extra_spaces=False, remove_urls_emails=False)
    assert chunk(text, neither) == [text.strip()]


def test_automatic_strategy_and_escaped_separators() -> None:
    assert ChunkPlan.of(0, "ignored", 5, False, True) == ChunkPlan("\n", 800, True, False)
    assert ChunkPlan.of(1, "\\n\\n", 300, False, False).separator == "\n\n"


def test_segmentation_indexes_english_words_and_chinese_bigrams() -> None:
    assert search_text("Hello, 长城很长! OK") == "hello 长城 城很 很长 ok"
    assert query_terms("What is the 长城?") == ["长城"]
    assert query_terms("the what") == ["the", "what"]  # only stop words: keep them
    assert fts5_query(["a", "长城"]) == '"a" OR "长城"'
    assert fts5_query(["a", "b"], every=True) == '"a" AND "b"'
    assert tsquery(["a", "b"]) == "'a' | 'b'"


def test_jobs_round_trip_and_malformed_ones_are_refused() -> None:
    assert decode_job(encode_job(42)) == 42
    for bad in (b"", b"{}", b'{"document_id": "1"}', b'{"document_id": -1}', b"[1]"):
        with pytest.raises(ValueError):
            decode_job(bad)


class FakeKnowledge:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    async def FailIngestion(self, request: kpb.FailIngestionRequest) -> kpb.Document:
        self.calls.append(("FailIngestion", request))
        return kpb.Document(id=request.document_id, status=9)

    async def StartIngestion(self, request: kpb.StartIngestionRequest) -> kpb.Document:
        self.calls.append(("StartIngestion", request))
        raise AssertionError("a job past its attempts must not be tried again")


async def test_a_job_whose_workers_died_max_attempts_times_is_failed_not_retried() -> None:
    fake = FakeKnowledge()
    deps = IngestionDeps(
        knowledge=fake,  # type: ignore[arg-type]
        js=None,  # type: ignore[arg-type]
        embeddings=None,
        web_limits=WebLimits(1.0, 10, 0),
        max_document_bytes=10,
        max_chunks=10,
    )
    outcome = await ingest(deps, 7, delivery=MAX_ATTEMPTS + 1)
    assert outcome.status == "failed"
    [(name, request)] = fake.calls
    assert name == "FailIngestion" and request.document_id == 7
    assert f"did not finish in {MAX_ATTEMPTS} attempts" in request.reason


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:9/", "127.0.0.1 is a loopback address"),
        ("http://[::1]:9/", "::1 is a loopback address"),
        ("http://10.1.2.3/", "10.1.2.3 is a private address"),
        ("file:///etc/passwd", "only http and https"),
    ],
)
async def test_web_pages_on_private_addresses_are_refused(url: str, reason: str) -> None:
    with pytest.raises(WebPageError, match=re.escape(reason)):
        await fetch_web_page(url, WebLimits(1.0, 100, 0))


async def test_allowed_networks_open_a_private_range() -> None:
    limits = WebLimits(1.0, 100, 0, (ipaddress.ip_network("127.0.0.0/8"),))
    # Allowed, so the refusal is the connection's, not the address check's.
    with pytest.raises(WebPageError, match=re.escape("127.0.0.1:9/")):
        await fetch_web_page("http://127.0.0.1:9/", limits)
