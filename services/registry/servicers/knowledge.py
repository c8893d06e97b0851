"""The Knowledge gRPC servicer: proto messages in, domain calls, proto messages out."""

from __future__ import annotations

import array
from typing import Any

from cozeplus.rpc.v1 import knowledge_pb2 as kpb
from cozeplus.rpc.v1 import knowledge_pb2_grpc as kpb_grpc
from services.registry.knowledge import (
    ChunkStrategy,
    DatasetView,
    KnowledgeService,
    NewChunk,
    NewDocument,
    NewFile,
)
from services.registry.knowledge_search import KnowledgeSearch
from services.registry.paging import PageRequest
from services.registry.tables import DocumentRecord, FileRecord


class KnowledgeServicer(kpb_grpc.KnowledgeServicer):
    def __init__(self, service: KnowledgeService, search: KnowledgeSearch) -> None:
        self._knowledge = service
        self._search = search

    # ------------------------------------------------------------------- files

    async def CreateFile(self, request: kpb.CreateFileRequest, context: Any) -> kpb.KnowledgeFile:
        record = await self._knowledge.create_file(
            owner_id=request.owner_id,
            file_name=request.file_name,
            size=request.bytes,
            content_type=request.content_type,
            object_name=request.object_name,
        )
        return file_to_proto(record)

    async def CreateFiles(self, request: kpb.CreateFilesRequest, context: Any) -> kpb.FileList:
        records = await self._knowledge.create_files(
            owner_id=request.owner_id,
            files=[_new_file(f) for f in request.files],
        )
        return kpb.FileList(files=[file_to_proto(r) for r in records])

    async def GetFile(self, request: kpb.FileRef, context: Any) -> kpb.KnowledgeFile:
        record = await self._knowledge.get_file(owner_id=request.owner_id, file_id=request.file_id)
        return file_to_proto(record)

    # ---------------------------------------------------------------- datasets

    async def CreateDataset(self, request: kpb.CreateDatasetRequest, context: Any) -> kpb.Dataset:
        view = await self._knowledge.create_dataset(
            owner_id=request.owner_id,
            space_id=request.space_id,
            name=request.name,
            description=request.description,
            format_type=request.format_type,
            icon_file_id=request.icon_file_id,
        )
        return dataset_to_proto(view)

    async def GetDataset(self, request: kpb.DatasetRef, context: Any) -> kpb.Dataset:
        view = await self._knowledge.get_dataset(
            owner_id=request.owner_id, dataset_id=request.dataset_id
        )
        return dataset_to_proto(view)

    async def ListDatasets(
        self, request: kpb.ListDatasetsRequest, context: Any
    ) -> kpb.ListDatasetsResponse:
        page = await self._knowledge.list_datasets(
            owner_id=request.owner_id,
            space_id=request.space_id,
            name=request.name,
            format_type=request.format_type if request.HasField("format_type") else None,
            page=PageRequest.of(request.page_size, request.page_num),
        )
        return kpb.ListDatasetsResponse(
            datasets=[dataset_to_proto(v) for v in page.items], total=page.total
        )

    async def UpdateDataset(self, request: kpb.UpdateDatasetRequest, context: Any) -> kpb.Dataset:
        view = await self._knowledge.update_dataset(
            owner_id=request.owner_id,
            dataset_id=request.dataset_id,
            name=request.name,
            description=request.description,
            icon_file_id=request.icon_file_id,
        )
        return dataset_to_proto(view)

    async def DeleteDataset(self, request: kpb.DatasetRef, context: Any) -> kpb.Dataset:
        view = await self._knowledge.delete_dataset(
            owner_id=request.owner_id, dataset_id=request.dataset_id
        )
        return dataset_to_proto(view)

    # --------------------------------------------------------------- documents

    async def CreateDocuments(
        self, request: kpb.CreateDocumentsRequest, context: Any
    ) -> kpb.DocumentList:
        records = await self._knowledge.create_documents(
            owner_id=request.owner_id,
            dataset_id=request.dataset_id,
            documents=[
                NewDocument(
                    name=d.name,
                    source_type=d.source_type,
                    file_type=d.file_type,
                    source_file_id=d.source_file_id,
                    web_url=d.web_url,
                    update_type=d.update_type,
                    update_interval=d.update_interval,
                    content=_new_file(d.content) if d.HasField("content") else None,
                )
                for d in request.documents
            ],
            chunk_strategy=chunk_strategy_from_proto(request.chunk_strategy),
            format_type=request.format_type,
        )
        return kpb.DocumentList(documents=[document_to_proto(r) for r in records])

    async def UpdateDocument(
        self, request: kpb.UpdateDocumentRequest, context: Any
    ) -> kpb.Document:
        record = await self._knowledge.update_document(
            owner_id=request.owner_id,
            document_id=request.document_id,
            name=request.name if request.HasField("name") else None,
            update_type=request.update_type if request.HasField("update_type") else None,
            update_interval=(
                request.update_interval if request.HasField("update_interval") else None
            ),
        )
        return document_to_proto(record)

    async def DeleteDocuments(
        self, request: kpb.DeleteDocumentsRequest, context: Any
    ) -> kpb.DocumentList:
        records = await self._knowledge.delete_documents(
            owner_id=request.owner_id, document_ids=list(request.document_ids)
        )
        return kpb.DocumentList(documents=[document_to_proto(r) for r in records])

    async def ListDocuments(
        self, request: kpb.ListDocumentsRequest, context: Any
    ) -> kpb.ListDocumentsResponse:
        page = await self._knowledge.list_documents(
            owner_id=request.owner_id,
            dataset_id=request.dataset_id,
            page=PageRequest.of(request.page_size, request.page_num),
        )
        return kpb.ListDocumentsResponse(
            documents=[document_to_proto(r) for r in page.items], total=page.total
        )

    async def DocumentProgress(
        self, request: kpb.DocumentProgressRequest, context: Any
    ) -> kpb.DocumentList:
        records = await self._knowledge.document_progress(
            owner_id=request.owner_id,
            dataset_id=request.dataset_id,
            document_ids=list(request.document_ids),
        )
        return kpb.DocumentList(documents=[document_to_proto(r) for r in records])

    # --------------------------------------------------------------- ingestion

    async def StartIngestion(
        self, request: kpb.StartIngestionRequest, context: Any
    ) -> kpb.Document:
        record = await self._knowledge.start_ingestion(document_id=request.document_id)
        return document_to_proto(record)

    async def CompleteIngestion(
        self, request: kpb.CompleteIngestionRequest, context: Any
    ) -> kpb.Document:
        record = await self._knowledge.complete_ingestion(
            document_id=request.document_id,
            chunks=[
                NewChunk(
                    content=c.content,
                    embedding=array.array("f", c.embedding).tobytes() if c.embedding else b"",
                )
                for c in request.chunks
            ],
            char_count=request.char_count,
            size=request.size,
            embedding_model=request.embedding_model,
        )
        return document_to_proto(record)

    async def FailIngestion(self, request: kpb.FailIngestionRequest, context: Any) -> kpb.Document:
        record = await self._knowledge.fail_ingestion(
            document_id=request.document_id, reason=request.reason
        )
        return document_to_proto(record)

    # --------------------------------------------------------------- retrieval

    async def Search(self, request: kpb.SearchRequest, context: Any) -> kpb.SearchResponse:
        result = await self._search.search(
            owner_id=request.owner_id,
            dataset_ids=list(request.dataset_ids),
            query=request.query,
            top_k=request.top_k,
            min_score=request.min_score,
            strategy=request.strategy,
        )
        return kpb.SearchResponse(
            chunks=[
                kpb.SearchChunk(
                    chunk_id=h.chunk_id,
                    document_id=h.document_id,
                    dataset_id=h.dataset_id,
                    document_name=h.document_name,
                    content=h.content,
                    score=h.score,
                )
                for h in result.hits
            ],
            strategy=result.strategy,
        )


def file_to_proto(record: FileRecord) -> kpb.KnowledgeFile:
    return kpb.KnowledgeFile(
        id=record.id,
        owner_id=record.owner_id,
        file_name=record.file_name,
        bytes=record.bytes,
        content_type=record.content_type,
        object_name=record.object_name,
        created_at=record.created_at,
    )


def dataset_to_proto(view: DatasetView) -> kpb.Dataset:
    record = view.record
    return kpb.Dataset(
        id=record.id,
        owner_id=record.owner_id,
        space_id=record.space_id,
        name=record.name,
        description=record.description,
        format_type=record.format_type,
        icon_file_id=record.icon_file_id,
        created_at=record.created_at,
        updated_at=record.updated_at,
        doc_count=view.doc_count,
        slice_count=view.slice_count,
        all_file_size=view.all_file_size,
        processing_file_names=[name for _, name in view.processing],
        processing_document_ids=[document_id for document_id, _ in view.processing],
        failed_file_names=view.failed_names,
    )


def chunk_strategy_from_proto(message: kpb.ChunkStrategy) -> ChunkStrategy:
    return ChunkStrategy(
        chunk_type=message.chunk_type,
        separator=message.separator,
        max_tokens=message.max_tokens,
        remove_extra_spaces=message.remove_extra_spaces,
        remove_urls_emails=message.remove_urls_emails,
        caption_type=message.caption_type,
    )


def document_to_proto(record: DocumentRecord) -> kpb.Document:
    strategy = ChunkStrategy.model_validate(record.chunk_strategy)
    return kpb.Document(
        id=record.id,
        dataset_id=record.dataset_id,
        owner_id=record.owner_id,
        name=record.name,
        source_type=record.source_type,
        file_type=record.file_type,
        source_file_id=record.source_file_id,
        web_url=record.web_url,
        size=record.size,
        char_count=record.char_count,
        slice_count=record.slice_count,
        chunk_strategy=kpb.ChunkStrategy(**strategy.model_dump()),
        status=record.status,
        progress=record.progress,
        status_descript=record.status_descript,
        update_type=record.update_type,
        update_interval=record.update_interval,
        created_at=record.created_at,
        updated_at=record.updated_at,
        attempts=record.attempts,
        format_type=record.format_type,
    )


def _new_file(request: kpb.CreateFileRequest) -> NewFile:
    return NewFile(request.file_name, request.bytes, request.content_type, request.object_name)
