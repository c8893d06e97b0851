"""Semantic search latency: pgvector in PostgreSQL against brute force in the registry.

In process (no gRPC, no embedding server: the query vector is given), over one dataset of
C chunks (default 20,000) with random D-dimensional embeddings (default 384), stored through
KnowledgeService.complete_ingestion in documents of 1,000 chunks. Then Q semantic searches
(top 5) per path, one at a time: p50/p99. Paths: SQLite brute force, PostgreSQL brute force,
and PostgreSQL pgvector when the server has the `vector` extension.

.venv/bin/python benchmarks/vector_search.py [--chunks 20000 --dims 384 --queries 20]
"""

from __future__ import annotations

import argparse
import array
import asyncio
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

import psycopg
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

OWNER = 7
PER_DOCUMENT = 1000
SERVER = os.environ.get("COZEPLUS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


class Queue:
    async def enqueue(self, document_ids: object) -> None:
        return None


async def fill(database: Database, vectors: ChunkVectors, chunks: int, dims: int) -> int:
    rng = random.Random(1)
    service = KnowledgeService(database, IdGenerator(3), Queue(), vectors)
    dataset = await service.create_dataset(
        owner_id=OWNER, space_id=0, name="bench", description="", format_type=0, icon_file_id=0
    )
    for start in range(0, chunks, PER_DOCUMENT):
        count = min(PER_DOCUMENT, chunks - start)
        (document,) = await service.create_documents(
            owner_id=OWNER,
            dataset_id=dataset.record.id,
            documents=[
                NewDocument(
                    name=f"doc {start}",
                    source_type=SOURCE_WEB_PAGE,
                    file_type="html",
                    web_url="https://example.com/",
                )
            ],
            chunk_strategy=ChunkStrategy(),
            format_type=0,
        )
        await service.start_ingestion(document_id=document.id)
        await service.complete_ingestion(
            document_id=document.id,
            chunks=[
                NewChunk(
                    f"chunk {start + i}",
                    array.array("f", [rng.gauss(0, 1) for _ in range(dims)]).tobytes(),
                )
                for i in range(count)
            ],
            char_count=count,
            size=count,
            embedding_model="bench",
        )
    return dataset.record.id


async def time_searches(
    database: Database, vectors: ChunkVectors, dataset_id: int, dims: int, queries: int
) -> tuple[float, float]:
    rng = random.Random(2)
    query: list[float] = []

    async def embed(_text: str) -> list[float]:
        return query

    search = KnowledgeSearch(database, embed, vectors)
    took = []
    for _ in range(queries):
        query = [rng.gauss(0, 1) for _ in range(dims)]
        started = time.perf_counter()
        result = await search.search(
            owner_id=OWNER,
            dataset_ids=[dataset_id],
            query="q",
            top_k=5,
            min_score=0,
            strategy=SEMANTIC,
        )
        took.append(time.perf_counter() - started)
        assert len(result.hits) == 5
    took.sort()
    return statistics.median(took) * 1000, took[min(len(took) - 1, int(len(took) * 0.99))] * 1000


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--chunks", type=int, default=20_000)
    parser.add_argument("--dims", type=int, default=384)
    parser.add_argument("--queries", type=int, default=20)
    args = parser.parse_args()
    print(f"{args.chunks} chunks, {args.dims} dimensions, {args.queries} queries, top 5")

    with tempfile.TemporaryDirectory() as tmp:
        sqlite = Database(f"sqlite:///{Path(tmp) / 'bench.db'}")
        sqlite.upgrade_to_head()
        dataset = await fill(sqlite, BruteForceVectors(), args.chunks, args.dims)
        p50, p99 = await time_searches(
            sqlite, BruteForceVectors(), dataset, args.dims, args.queries
        )
        print(f"SQLite, brute force:      p50 {p50:8.1f} ms  p99 {p99:8.1f} ms")
        sqlite.close()

    name = f"cozeplus_vector_bench_{os.getpid()}"
    with psycopg.connect(SERVER, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            url = SERVER.rsplit("/", 1)[0] + "/" + name
            pg = Database(url)
            pg.upgrade_to_head()
            vectors = await open_chunk_vectors(pg)
            dataset = await fill(pg, vectors, args.chunks, args.dims)
            p50, p99 = await time_searches(
                pg, BruteForceVectors(), dataset, args.dims, args.queries
            )
            print(f"PostgreSQL, brute force:  p50 {p50:8.1f} ms  p99 {p99:8.1f} ms")
            if isinstance(vectors, PgVectors):
                p50, p99 = await time_searches(pg, vectors, dataset, args.dims, args.queries)
                print(f"PostgreSQL, pgvector:     p50 {p50:8.1f} ms  p99 {p99:8.1f} ms")
            else:
                print("PostgreSQL, pgvector:     skipped (no vector extension on the server)")
            pg.close()
        finally:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


if __name__ == "__main__":
    asyncio.run(main())
