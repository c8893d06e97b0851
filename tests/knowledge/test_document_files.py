"""A base64 document's file belongs to its document (NewDocument.content), on SQLite and
PostgreSQL: recorded with the documents in one transaction, held against the account's file
quota with them, and deleted with the document or its dataset, bytes included, which gives
the quota back. A file uploaded on its own and named by id stays."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command

from cozeplus.ids import IdGenerator
from cozeplus.knowledge_jobs import SOURCE_FILE_ID, SOURCE_LOCAL_FILE, SOURCE_WEB_PAGE
from services.registry.database import Database, alembic_config, create_database_engine
from services.registry.errors import InvalidArgument, NotFound, PermissionDenied
from services.registry.knowledge import ChunkStrategy, KnowledgeService, NewDocument, NewFile
from services.registry.paging import PageRequest
from tests.knowledge.test_stalled_documents import OWNER, Queue, database

__all__ = ["database"]

QUOTA = 2500


class Objects:
    """The object store's side: what was deleted, and an outage on demand."""

    def __init__(self) -> None:
        self.deleted: list[str] = []
        self.failing = False

    async def delete(self, object_names: Sequence[str]) -> None:
        if self.failing:
            raise ConnectionError("object store unreachable")
        self.deleted.extend(object_names)


def content_document(name: str, size: int, object_name: str) -> NewDocument:
    return NewDocument(
        name=name,
        source_type=SOURCE_LOCAL_FILE,
        file_type="txt",
        content=NewFile(f"{name}.txt", size, "", object_name),
    )


async def new_dataset(service: KnowledgeService, name: str = "kb") -> int:
    view = await service.create_dataset(
        owner_id=OWNER, space_id=0, name=name, description="", format_type=0, icon_file_id=0
    )
    return view.record.id


async def create(service: KnowledgeService, dataset_id: int, *documents: NewDocument) -> list[int]:
    records = await service.create_documents(
        owner_id=OWNER,
        dataset_id=dataset_id,
        documents=documents,
        chunk_strategy=ChunkStrategy(),
        format_type=0,
    )
    return [r.id for r in records]


async def upload(service: KnowledgeService, size: int, object_name: str) -> int:
    record = await service.create_file(
        owner_id=OWNER, file_name="up.txt", size=size, content_type="", object_name=object_name
    )
    return record.id


async def test_a_document_s_content_file_comes_and_goes_with_it(database: Database) -> None:
    objects = Objects()
    service = KnowledgeService(
        database, IdGenerator(1), Queue(), file_quota_bytes=QUOTA, objects=objects
    )
    dataset = await new_dataset(service)
    [first] = await create(service, dataset, content_document("a", 1500, "o/a"))
    [record] = await service.document_progress(
        owner_id=OWNER, dataset_id=dataset, document_ids=[first]
    )
    file = await service.get_file(owner_id=OWNER, file_id=record.source_file_id)
    assert (file.document_id, file.object_name, file.bytes, record.size) == (
        first,
        "o/a",
        1500,
        1500,
    )

    # The quota counts it: 1500 + 1500 is over 2500, and nothing of the refused call stays.
    with pytest.raises(PermissionDenied, match="1500 of 2500 bytes in use, this file needs 1500"):
        await create(service, dataset, content_document("b", 1500, "o/b"))
    page = await service.list_documents(owner_id=OWNER, dataset_id=dataset, page=_page())
    assert [d.id for d in page.items] == [first]

    # Deleting the document gives its room back and deletes its bytes.
    await service.delete_documents(owner_id=OWNER, document_ids=[first])
    assert objects.deleted == ["o/a"]
    with pytest.raises(NotFound):
        await service.get_file(owner_id=OWNER, file_id=file.id)
    [second] = await create(service, dataset, content_document("b", 2500, "o/b"))

    # So does deleting its dataset.
    await service.delete_dataset(owner_id=OWNER, dataset_id=dataset)
    assert objects.deleted == ["o/a", "o/b"]
    await upload(service, QUOTA, "o/whole")
    assert second


async def test_documents_with_content_are_created_all_or_none(database: Database) -> None:
    service = KnowledgeService(database, IdGenerator(1), Queue(), file_quota_bytes=QUOTA)
    dataset = await new_dataset(service)

    with pytest.raises(PermissionDenied, match="0 of 2500 bytes in use, these files need 3000"):
        await create(
            service, dataset, content_document("a", 1500, "o/a"), content_document("b", 1500, "o/b")
        )
    # A bad document among them: nothing is recorded either, its own file included.
    with pytest.raises(InvalidArgument, match=r"document_bases\[1\]\.source_info\.content\."):
        await create(
            service,
            dataset,
            content_document("a", 10, "o/a"),
            NewDocument("b", SOURCE_LOCAL_FILE, "txt", content=NewFile(" ", 10, "", "o/b")),
        )
    # The documents' own files and a missing one named by id: NOT_FOUND, nothing kept.
    with pytest.raises(NotFound, match="file 999 not found"):
        await create(
            service,
            dataset,
            content_document("a", 10, "o/a"),
            NewDocument("b", SOURCE_FILE_ID, "txt", source_file_id=999),
        )
    page = await service.list_documents(owner_id=OWNER, dataset_id=dataset, page=_page())
    assert page.total == 0
    # The whole quota is still free.
    await upload(service, QUOTA, "o/whole")


async def test_content_is_only_for_local_file_documents(database: Database) -> None:
    service = KnowledgeService(database, IdGenerator(1), Queue())
    dataset = await new_dataset(service)
    content = NewFile("a.txt", 1, "", "o/a")
    cases = [
        NewDocument("web", SOURCE_WEB_PAGE, "html", web_url="https://example.com", content=content),
        NewDocument("byid", SOURCE_FILE_ID, "txt", content=content),
        NewDocument("both", SOURCE_LOCAL_FILE, "txt", source_file_id=5, content=content),
    ]
    for document in cases:
        with pytest.raises(InvalidArgument, match=r"document_bases\[0\]\.source_info"):
            await create(service, dataset, document)


async def test_a_file_named_by_id_outlives_its_documents(database: Database) -> None:
    objects = Objects()
    service = KnowledgeService(
        database, IdGenerator(1), Queue(), file_quota_bytes=QUOTA, objects=objects
    )
    dataset = await new_dataset(service)
    file_id = await upload(service, 2000, "o/up")
    by_id = NewDocument("byid", SOURCE_FILE_ID, "txt", source_file_id=file_id)
    await create(service, dataset, by_id, by_id)
    await service.delete_dataset(owner_id=OWNER, dataset_id=dataset)
    assert objects.deleted == []
    assert (await service.get_file(owner_id=OWNER, file_id=file_id)).bytes == 2000
    with pytest.raises(PermissionDenied, match="2000 of 2500 bytes in use"):
        await upload(service, 501, "o/more")


async def test_bytes_that_cannot_be_deleted_do_not_undo_the_deletion(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    objects = Objects()
    service = KnowledgeService(
        database, IdGenerator(1), Queue(), file_quota_bytes=QUOTA, objects=objects
    )
    dataset = await new_dataset(service)
    [document] = await create(service, dataset, content_document("a", 2000, "o/a"))
    objects.failing = True
    deleted = await service.delete_documents(owner_id=OWNER, document_ids=[document])
    assert [d.id for d in deleted] == [document]
    assert "could not delete the bytes of 1 deleted files" in caplog.text
    # The record is gone, so the quota is free again (the bytes are left to the store).
    await upload(service, QUOTA, "o/whole")


def test_the_migration_gives_earlier_base64_documents_their_files(tmp_path: Path) -> None:
    """Before 0010 a base64 document's file was an ordinary file; a local-file document's
    source file was made for it, so the migration hands it to the document."""
    engine = create_database_engine(f"sqlite:///{tmp_path / 'before.db'}")
    insert_file = sa.text(
        "INSERT INTO knowledge_files (id, owner_id, file_name, bytes, content_type, "
        "object_name, created_at) VALUES (:id, :owner, 'f.txt', 10, '', :name, 0)"
    )
    insert_document = sa.text(
        "INSERT INTO knowledge_documents (id, dataset_id, owner_id, name, source_type, "
        "file_type, source_file_id, web_url, format_type, chunk_strategy, size, char_count, "
        "slice_count, status, progress, status_descript, attempts, update_type, "
        "update_interval, embedding_model, created_at, updated_at) VALUES (:id, 1, :owner, "
        "'d', :type, 'txt', :file, '', 0, '{}', 10, 0, 0, 1, 100, '', 1, 0, 0, '', 0, 0)"
    )
    try:
        with engine.begin() as connection:
            command.upgrade(alembic_config(connection), "0009")
            for file_id, name in ((1, "o/base64"), (2, "o/upload"), (3, "o/orphan")):
                connection.execute(insert_file, {"id": file_id, "owner": OWNER, "name": name})
            documents = ((10, SOURCE_LOCAL_FILE, 1), (11, SOURCE_FILE_ID, 2))
            for document_id, source_type, file_id in documents:
                connection.execute(
                    insert_document,
                    {"id": document_id, "owner": OWNER, "type": source_type, "file": file_id},
                )
        with engine.begin() as connection:
            command.upgrade(alembic_config(connection), "head")
            rows = connection.execute(
                sa.text("SELECT id, document_id FROM knowledge_files ORDER BY id")
            ).all()
        assert [tuple(r) for r in rows] == [(1, 10), (2, None), (3, None)]
    finally:
        engine.dispose()


def _page() -> PageRequest:
    return PageRequest.of(50, 1)
