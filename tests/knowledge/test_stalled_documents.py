"""The registry fails documents stuck in processing (their job lost) with a reason, and
leaves alone those a worker made progress on recently and those that ended. In process, on
SQLite and PostgreSQL; the sweep's clock is a parameter."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import Session, col

from cozeplus.ids import IdGenerator
from cozeplus.knowledge_jobs import DOCUMENT_COMPLETED, DOCUMENT_FAILED, SOURCE_WEB_PAGE
from services.registry.database import Database
from services.registry.knowledge import ChunkStrategy, KnowledgeService, NewChunk, NewDocument
from services.registry.tables import DocumentRecord
from tests.registry.conftest import POSTGRES_URL, fresh_postgres_database

OWNER = 42
STALLED_S = 3600.0


class Queue:
    async def enqueue(self, document_ids: Sequence[int]) -> None:
        return None


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "postgresql":
        with fresh_postgres_database(POSTGRES_URL) as url:
            db = Database(url)
            db.upgrade_to_head()
            yield db
            db.close()
    else:
        db = Database(f"sqlite:///{tmp_path / 'registry.db'}")
        db.upgrade_to_head()
        yield db
        db.close()


async def test_documents_processing_too_long_fail_with_a_reason(database: Database) -> None:
    service = KnowledgeService(database, IdGenerator(1), Queue())
    dataset = await service.create_dataset(
        owner_id=OWNER, space_id=0, name="kb", description="", format_type=0, icon_file_id=0
    )
    documents = await service.create_documents(
        owner_id=OWNER,
        dataset_id=dataset.record.id,
        documents=[
            NewDocument(
                name=f"page {i}",
                source_type=SOURCE_WEB_PAGE,
                file_type="html",
                web_url="https://e.com/",
            )
            for i in range(3)
        ],
        chunk_strategy=ChunkStrategy(),
        format_type=0,
    )
    lost, claimed, done = (d.id for d in documents)
    await service.start_ingestion(document_id=done)
    await service.complete_ingestion(
        document_id=done, chunks=[NewChunk("text")], char_count=4, size=4, embedding_model=""
    )
    now = time.time()
    # Every document was created two hours ago; a worker claimed `claimed` just now.
    two_hours_ago = int(now - 7200)

    def backdate(session: Session) -> None:
        session.execute(sa.update(DocumentRecord).values(updated_at=two_hours_ago))

    await database.write(backdate)
    await service.start_ingestion(document_id=claimed)

    assert await service.fail_stalled_documents(stalled_s=STALLED_S, now=now) == [lost]

    def statuses(session: Session) -> dict[int, tuple[int, str]]:
        rows = session.execute(
            sa.select(
                col(DocumentRecord.id), col(DocumentRecord.status), DocumentRecord.status_descript
            )
        )
        return {int(i): (int(s), str(d)) for i, s, d in rows}

    found = await database.read(statuses)
    assert found[lost][0] == DOCUMENT_FAILED
    assert "did not finish within 3600s" in found[lost][1]
    assert found[claimed] == (0, "")
    assert found[done][0] == DOCUMENT_COMPLETED
    # Failed once: a second sweep finds nothing; the claimed one fails when it stalls too.
    assert await service.fail_stalled_documents(stalled_s=STALLED_S, now=now) == []
    later = now + STALLED_S + 1
    assert await service.fail_stalled_documents(stalled_s=STALLED_S, now=later) == [claimed]
