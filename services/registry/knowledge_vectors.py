"""Where chunk embeddings are compared: pgvector in PostgreSQL, or brute force here.

Every chunk keeps its float32 blob in `knowledge_chunks.embedding` (the source of truth).
When the registry runs on PostgreSQL and the `vector` extension can be created (or already
exists), the embeddings are also kept in `knowledge_chunk_vectors` as pgvector values and
semantic search ranks them in SQL with the `<=>` cosine distance. Otherwise (SQLite, or
PostgreSQL without the extension) the registry reads the searched datasets' blobs and
computes the cosines itself. Both give the same hits with score = cosine similarity.

The table is made at start-up, not by a migration, because it needs the extension, which an
operator may install after the schema exists. It has an untyped `vector` column, since each
embedding model has its own dimensions, and cascades from `knowledge_chunks`, so every path
that deletes chunks deletes their vectors. Chunks stored before the extension was available
are copied in at start-up. The search is exact (a scan of the searched datasets' vectors,
computed in C); an HNSW index is left out: it needs a fixed dimension per index, and an
approximate index filtered by dataset returns fewer than top_k hits on pgvector < 0.8.

sqlite-vec is not used: it is a loadable extension, and this Python's `sqlite3` is built
without extension loading (`sqlite3.Connection.enable_load_extension` is missing).
"""

from __future__ import annotations

import array
import asyncio
import logging
import math
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import sqlalchemy as sa
from sqlmodel import Session, col, select

from services.registry.database import Database
from services.registry.tables import CHUNK_VECTOR_TABLE, ChunkRecord

log = logging.getLogger(__name__)

# Any constant works if every registry uses it: replicas starting together create the table
# and copy old chunks one after another.
VECTOR_SETUP_LOCK_KEY = 0x636F7A6576656374  # "cozevect"
BACKFILL_BATCH = 500


@dataclass(frozen=True)
class Nearest:
    cosine: float
    chunk_id: int
    document_id: int
    dataset_id: int


@dataclass(frozen=True)
class ChunkVector:
    chunk_id: int
    dataset_id: int
    embedding: bytes  # float32, as stored in knowledge_chunks


class ChunkVectors(Protocol):
    name: str

    def add(self, session: Session, vectors: Sequence[ChunkVector]) -> None:
        """Called in the transaction that inserts the chunks."""

    def nearest(
        self, session: Session, datasets: list[int], vector: list[float], limit: int
    ) -> list[Nearest]:
        """The `limit` chunks of `datasets` closest to `vector` (same dimension only), best
        first, ties by chunk id."""


class BruteForceVectors:
    """Reads every embedded chunk of the searched datasets: fine for thousands of chunks."""

    name = "brute force"

    def add(self, session: Session, vectors: Sequence[ChunkVector]) -> None:
        return None  # the blob in knowledge_chunks is all it reads

    def nearest(
        self, session: Session, datasets: list[int], vector: list[float], limit: int
    ) -> list[Nearest]:
        query_norm = math.sqrt(sum(x * x for x in vector)) or 1.0
        rows = session.exec(
            select(
                ChunkRecord.id,
                ChunkRecord.document_id,
                ChunkRecord.dataset_id,
                ChunkRecord.embedding,
            ).where(col(ChunkRecord.dataset_id).in_(datasets))
        ).all()
        scored: list[Nearest] = []
        for chunk_id, document_id, dataset_id, blob in rows:
            if not blob:
                continue
            values = array.array("f")
            values.frombytes(blob)
            if len(values) != len(vector):
                continue
            norm = math.sqrt(sum(x * x for x in values)) or 1.0
            cosine = sum(a * b for a, b in zip(values, vector, strict=True)) / (norm * query_norm)
            scored.append(Nearest(cosine, chunk_id, document_id, dataset_id))
        scored.sort(key=lambda n: (-n.cosine, n.chunk_id))
        return scored[:limit]


class PgVectors:
    """Vectors in `knowledge_chunk_vectors`, ranked by pgvector's `<=>` (1 - cosine)."""

    name = "pgvector"

    def add(self, session: Session, vectors: Sequence[ChunkVector]) -> None:
        rows = [_vector_row(v) for v in vectors if v.embedding]
        if rows:
            session.execute(
                sa.text(
                    f"INSERT INTO {CHUNK_VECTOR_TABLE} (chunk_id, dataset_id, dims, embedding) "
                    "VALUES (:chunk_id, :dataset_id, :dims, CAST(:embedding AS vector))"
                ),
                rows,
            )

    def nearest(
        self, session: Session, datasets: list[int], vector: list[float], limit: int
    ) -> list[Nearest]:
        statement = sa.text(
            "SELECT v.chunk_id, c.document_id, v.dataset_id, "
            "v.embedding <=> CAST(:query AS vector) AS distance "
            f"FROM {CHUNK_VECTOR_TABLE} v JOIN knowledge_chunks c ON c.id = v.chunk_id "
            "WHERE v.dataset_id IN :datasets AND v.dims = :dims "
            "ORDER BY distance, v.chunk_id LIMIT :limit"
        ).bindparams(sa.bindparam("datasets", expanding=True))
        rows = session.execute(
            statement,
            {
                "query": _vector_text(vector),
                "datasets": datasets,
                "dims": len(vector),
                "limit": limit,
            },
        ).all()
        # A zero vector has no direction: pgvector says NaN, brute force says 0.
        return [
            Nearest(0.0 if math.isnan(row[3]) else 1.0 - float(row[3]), row[0], row[1], row[2])
            for row in rows
        ]


async def open_chunk_vectors(database: Database) -> ChunkVectors:
    """Chooses the path once, at start-up, and logs which one and why."""
    if database.backend != "postgresql":
        loadable = hasattr(sqlite3.Connection, "enable_load_extension")
        log.info(
            "semantic search: brute force in the registry (SQLite; sqlite-vec not used: %s)",
            "this Python's sqlite3 can load extensions, but sqlite-vec is not wired in"
            if loadable
            else "this Python's sqlite3 cannot load extensions",
        )
        return BruteForceVectors()
    try:
        # Not database.write: that reports a failure as the database being down.
        version = await asyncio.to_thread(_in_transaction, database, _create_extension)
    except sa.exc.DBAPIError as exc:
        log.info(
            "semantic search: brute force in the registry (PostgreSQL without pgvector: %s)",
            str(exc.orig).strip().splitlines()[0],
        )
        return BruteForceVectors()
    await database.write(_create_vector_table)
    copied = 0
    while batch := await database.write(_copy_missing_vectors):
        copied += batch
    log.info(
        "semantic search: pgvector %s in PostgreSQL (%d earlier chunks copied in)",
        version,
        copied,
    )
    return PgVectors()


def _in_transaction(database: Database, work: Callable[[Session], str]) -> str:
    with Session(database.engine) as session, session.begin():
        return work(session)


def _create_extension(session: Session) -> str:
    # Two registries creating it at once would collide on pg_extension's unique name.
    session.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": VECTOR_SETUP_LOCK_KEY})
    session.execute(sa.text("CREATE EXTENSION IF NOT EXISTS vector"))
    return str(
        session.execute(
            sa.text("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        ).scalar_one()
    )


def _create_vector_table(session: Session) -> None:
    session.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": VECTOR_SETUP_LOCK_KEY})
    session.execute(
        sa.text(
            f"CREATE TABLE IF NOT EXISTS {CHUNK_VECTOR_TABLE} ("
            "chunk_id BIGINT PRIMARY KEY REFERENCES knowledge_chunks (id) ON DELETE CASCADE, "
            "dataset_id BIGINT NOT NULL, "
            "dims INTEGER NOT NULL, "
            "embedding vector NOT NULL)"
        )
    )
    session.execute(
        sa.text(
            f"CREATE INDEX IF NOT EXISTS ix_{CHUNK_VECTOR_TABLE}_dataset_id "
            f"ON {CHUNK_VECTOR_TABLE} (dataset_id, dims)"
        )
    )


def _copy_missing_vectors(session: Session) -> int:
    """One batch of embedded chunks that have no vector yet (stored before the extension
    existed); the lock keeps two registries from copying the same chunks."""
    session.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": VECTOR_SETUP_LOCK_KEY})
    rows = session.execute(
        sa.text(
            "SELECT c.id, c.dataset_id, c.embedding FROM knowledge_chunks c "
            "WHERE length(c.embedding) > 0 AND NOT EXISTS "
            f"(SELECT 1 FROM {CHUNK_VECTOR_TABLE} v WHERE v.chunk_id = c.id) "
            "ORDER BY c.id LIMIT :limit"
        ),
        {"limit": BACKFILL_BATCH},
    ).all()
    PgVectors().add(session, [ChunkVector(row[0], row[1], bytes(row[2])) for row in rows])
    return len(rows)


def _vector_row(vector: ChunkVector) -> dict[str, object]:
    values = array.array("f")
    values.frombytes(vector.embedding)
    return {
        "chunk_id": vector.chunk_id,
        "dataset_id": vector.dataset_id,
        "dims": len(values),
        "embedding": _vector_text(values),
    }


def _vector_text(values: Sequence[float]) -> str:
    # repr of a float32 widened to a double reads back as that same float32.
    return "[" + ",".join(repr(float(x)) for x in values) + "]"
