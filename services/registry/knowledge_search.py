"""Retrieval over a caller's datasets: full-text, vector and hybrid.

- Full-text (search_strategy 20, and the fallback of the others when no embedding model is
  configured): SQLite FTS5 ranked by bm25, PostgreSQL `to_tsvector('simple')` ranked by
  ts_rank_cd, both over the same segmented text (knowledge_text.py), so English words and
  Chinese bigrams are found alike. Chunks holding every term of the query come first; when
  they are fewer than asked for, chunks holding any of them follow.
  Score: the backend's relevance r mapped to r / (1 + r), in (0, 1).
- Semantic (0): cosine similarity between the query's embedding and each chunk's, by
  pgvector in PostgreSQL where the extension exists, else brute force in the registry
  (knowledge_vectors.py). Score: the cosine, clamped to [0, 1].
- Hybrid (1): reciprocal rank fusion of both lists (k = 60). Score: the fused value divided
  by its maximum (a chunk first in both lists scores 1).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace

import sqlalchemy as sa
from sqlmodel import Session, col, select

from services.registry.database import Database
from services.registry.errors import InvalidArgument
from services.registry.knowledge_text import fts5_query, query_terms, tsquery
from services.registry.knowledge_vectors import BruteForceVectors, ChunkVectors
from services.registry.tables import CHUNK_FTS_TABLE, ChunkRecord, DatasetRecord, DocumentRecord

SEMANTIC = 0
HYBRID = 1
FULL_TEXT = 20
STRATEGIES = (SEMANTIC, HYBRID, FULL_TEXT)
DEFAULT_TOP_K = 5
MAX_TOP_K = 50
MAX_DATASETS = 20
MAX_QUERY_CHARS = 2000
RRF_K = 60
# Each list fused by hybrid search is this many times top_k long.
CANDIDATE_FACTOR = 4

# Text in, vector out; None when no embedding model is configured.
QueryEmbedder = Callable[[str], Awaitable[list[float]]]


@dataclass(frozen=True)
class Hit:
    chunk_id: int
    document_id: int
    dataset_id: int
    document_name: str
    content: str
    score: float


@dataclass(frozen=True)
class SearchResult:
    hits: list[Hit]
    strategy: int


class KnowledgeSearch:
    def __init__(
        self,
        database: Database,
        embedder: QueryEmbedder | None,
        vectors: ChunkVectors | None = None,
    ) -> None:
        self._db = database
        self._embedder = embedder
        self._vectors = vectors or BruteForceVectors()

    async def search(
        self,
        *,
        owner_id: int,
        dataset_ids: Sequence[int],
        query: str,
        top_k: int,
        min_score: float,
        strategy: int,
    ) -> SearchResult:
        if owner_id <= 0:
            raise InvalidArgument("owner_id is required")
        if strategy not in STRATEGIES:
            raise InvalidArgument("strategy must be 0 (semantic), 1 (hybrid) or 20 (full-text)")
        if not query.strip():
            raise InvalidArgument("query is required")
        if len(query) > MAX_QUERY_CHARS:
            raise InvalidArgument(f"query must be at most {MAX_QUERY_CHARS} characters")
        if len(dataset_ids) > MAX_DATASETS:
            raise InvalidArgument(f"at most {MAX_DATASETS} datasets per search")
        if not 0 <= min_score <= 1:
            raise InvalidArgument("min_score must be between 0 and 1")
        top_k = min(top_k or DEFAULT_TOP_K, MAX_TOP_K)
        if top_k < 0:
            raise InvalidArgument("top_k must not be negative")
        if self._embedder is None:
            strategy = FULL_TEXT
        datasets = await self._db.read(lambda s: _owned_datasets(s, owner_id, dataset_ids))
        if not datasets:
            return SearchResult([], strategy)

        if strategy == FULL_TEXT:
            hits = await self._full_text(datasets, query, top_k)
        else:
            assert self._embedder is not None
            vector = await self._embedder(query)
            if strategy == SEMANTIC:
                hits = await self._semantic(datasets, vector, top_k)
            else:
                candidates = top_k * CANDIDATE_FACTOR
                text_hits = await self._full_text(datasets, query, candidates)
                vector_hits = await self._semantic(datasets, vector, candidates)
                hits = _fuse([text_hits, vector_hits])[:top_k]
        return SearchResult([h for h in hits if h.score >= min_score], strategy)

    async def _full_text(self, datasets: list[int], query: str, limit: int) -> list[Hit]:
        """Chunks with every term first, then, if those are too few, chunks with any: a
        query of common words then ranks a few hundred matches instead of most chunks."""
        words = query_terms(query)
        if not words:
            return []
        hits = await self._db.read(lambda s: self._match(s, datasets, words, limit, every=True))
        if len(words) > 1 and len(hits) < limit:
            seen = {h.chunk_id for h in hits}
            more = await self._db.read(
                lambda s: self._match(s, datasets, words, limit, every=False)
            )
            hits.extend(h for h in more if h.chunk_id not in seen)
        return hits[:limit]

    def _match(
        self, session: Session, datasets: list[int], words: list[str], limit: int, *, every: bool
    ) -> list[Hit]:
        if self._db.backend == "sqlite":
            statement = sa.text(
                f"SELECT c.id, c.document_id, c.dataset_id, d.name, c.content, "
                f"-bm25({CHUNK_FTS_TABLE}) AS relevance "
                f"FROM {CHUNK_FTS_TABLE} "
                f"JOIN knowledge_chunks c ON c.id = {CHUNK_FTS_TABLE}.rowid "
                "JOIN knowledge_documents d ON d.id = c.document_id "
                f"WHERE {CHUNK_FTS_TABLE} MATCH :match AND c.dataset_id IN :datasets "
                "ORDER BY relevance DESC LIMIT :limit"
            )
            match = fts5_query(words, every=every)
        else:
            statement = sa.text(
                "SELECT c.id, c.document_id, c.dataset_id, d.name, c.content, "
                "ts_rank_cd(to_tsvector('simple'::regconfig, c.search_text), q) "
                "AS relevance "
                "FROM knowledge_chunks c "
                "JOIN knowledge_documents d ON d.id = c.document_id, "
                "to_tsquery('simple'::regconfig, :match) q "
                "WHERE to_tsvector('simple'::regconfig, c.search_text) @@ q "
                "AND c.dataset_id IN :datasets "
                "ORDER BY relevance DESC, c.id LIMIT :limit"
            )
            match = tsquery(words, every=every)
        statement = statement.bindparams(sa.bindparam("datasets", expanding=True))
        rows = session.execute(
            statement, {"match": match, "datasets": datasets, "limit": limit}
        ).all()
        return [
            Hit(
                chunk_id=row[0],
                document_id=row[1],
                dataset_id=row[2],
                document_name=row[3],
                content=row[4],
                score=_squash(float(row[5])),
            )
            for row in rows
        ]

    async def _semantic(self, datasets: list[int], vector: list[float], limit: int) -> list[Hit]:
        def work(session: Session) -> list[Hit]:
            best = self._vectors.nearest(session, datasets, vector, limit)
            if not best:
                return []
            details = {
                row[0]: (row[1], row[2])
                for row in session.execute(
                    sa.select(ChunkRecord.id, ChunkRecord.content, DocumentRecord.name)  # type: ignore[call-overload]
                    .join(DocumentRecord, DocumentRecord.id == ChunkRecord.document_id)
                    .where(col(ChunkRecord.id).in_([n.chunk_id for n in best]))
                ).all()
            }
            return [
                Hit(
                    chunk_id=n.chunk_id,
                    document_id=n.document_id,
                    dataset_id=n.dataset_id,
                    document_name=details[n.chunk_id][1],
                    content=details[n.chunk_id][0],
                    score=max(0.0, min(1.0, n.cosine)),
                )
                for n in best
                if n.chunk_id in details
            ]

        return await self._db.read(work)


def _owned_datasets(session: Session, owner_id: int, dataset_ids: Sequence[int]) -> list[int]:
    """The caller's datasets among those asked for; others are silently left out (a bot may
    still name a dataset its owner has since deleted)."""
    if not dataset_ids:
        return []
    return list(
        session.exec(
            select(DatasetRecord.id).where(
                col(DatasetRecord.id).in_(list(dataset_ids)), DatasetRecord.owner_id == owner_id
            )
        ).all()
    )


def _squash(relevance: float) -> float:
    relevance = max(relevance, 0.0)
    return relevance / (1.0 + relevance)


def _fuse(rankings: list[list[Hit]]) -> list[Hit]:
    fused: dict[int, float] = {}
    by_id: dict[int, Hit] = {}
    for ranking in rankings:
        for rank, hit in enumerate(ranking, start=1):
            fused[hit.chunk_id] = fused.get(hit.chunk_id, 0.0) + 1.0 / (RRF_K + rank)
            by_id.setdefault(hit.chunk_id, hit)
    best = len(rankings) / (RRF_K + 1)
    ordered = sorted(fused.items(), key=lambda item: (-item[1], item[0]))
    return [replace(by_id[chunk_id], score=value / best) for chunk_id, value in ordered]
