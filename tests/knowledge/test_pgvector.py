"""The semantic-search paths side by side: pgvector in PostgreSQL and brute force in the
registry find the same chunks with the same scores, and start-up picks pgvector where the
`vector` extension exists (these tests skip, saying why, where it does not)."""

from __future__ import annotations

import array
import logging
import math
import random
import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from psycopg import sql

from cozeplus.ids import IdGenerator
from cozeplus.knowledge_jobs import SOURCE_WEB_PAGE
from services.registry.database import Database
from services.registry.knowledge import ChunkStrategy, KnowledgeService, NewChunk, NewDocument
from services.registry.knowledge_search import SEMANTIC, KnowledgeSearch
from services.registry.knowledge_vectors import (
    BruteForceVectors,
    ChunkVectors,
    PgVectors,
    open_chunk_vectors,
)
from services.registry.tables import CHUNK_VECTOR_TABLE
from tests.knowledge.pgvector_support import pgvector_missing
from tests.knowledge.test_stalled_documents import Queue
from tests.registry.conftest import POSTGRES_URL, fresh_postgres_database

OWNER = 42
DIMENSIONS = 8


@pytest.fixture
def postgres() -> Iterator[Database]:
    reason = pgvector_missing(POSTGRES_URL)
    if reason:
        pytest.skip(reason)
    with fresh_postgres_database(POSTGRES_URL) as url:
        db = Database(url)
        db.upgrade_to_head()
        yield db
        db.close()


def blob(values: list[float]) -> bytes:
    return array.array("f", values).tobytes()


async def ingest(
    service: KnowledgeService, dataset_id: int, embeddings: list[list[float]]
) -> list[int]:
    """One document per embedding; returns the document ids."""
    documents = await service.create_documents(
        owner_id=OWNER,
        dataset_id=dataset_id,
        documents=[
            NewDocument(
                name=f"doc {i}",
                source_type=SOURCE_WEB_PAGE,
                file_type="html",
                web_url="https://e.com/",
            )
            for i in range(len(embeddings))
        ],
        chunk_strategy=ChunkStrategy(),
        format_type=0,
    )
    for document, embedding in zip(documents, embeddings, strict=True):
        await service.start_ingestion(document_id=document.id)
        await service.complete_ingestion(
            document_id=document.id,
            chunks=[NewChunk(f"chunk of {document.name}", blob(embedding))],
            char_count=10,
            size=10,
            embedding_model="toy",
        )
    return [d.id for d in documents]


def searcher(database: Database, query: list[float], vectors: ChunkVectors) -> KnowledgeSearch:
    async def embed(_text: str) -> list[float]:
        return query

    return KnowledgeSearch(database, embed, vectors)


async def semantic(search: KnowledgeSearch, dataset_id: int) -> list[tuple[int, float]]:
    result = await search.search(
        owner_id=OWNER, dataset_ids=[dataset_id], query="q", top_k=10, min_score=0, strategy=0
    )
    assert result.strategy == SEMANTIC
    return [(h.chunk_id, h.score) for h in result.hits]


async def test_pgvector_is_used_when_the_extension_exists(
    postgres: Database, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="services.registry.knowledge_vectors"):
        vectors = await open_chunk_vectors(postgres)
    assert isinstance(vectors, PgVectors)
    assert "semantic search: pgvector" in caplog.text


async def test_sqlite_uses_brute_force_and_says_why(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    database = Database(f"sqlite:///{tmp_path / 'registry.db'}")
    try:
        database.upgrade_to_head()
        with caplog.at_level(logging.INFO, logger="services.registry.knowledge_vectors"):
            vectors = await open_chunk_vectors(database)
    finally:
        database.close()
    assert isinstance(vectors, BruteForceVectors)
    assert "semantic search: brute force in the registry (SQLite; sqlite-vec" in caplog.text


async def test_both_paths_find_the_same_chunks_with_the_same_scores(postgres: Database) -> None:
    rng = random.Random(7)
    pg = await open_chunk_vectors(postgres)
    service = KnowledgeService(postgres, IdGenerator(1), Queue(), pg)
    dataset = await service.create_dataset(
        owner_id=OWNER, space_id=0, name="kb", description="", format_type=0, icon_file_id=0
    )
    embeddings = [[rng.uniform(-1, 1) for _ in range(DIMENSIONS)] for _ in range(30)]
    # Another model's dimension and a chunk without an embedding: neither path ranks them.
    embeddings += [[1.0] * (DIMENSIONS + 1), []]
    documents = await ingest(service, dataset.record.id, embeddings)
    query = [rng.uniform(-1, 1) for _ in range(DIMENSIONS)]

    by_pgvector = await semantic(searcher(postgres, query, pg), dataset.record.id)
    by_brute_force = await semantic(
        searcher(postgres, query, BruteForceVectors()), dataset.record.id
    )
    assert [c for c, _ in by_pgvector] == [c for c, _ in by_brute_force]
    assert len(by_pgvector) == 10
    for (_, a), (_, b) in zip(by_pgvector, by_brute_force, strict=True):
        assert math.isclose(a, b, abs_tol=1e-6)

    # Scores are cosines: the best one, recomputed here.
    def cosine(values: list[float]) -> float:
        dot = sum(x * y for x, y in zip(values, query, strict=True))
        return dot / (math.hypot(*values) * math.hypot(*query))

    best = max(cosine(e) for e in embeddings[:30])
    assert math.isclose(by_pgvector[0][1], max(best, 0.0), abs_tol=1e-6)

    # Deleting documents deletes their vectors (the table cascades from the chunks).
    await service.delete_documents(owner_id=OWNER, document_ids=documents[:30])
    assert await semantic(searcher(postgres, query, pg), dataset.record.id) == []
    remaining = await postgres.read(
        lambda s: s.execute(sa.text(f"SELECT count(*) FROM {CHUNK_VECTOR_TABLE}")).scalar_one()
    )
    assert remaining == 1  # the other dimension's chunk


async def test_chunks_stored_before_the_extension_are_copied_in_at_start_up(
    postgres: Database,
) -> None:
    # Ingested by a registry that ran brute force (no vector table yet).
    service = KnowledgeService(postgres, IdGenerator(1), Queue(), BruteForceVectors())
    dataset = await service.create_dataset(
        owner_id=OWNER, space_id=0, name="kb", description="", format_type=0, icon_file_id=0
    )
    await ingest(service, dataset.record.id, [[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])

    pg = await open_chunk_vectors(postgres)
    assert isinstance(pg, PgVectors)
    found = await semantic(searcher(postgres, [1.0, 0.0], pg), dataset.record.id)
    assert [round(score, 6) for _, score in found] == [1.0, 0.6, 0.0]
    # A second start-up copies nothing twice.
    await open_chunk_vectors(postgres)
    assert await semantic(searcher(postgres, [1.0, 0.0], pg), dataset.record.id) == found


async def test_postgres_without_the_right_to_create_the_extension_uses_brute_force(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A role that may not create the extension (or a server without it) falls back to brute
    force and logs the server's reason; semantic search still answers."""
    role = f"cozeplus_plain_{secrets.token_hex(4)}"
    with fresh_postgres_database(POSTGRES_URL) as url:
        admin = sa.make_url(url).set(drivername="postgresql")
        with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as c:
            c.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
            c.execute(
                sql.SQL("GRANT ALL ON DATABASE {} TO {}; GRANT ALL ON SCHEMA public TO {}").format(
                    sql.Identifier(str(admin.database)), sql.Identifier(role), sql.Identifier(role)
                )
            )
        try:
            database = Database(admin.set(username=role).render_as_string(hide_password=False))
            try:
                database.upgrade_to_head()
                with caplog.at_level(logging.INFO, logger="services.registry.knowledge_vectors"):
                    vectors = await open_chunk_vectors(database)
                assert isinstance(vectors, BruteForceVectors)
                assert "brute force in the registry (PostgreSQL without pgvector: " in caplog.text
                service = KnowledgeService(database, IdGenerator(1), Queue(), vectors)
                dataset = await service.create_dataset(
                    owner_id=OWNER,
                    space_id=0,
                    name="kb",
                    description="",
                    format_type=0,
                    icon_file_id=0,
                )
                await ingest(service, dataset.record.id, [[0.0, 1.0], [1.0, 0.0]])
                found = await semantic(searcher(database, [1.0, 0.0], vectors), dataset.record.id)
                assert [round(score, 6) for _, score in found] == [1.0, 0.0]
            finally:
                database.close()
        finally:
            with psycopg.connect(POSTGRES_URL, autocommit=True) as c:
                c.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                        sql.Identifier(str(admin.database))
                    )
                )
                c.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
