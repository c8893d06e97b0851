"""Knowledge: uploaded files' metadata, datasets, documents and their chunks.

Tenancy as for bots: every call names the calling account, and another account's file,
dataset or document is not found. Ingestion is event-driven: creating documents stores them
as processing and queues one job each (`IngestionQueue`); a knowledge worker then starts,
completes or fails each one through this service. Retrieval is in knowledge_search.py.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict
from sqlmodel import Session, col, func, select

from cozeplus.ids import IdGenerator
from cozeplus.knowledge_jobs import (
    DOCUMENT_COMPLETED,
    DOCUMENT_FAILED,
    DOCUMENT_PROCESSING,
    FILE_TYPES,
    SOURCE_FILE_ID,
    SOURCE_LOCAL_FILE,
    SOURCE_WEB_PAGE,
)
from services.registry.database import Database
from services.registry.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unavailable,
)
from services.registry.knowledge_text import search_text
from services.registry.knowledge_vectors import BruteForceVectors, ChunkVector, ChunkVectors
from services.registry.paging import Page, PageRequest
from services.registry.tables import (
    CHUNK_FTS_TABLE,
    ChunkRecord,
    DatasetRecord,
    DocumentRecord,
    FileRecord,
)

MAX_NAME_CHARS = 100
MAX_DOCUMENT_NAME_CHARS = 255
MAX_DESCRIPTION_CHARS = 2000
MAX_FILE_NAME_CHARS = 255
MAX_WEB_URL_CHARS = 2048
MAX_DOCUMENTS_PER_CALL = 100
FORMAT_TEXT = 0
FORMAT_TYPES = (0, 1, 2)
# Progress shown while a worker has the document, before it is indexed.
STARTED_PROGRESS = 10

log = logging.getLogger(__name__)


class IngestionQueue(Protocol):
    """Where new documents go to be processed (a JetStream work queue in production)."""

    async def enqueue(self, document_ids: Sequence[int]) -> None: ...


class FileObjects(Protocol):
    """Where files' bytes are (the JetStream object store in production): the registry
    deletes a document's own content file's bytes once the deletion is committed."""

    async def delete(self, object_names: Sequence[str]) -> None: ...


class ChunkStrategy(BaseModel):
    """As the official SDKs define it. chunk_type 0 = automatic (the worker's defaults)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    chunk_type: int = 0
    separator: str = ""
    max_tokens: int = 0
    remove_extra_spaces: bool = False
    remove_urls_emails: bool = False
    caption_type: int = 0


MAX_CHUNK_TOKENS = 5000


@dataclass(frozen=True)
class NewFile:
    file_name: str
    size: int
    content_type: str
    object_name: str


@dataclass(frozen=True)
class NewDocument:
    name: str
    source_type: int
    file_type: str
    source_file_id: int = 0
    web_url: str = ""
    update_type: int = 0
    update_interval: int = 0
    # The document's own content (already in the object store): recorded with it, counted
    # against the quota, deleted with it. Instead of source_file_id.
    content: NewFile | None = None


@dataclass(frozen=True)
class NewChunk:
    content: str
    embedding: bytes = b""


@dataclass(frozen=True)
class DatasetView:
    record: DatasetRecord
    doc_count: int = 0
    slice_count: int = 0
    all_file_size: int = 0
    processing: list[tuple[int, str]] = field(default_factory=list)
    failed_names: list[str] = field(default_factory=list)


class KnowledgeService:
    def __init__(
        self,
        database: Database,
        ids: IdGenerator,
        queue: IngestionQueue,
        vectors: ChunkVectors | None = None,
        *,
        file_quota_bytes: int = 0,
        objects: FileObjects | None = None,
    ) -> None:
        self._db = database
        self._ids = ids
        self._queue = queue
        self._vectors = vectors or BruteForceVectors()
        self._file_quota_bytes = file_quota_bytes
        # None: deleted files' records go, their bytes are left (tests without a store).
        self._objects = objects

    @property
    def backend(self) -> str:
        return self._db.backend

    # ------------------------------------------------------------------- files

    async def create_file(
        self, *, owner_id: int, file_name: str, size: int, content_type: str, object_name: str
    ) -> FileRecord:
        (record,) = await self.create_files(
            owner_id=owner_id, files=[NewFile(file_name, size, content_type, object_name)]
        )
        return record

    async def create_files(self, *, owner_id: int, files: Sequence[NewFile]) -> list[FileRecord]:
        """All recorded, or none: the quota is checked on their sum."""
        _require_owner(owner_id)
        if not 0 < len(files) <= MAX_DOCUMENTS_PER_CALL:
            raise InvalidArgument(f"files: between 1 and {MAX_DOCUMENTS_PER_CALL} required")
        several = len(files) > 1
        now = _now()
        records = [
            self._file_record(owner_id, file, now, f"files[{index}]." if several else "")
            for index, file in enumerate(files)
        ]
        quota = self._file_quota_bytes
        size = sum(f.size for f in files)

        def work(session: Session) -> list[FileRecord]:
            if quota:
                _check_file_quota(session, owner_id, size, quota, several)
            session.add_all(records)
            return records

        return await self._db.write(work)

    def _file_record(
        self, owner_id: int, file: NewFile, now: int, where: str, document_id: int | None = None
    ) -> FileRecord:
        if not file.file_name.strip():
            raise InvalidArgument(f"{where}file_name is required")
        if len(file.file_name) > MAX_FILE_NAME_CHARS:
            raise InvalidArgument(
                f"{where}file_name must be at most {MAX_FILE_NAME_CHARS} characters"
            )
        if file.size < 0 or not file.object_name:
            raise InvalidArgument(f"{where}bytes and object_name are required")
        return FileRecord(
            id=self._ids.next_id(),
            owner_id=owner_id,
            file_name=file.file_name,
            bytes=file.size,
            content_type=file.content_type[:255],
            object_name=file.object_name,
            created_at=now,
            document_id=document_id,
        )

    async def _delete_objects(self, object_names: Sequence[str]) -> None:
        """After the commit: a failure leaves bytes no record names (and no quota counts),
        never a record without its bytes."""
        if not object_names or self._objects is None:
            return
        try:
            await self._objects.delete(object_names)
        except Exception:
            log.warning(
                "could not delete the bytes of %d deleted files", len(object_names), exc_info=True
            )

    async def get_file(self, *, owner_id: int, file_id: int) -> FileRecord:
        _require_owner(owner_id)
        return await self._db.read(lambda s: _load_file(s, owner_id, file_id))

    # ---------------------------------------------------------------- datasets

    async def create_dataset(
        self,
        *,
        owner_id: int,
        space_id: int,
        name: str,
        description: str,
        format_type: int,
        icon_file_id: int,
    ) -> DatasetView:
        _require_owner(owner_id)
        space_id = _resolve_space(owner_id, space_id)
        name = _validate_name(name, MAX_NAME_CHARS)
        _validate_description(description)
        if format_type not in FORMAT_TYPES:
            raise InvalidArgument("format_type must be 0 (text), 1 (table) or 2 (image)")
        now = _now()
        record = DatasetRecord(
            id=self._ids.next_id(),
            owner_id=owner_id,
            space_id=space_id,
            name=name,
            description=description,
            format_type=format_type,
            icon_file_id=icon_file_id,
            created_at=now,
            updated_at=now,
        )

        def work(session: Session) -> DatasetView:
            if icon_file_id:
                _load_file(session, owner_id, icon_file_id)
            session.add(record)
            return DatasetView(record)

        return await self._db.write(work)

    async def get_dataset(self, *, owner_id: int, dataset_id: int) -> DatasetView:
        _require_owner(owner_id)

        def work(session: Session) -> DatasetView:
            return _dataset_views(session, [_load_dataset(session, owner_id, dataset_id)])[0]

        return await self._db.read(work)

    async def list_datasets(
        self,
        *,
        owner_id: int,
        space_id: int,
        name: str,
        format_type: int | None,
        page: PageRequest,
    ) -> Page[DatasetView]:
        """Newest first; `name` matches any part of the name."""
        _require_owner(owner_id)
        if space_id != 0:
            space_id = _resolve_space(owner_id, space_id)

        def work(session: Session) -> Page[DatasetView]:
            conditions: list[Any] = [DatasetRecord.owner_id == owner_id]
            if space_id:
                conditions.append(DatasetRecord.space_id == space_id)
            if name:
                conditions.append(col(DatasetRecord.name).contains(name, autoescape=True))
            if format_type is not None:
                conditions.append(DatasetRecord.format_type == format_type)
            total = session.exec(
                select(func.count()).select_from(DatasetRecord).where(*conditions)
            ).one()
            records = session.exec(
                select(DatasetRecord)
                .where(*conditions)
                .order_by(col(DatasetRecord.id).desc())
                .offset(page.offset)
                .limit(page.size)
            ).all()
            return Page(_dataset_views(session, list(records)), int(total))

        return await self._db.read(work)

    async def update_dataset(
        self, *, owner_id: int, dataset_id: int, name: str, description: str, icon_file_id: int
    ) -> DatasetView:
        _require_owner(owner_id)
        name = _validate_name(name, MAX_NAME_CHARS)
        _validate_description(description)

        def work(session: Session) -> DatasetView:
            record = _load_dataset(session, owner_id, dataset_id)
            if icon_file_id:
                _load_file(session, owner_id, icon_file_id)
            record.name = name
            record.description = description
            record.icon_file_id = icon_file_id
            record.updated_at = _now()
            session.add(record)
            return _dataset_views(session, [record])[0]

        return await self._db.write(work)

    async def delete_dataset(self, *, owner_id: int, dataset_id: int) -> DatasetView:
        _require_owner(owner_id)

        def work(session: Session) -> tuple[DatasetView, list[str]]:
            record = _load_dataset(session, owner_id, dataset_id)
            view = _dataset_views(session, [record])[0]
            document_ids = session.exec(
                select(DocumentRecord.id).where(DocumentRecord.dataset_id == dataset_id)
            ).all()
            freed = _delete_documents(session, list(document_ids), self.backend)
            session.delete(record)
            return view, freed

        view, freed = await self._db.write(work)
        await self._delete_objects(freed)
        return view

    # --------------------------------------------------------------- documents

    async def create_documents(
        self,
        *,
        owner_id: int,
        dataset_id: int,
        documents: Sequence[NewDocument],
        chunk_strategy: ChunkStrategy,
        format_type: int,
    ) -> list[DocumentRecord]:
        """Stores the documents as processing, then queues them. If queueing fails they are
        marked failed (saying so), never left processing with no job behind them."""
        _require_owner(owner_id)
        if not documents:
            raise InvalidArgument("document_bases must not be empty")
        if len(documents) > MAX_DOCUMENTS_PER_CALL:
            raise InvalidArgument(f"document_bases: at most {MAX_DOCUMENTS_PER_CALL} per call")
        if format_type != FORMAT_TEXT:
            raise InvalidArgument("format_type: only 0 (text documents) is supported")
        _validate_chunk_strategy(chunk_strategy)
        for index, document in enumerate(documents):
            _validate_new_document(index, document)
        now = _now()
        document_ids = [self._ids.next_id() for _ in documents]
        # Each document's own content file, made for it (all or none, with the documents).
        contents = {
            index: self._file_record(
                owner_id,
                document.content,
                now,
                f"document_bases[{index}].source_info.content.",
                document_ids[index],
            )
            for index, document in enumerate(documents)
            if document.content is not None
        }
        quota = self._file_quota_bytes
        content_bytes = sum(f.bytes for f in contents.values())

        def work(session: Session) -> list[DocumentRecord]:
            dataset = _load_dataset(session, owner_id, dataset_id)
            if dataset.format_type != FORMAT_TEXT:
                raise FailedPrecondition("only text datasets (format_type 0) take documents")
            if contents and quota:
                _check_file_quota(session, owner_id, content_bytes, quota, len(contents) > 1)
            session.add_all(contents.values())
            records: list[DocumentRecord] = []
            for index, document in enumerate(documents):
                size = 0
                source_file_id = document.source_file_id
                content = contents.get(index)
                if content is not None:
                    source_file_id, size = content.id, content.bytes
                elif document.source_file_id:
                    try:
                        size = _load_file(session, owner_id, document.source_file_id).bytes
                    except NotFound:
                        raise NotFound(
                            f"document_bases[{index}].source_info.source_file_id: "
                            f"file {document.source_file_id} not found"
                        ) from None
                record = DocumentRecord(
                    id=document_ids[index],
                    dataset_id=dataset_id,
                    owner_id=owner_id,
                    name=document.name.strip(),
                    source_type=document.source_type,
                    file_type=document.file_type,
                    source_file_id=source_file_id,
                    web_url=document.web_url,
                    format_type=format_type,
                    chunk_strategy=chunk_strategy.model_dump(),
                    size=size,
                    status=DOCUMENT_PROCESSING,
                    update_type=document.update_type,
                    update_interval=document.update_interval,
                    created_at=now,
                    updated_at=now,
                )
                session.add(record)
                records.append(record)
            dataset.updated_at = now
            session.add(dataset)
            return records

        records = await self._db.write(work)
        try:
            await self._queue.enqueue([r.id for r in records])
        except Exception as exc:
            log.exception("queueing documents for ingestion failed")
            reason = "could not queue the document for processing; upload it again"
            for record in records:
                await self.fail_ingestion(document_id=record.id, reason=reason)
            raise Unavailable("the ingestion queue is unavailable, try again") from exc
        return records

    async def update_document(
        self,
        *,
        owner_id: int,
        document_id: int,
        name: str | None,
        update_type: int | None,
        update_interval: int | None,
    ) -> DocumentRecord:
        _require_owner(owner_id)
        if name is not None:
            name = _validate_name(name, MAX_DOCUMENT_NAME_CHARS, "document_name")

        def work(session: Session) -> DocumentRecord:
            record = _load_document(session, owner_id, document_id)
            if name is not None:
                record.name = name
            if update_type is not None:
                record.update_type = update_type
            if update_interval is not None:
                record.update_interval = update_interval
            record.updated_at = _now()
            session.add(record)
            return record

        return await self._db.write(work)

    async def delete_documents(
        self, *, owner_id: int, document_ids: Sequence[int]
    ) -> list[DocumentRecord]:
        _require_owner(owner_id)
        if not document_ids:
            raise InvalidArgument("document_ids must not be empty")
        unique = list(dict.fromkeys(document_ids))

        def work(session: Session) -> tuple[list[DocumentRecord], list[str]]:
            records = [_load_document(session, owner_id, i) for i in unique]
            return records, _delete_documents(session, unique, self.backend)

        records, freed = await self._db.write(work)
        await self._delete_objects(freed)
        return records

    async def list_documents(
        self, *, owner_id: int, dataset_id: int, page: PageRequest
    ) -> Page[DocumentRecord]:
        """Oldest first, as added."""
        _require_owner(owner_id)

        def work(session: Session) -> Page[DocumentRecord]:
            _load_dataset(session, owner_id, dataset_id)
            condition = DocumentRecord.dataset_id == dataset_id
            total = session.exec(
                select(func.count()).select_from(DocumentRecord).where(condition)
            ).one()
            records = session.exec(
                select(DocumentRecord)
                .where(condition)
                .order_by(col(DocumentRecord.id))
                .offset(page.offset)
                .limit(page.size)
            ).all()
            return Page(list(records), int(total))

        return await self._db.read(work)

    async def document_progress(
        self, *, owner_id: int, dataset_id: int, document_ids: Sequence[int]
    ) -> list[DocumentRecord]:
        """The named documents of the dataset (all of them when none is named); an id that
        is not one of its documents is NOT_FOUND."""
        _require_owner(owner_id)

        def work(session: Session) -> list[DocumentRecord]:
            _load_dataset(session, owner_id, dataset_id)
            query = select(DocumentRecord).where(DocumentRecord.dataset_id == dataset_id)
            if document_ids:
                query = query.where(col(DocumentRecord.id).in_(list(document_ids)))
            records = {r.id: r for r in session.exec(query.order_by(col(DocumentRecord.id)))}
            missing = [i for i in document_ids if i not in records]
            if missing:
                raise NotFound(f"document {missing[0]} not found in dataset {dataset_id}")
            if document_ids:
                return [records[i] for i in dict.fromkeys(document_ids)]
            return list(records.values())

        return await self._db.read(work)

    # --------------------------------------------------------------- ingestion

    async def start_ingestion(self, *, document_id: int) -> DocumentRecord:
        def work(session: Session) -> DocumentRecord:
            record = _ingested_document(session, document_id)
            if record.status != DOCUMENT_PROCESSING:
                raise FailedPrecondition(f"document {document_id} is no longer processing")
            record.attempts += 1
            record.progress = STARTED_PROGRESS
            record.updated_at = _now()
            session.add(record)
            return record

        return await self._db.write(work)

    async def complete_ingestion(
        self,
        *,
        document_id: int,
        chunks: Sequence[NewChunk],
        char_count: int,
        size: int,
        embedding_model: str,
    ) -> DocumentRecord:
        """Replaces any chunks an earlier attempt stored, so a retried job indexes once."""
        ids = [self._ids.next_id() for _ in chunks]

        def work(session: Session) -> DocumentRecord:
            record = _ingested_document(session, document_id)
            if record.status != DOCUMENT_PROCESSING:
                raise FailedPrecondition(f"document {document_id} is no longer processing")
            _delete_chunks(session, [document_id], self.backend)
            rows = [
                {
                    "id": chunk_id,
                    "document_id": document_id,
                    "dataset_id": record.dataset_id,
                    "owner_id": record.owner_id,
                    "seq": seq,
                    "content": chunk.content,
                    "search_text": search_text(chunk.content),
                    "embedding": chunk.embedding,
                }
                for seq, (chunk_id, chunk) in enumerate(zip(ids, chunks, strict=True))
            ]
            if rows:
                session.execute(sa.insert(ChunkRecord), rows)
                if self.backend == "sqlite":
                    session.execute(
                        sa.text(
                            f"INSERT INTO {CHUNK_FTS_TABLE}(rowid, search_text) "
                            "VALUES (:id, :search_text)"
                        ),
                        [{"id": r["id"], "search_text": r["search_text"]} for r in rows],
                    )
                self._vectors.add(
                    session,
                    [
                        ChunkVector(chunk_id, record.dataset_id, chunk.embedding)
                        for chunk_id, chunk in zip(ids, chunks, strict=True)
                    ],
                )
            record.status = DOCUMENT_COMPLETED
            record.progress = 100
            record.status_descript = ""
            record.slice_count = len(rows)
            record.char_count = char_count
            if size:
                record.size = size
            record.embedding_model = embedding_model
            record.updated_at = _now()
            session.add(record)
            return record

        return await self._db.write(work)

    async def fail_ingestion(self, *, document_id: int, reason: str) -> DocumentRecord:
        def work(session: Session) -> DocumentRecord:
            record = _ingested_document(session, document_id)
            if record.status == DOCUMENT_COMPLETED:
                raise FailedPrecondition(f"document {document_id} already completed")
            record.status = DOCUMENT_FAILED
            record.status_descript = (reason or "processing failed")[:2000]
            record.updated_at = _now()
            session.add(record)
            return record

        return await self._db.write(work)

    async def fail_stalled_documents(
        self, *, stalled_s: float, now: float | None = None, limit: int = 500
    ) -> list[int]:
        """Fails documents processing with no progress (created, or claimed by a worker) for
        `stalled_s`: their jobs are lost (a worker could not record a failure, a job expired
        from the queue, NATS lost its storage). Returns their ids. One conditional UPDATE,
        so every registry replica may run it and a worker's progress in between wins."""
        current = int(time.time() if now is None else now)
        cutoff = current - int(stalled_s)
        reason = (
            f"processing did not finish within {stalled_s:.0f}s (no knowledge worker took "
            "or finished it); delete the document and add it again"
        )
        stalled = [
            col(DocumentRecord.status) == DOCUMENT_PROCESSING,
            col(DocumentRecord.updated_at) <= cutoff,
        ]

        def work(session: Session) -> list[int]:
            ids = list(
                session.execute(
                    sa.select(col(DocumentRecord.id))
                    .where(*stalled)
                    .order_by(col(DocumentRecord.updated_at))
                    .limit(limit)
                ).scalars()
            )
            if ids:
                session.execute(
                    sa.update(DocumentRecord)
                    .where(col(DocumentRecord.id).in_(ids), *stalled)
                    .values(status=DOCUMENT_FAILED, status_descript=reason, updated_at=current)
                    .execution_options(synchronize_session=False)
                )
            return ids

        return await self._db.write(work)


# ----------------------------------------------------------------------- helpers


def _now() -> int:
    return int(time.time())


def _require_owner(owner_id: int) -> None:
    if owner_id <= 0:
        raise InvalidArgument("owner_id is required")


def _resolve_space(owner_id: int, space_id: int) -> int:
    if space_id in (0, owner_id):
        return owner_id
    raise PermissionDenied("space_id: you can only use your personal space")


def _validate_name(name: str, limit: int, field_name: str = "name") -> str:
    name = name.strip()
    if not name:
        raise InvalidArgument(f"{field_name} is required")
    if len(name) > limit:
        raise InvalidArgument(f"{field_name} must be at most {limit} characters")
    return name


def _validate_description(description: str) -> None:
    if len(description) > MAX_DESCRIPTION_CHARS:
        raise InvalidArgument(f"description must be at most {MAX_DESCRIPTION_CHARS} characters")


def _validate_chunk_strategy(strategy: ChunkStrategy) -> None:
    if strategy.chunk_type not in (0, 1):
        raise InvalidArgument("chunk_strategy.chunk_type must be 0 (automatic) or 1 (custom)")
    if strategy.chunk_type == 1:
        if not 100 <= strategy.max_tokens <= MAX_CHUNK_TOKENS:
            raise InvalidArgument(
                f"chunk_strategy.max_tokens must be between 100 and {MAX_CHUNK_TOKENS}"
            )
        if not strategy.separator:
            raise InvalidArgument("chunk_strategy.separator is required for chunk_type 1")


def _validate_new_document(index: int, document: NewDocument) -> None:
    where = f"document_bases[{index}]"
    _validate_name(document.name, MAX_DOCUMENT_NAME_CHARS, f"{where}.name")
    if document.source_type == SOURCE_WEB_PAGE:
        if document.content is not None:
            raise InvalidArgument(f"{where}.source_info: a web page's document has no content")
        if len(document.web_url) > MAX_WEB_URL_CHARS:
            raise InvalidArgument(f"{where}.source_info.web_url is too long")
        try:
            parts = urlsplit(document.web_url)
        except ValueError:
            parts = None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidArgument(f"{where}.source_info.web_url must be an http or https URL")
        return
    if document.source_type not in (SOURCE_LOCAL_FILE, SOURCE_FILE_ID):
        raise InvalidArgument(f"{where}.source_info: unsupported document_source")
    if document.content is not None:
        if document.source_type != SOURCE_LOCAL_FILE or document.source_file_id:
            raise InvalidArgument(
                f"{where}.source_info: content is for a local file's document "
                "(source_type 0, no source_file_id)"
            )
    elif document.source_file_id <= 0:
        raise InvalidArgument(f"{where}.source_info: file content or source_file_id is required")
    if document.file_type not in FILE_TYPES:
        raise InvalidArgument(
            f"{where}.source_info.file_type must be one of {', '.join(FILE_TYPES)}"
        )


# pg_advisory_xact_lock(int, int)'s first key for an account's file quota (the two-key lock
# space is apart from the one-key locks of migrations and vector setup).
FILE_QUOTA_LOCK_SPACE = 0x66696C65  # "file"


def _check_file_quota(
    session: Session, owner_id: int, size: int, quota: int, several: bool = False
) -> None:
    """In the transaction that adds the file, so two uploads never both take the last room:
    SQLite's writes are serial already; PostgreSQL takes a lock of the account's until the
    commit (owners whose ids fold to the same key merely wait for each other)."""
    if session.get_bind().dialect.name == "postgresql":
        folded = (owner_id ^ (owner_id >> 32)) & 0x7FFFFFFF
        session.execute(
            sa.text("SELECT pg_advisory_xact_lock(:space, :key)"),
            {"space": FILE_QUOTA_LOCK_SPACE, "key": folded},
        )
    used = session.exec(
        select(func.coalesce(func.sum(FileRecord.bytes), 0)).where(FileRecord.owner_id == owner_id)
    ).one()
    if used + size > quota:
        these = "these files need" if several else "this file needs"
        raise PermissionDenied(
            f"file storage quota exceeded: {used} of {quota} bytes in use, {these} {size} more"
        )


def _load_file(session: Session, owner_id: int, file_id: int) -> FileRecord:
    record = session.exec(
        select(FileRecord).where(FileRecord.id == file_id, FileRecord.owner_id == owner_id)
    ).one_or_none()
    if record is None:
        raise NotFound(f"file {file_id} not found")
    return record


def _load_dataset(session: Session, owner_id: int, dataset_id: int) -> DatasetRecord:
    record = session.exec(
        select(DatasetRecord).where(
            DatasetRecord.id == dataset_id, DatasetRecord.owner_id == owner_id
        )
    ).one_or_none()
    if record is None:
        raise NotFound(f"dataset {dataset_id} not found")
    return record


def _load_document(session: Session, owner_id: int, document_id: int) -> DocumentRecord:
    record = session.exec(
        select(DocumentRecord).where(
            DocumentRecord.id == document_id, DocumentRecord.owner_id == owner_id
        )
    ).one_or_none()
    if record is None:
        raise NotFound(f"document {document_id} not found")
    return record


def _ingested_document(session: Session, document_id: int) -> DocumentRecord:
    record = session.get(DocumentRecord, document_id)
    if record is None:
        raise NotFound(f"document {document_id} not found (deleted)")
    return record


def _delete_chunks(session: Session, document_ids: list[int], backend: str) -> None:
    if not document_ids:
        return
    if backend == "sqlite":
        session.execute(
            sa.text(
                f"DELETE FROM {CHUNK_FTS_TABLE} WHERE rowid IN "
                "(SELECT id FROM knowledge_chunks WHERE document_id IN :ids)"
            ).bindparams(sa.bindparam("ids", expanding=True)),
            {"ids": document_ids},
        )
    session.execute(sa.delete(ChunkRecord).where(col(ChunkRecord.document_id).in_(document_ids)))


def _delete_documents(session: Session, document_ids: list[int], backend: str) -> list[str]:
    """The documents, their chunks and their own content files; returns the files' object
    names, whose bytes go once this commits."""
    _delete_chunks(session, document_ids, backend)
    if not document_ids:
        return []
    owned = col(FileRecord.document_id).in_(document_ids)
    object_names = list(session.exec(select(FileRecord.object_name).where(owned)).all())
    if object_names:
        session.execute(sa.delete(FileRecord).where(owned))
    session.execute(sa.delete(DocumentRecord).where(col(DocumentRecord.id).in_(document_ids)))
    return object_names


def _dataset_views(session: Session, records: list[DatasetRecord]) -> list[DatasetView]:
    """Each dataset with its document counts and the names of documents still processing
    or failed (the official Dataset object lists them)."""
    if not records:
        return []
    ids = [r.id for r in records]
    rows = session.execute(
        sa.text(
            "SELECT dataset_id, id, name, status, size, slice_count FROM knowledge_documents "
            "WHERE dataset_id IN :ids"
        ).bindparams(sa.bindparam("ids", expanding=True)),
        {"ids": ids},
    ).all()
    stats: dict[int, dict[str, Any]] = {
        i: {"doc_count": 0, "slice_count": 0, "all_file_size": 0, "processing": [], "failed": []}
        for i in ids
    }
    for dataset_id, document_id, name, status, size, slices in rows:
        entry = stats[dataset_id]
        entry["doc_count"] += 1
        entry["slice_count"] += slices
        entry["all_file_size"] += size
        if status == DOCUMENT_PROCESSING:
            entry["processing"].append((document_id, name))
        elif status == DOCUMENT_FAILED:
            entry["failed"].append(name)
    return [
        DatasetView(
            record=r,
            doc_count=stats[r.id]["doc_count"],
            slice_count=stats[r.id]["slice_count"],
            all_file_size=stats[r.id]["all_file_size"],
            processing=stats[r.id]["processing"],
            failed_names=stats[r.id]["failed"],
        )
        for r in records
    ]
