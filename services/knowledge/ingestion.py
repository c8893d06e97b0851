"""One document's ingestion, as explicit steps: claim it, fetch its bytes, parse them to
text, chunk the text, embed the chunks (when an embedding model is configured) and hand the
chunks to the registry, which indexes them.

A fault of the document (corrupt, empty, oversized, unreachable page) ends it as failed
with a reason the user sees. A fault of ours or of a dependency (registry or NATS down)
raises, so the job is redelivered and tried again.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import grpc
from nats.js.client import JetStreamContext

from cozeplus.embeddings import EmbeddingClient, EmbeddingError
from cozeplus.file_store import read_file
from cozeplus.knowledge_jobs import MAX_ATTEMPTS, SOURCE_WEB_PAGE
from cozeplus.rpc.v1 import knowledge_pb2 as kpb
from services.knowledge.chunking import ChunkPlan, chunk
from services.knowledge.parsing import ParseError, parse
from services.knowledge.web_page import WebLimits, WebPageError, fetch_web_page

if TYPE_CHECKING:
    from cozeplus.rpc.v1.knowledge_pb2_grpc import KnowledgeAsyncStub

# Below the registry's largest request (services/registry/main.py: 64 MiB).
MAX_INDEX_REQUEST_BYTES = 60 * 1024 * 1024

log = logging.getLogger("cozeplus.knowledge")


class DocumentFault(Exception):
    """The document cannot be ingested; `reason` becomes its status_descript."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class IngestionDeps:
    knowledge: KnowledgeAsyncStub
    js: JetStreamContext
    embeddings: EmbeddingClient | None
    web_limits: WebLimits
    max_document_bytes: int
    max_chunks: int


@dataclass(frozen=True)
class Outcome:
    document_id: int
    status: str  # "completed", "failed" or "skipped"
    reason: str = ""


async def ingest(deps: IngestionDeps, document_id: int, delivery: int) -> Outcome:
    if delivery > MAX_ATTEMPTS:
        # Every earlier delivery ended without an outcome: its worker died (killed, out of
        # memory) or the registry or NATS failed it.
        return await _fail(
            deps,
            document_id,
            f"processing did not finish in {MAX_ATTEMPTS} attempts (the worker stopped or "
            "a service was unavailable); upload the document again",
        )
    document = await _claim(deps, document_id)
    if document is None:
        return Outcome(document_id, "skipped")
    try:
        data = await _fetch(deps, document)
        text = await asyncio.to_thread(_parse, data, document.file_type or "html")
        chunks = _chunk(deps, document, text)
        vectors = await _embed(deps, chunks)
    except DocumentFault as fault:
        return await _fail(deps, document_id, fault.reason)
    request = kpb.CompleteIngestionRequest(
        document_id=document_id,
        chunks=[
            kpb.NewChunk(content=c, embedding=v)
            for c, v in zip(chunks, vectors or [[]] * len(chunks), strict=True)
        ],
        char_count=len(text),
        size=len(data),
        embedding_model=deps.embeddings.model_id if deps.embeddings and vectors else "",
    )
    if request.ByteSize() > MAX_INDEX_REQUEST_BYTES:
        return await _fail(
            deps,
            document_id,
            f"the document's chunks are {request.ByteSize()} bytes; at most "
            f"{MAX_INDEX_REQUEST_BYTES} bytes can be indexed at once",
        )
    try:
        await deps.knowledge.CompleteIngestion(request)
    except grpc.aio.AioRpcError as err:
        if err.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION):
            # Deleted (or ended) while we worked: nothing to index.
            log.info("document %d: %s; dropping its chunks", document_id, err.details())
            return Outcome(document_id, "skipped")
        raise
    log.info("document %d: %d chunks", document_id, len(chunks))
    return Outcome(document_id, "completed")


async def _claim(deps: IngestionDeps, document_id: int) -> kpb.Document | None:
    """The document, marked as started; None when it is gone or already ended."""
    try:
        return await deps.knowledge.StartIngestion(
            kpb.StartIngestionRequest(document_id=document_id)
        )
    except grpc.aio.AioRpcError as err:
        if err.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION):
            log.info("document %d: %s; dropping its job", document_id, err.details())
            return None
        raise


async def _fetch(deps: IngestionDeps, document: kpb.Document) -> bytes:
    if document.source_type == SOURCE_WEB_PAGE:
        limits = deps.web_limits
        try:
            return await fetch_web_page(document.web_url, limits)
        except WebPageError as exc:
            raise DocumentFault(f"could not fetch {document.web_url}: {exc}") from exc
    try:
        file = await deps.knowledge.GetFile(
            kpb.FileRef(owner_id=document.owner_id, file_id=document.source_file_id)
        )
    except grpc.aio.AioRpcError as err:
        if err.code() == grpc.StatusCode.NOT_FOUND:
            raise DocumentFault(f"file {document.source_file_id} no longer exists") from err
        raise
    if file.bytes > deps.max_document_bytes:
        raise DocumentFault(_too_large(file.bytes, deps.max_document_bytes))
    data = await read_file(deps.js, file.object_name)
    if len(data) > deps.max_document_bytes:
        raise DocumentFault(_too_large(len(data), deps.max_document_bytes))
    return data


def _too_large(size: int, limit: int) -> str:
    return f"the document is {size} bytes; the limit is {limit} bytes"


def _parse(data: bytes, file_type: str) -> str:
    if not data:
        raise DocumentFault("the document is empty")
    try:
        text = parse(data, file_type)
    except ParseError as exc:
        raise DocumentFault(str(exc)) from exc
    if not text.strip():
        raise DocumentFault(f"the {file_type} document contains no text")
    return text


def _chunk(deps: IngestionDeps, document: kpb.Document, text: str) -> list[str]:
    strategy = document.chunk_strategy
    plan = ChunkPlan.of(
        strategy.chunk_type,
        strategy.separator,
        strategy.max_tokens,
        strategy.remove_extra_spaces,
        strategy.remove_urls_emails,
    )
    chunks = chunk(text, plan)
    if not chunks:
        raise DocumentFault("the document contains no text once cleaned")
    if len(chunks) > deps.max_chunks:
        raise DocumentFault(
            f"the document makes {len(chunks)} chunks; the limit is {deps.max_chunks}"
        )
    return chunks


async def _embed(deps: IngestionDeps, chunks: list[str]) -> list[list[float]] | None:
    if deps.embeddings is None:
        return None
    try:
        return await deps.embeddings.embed(chunks)
    except EmbeddingError:
        # The model's outage is not the document's fault: let the job be retried.
        log.exception("embedding failed; the job will be retried")
        raise


async def _fail(deps: IngestionDeps, document_id: int, reason: str) -> Outcome:
    try:
        await deps.knowledge.FailIngestion(
            kpb.FailIngestionRequest(document_id=document_id, reason=reason)
        )
    except grpc.aio.AioRpcError as err:
        if err.code() not in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION):
            raise
    log.info("document %d failed: %s", document_id, reason)
    return Outcome(document_id, "failed", reason)
