"""Registry knowledge messages to the SDKs' wire shapes, in one place."""

from __future__ import annotations

from cozeplus.rpc.v1 import knowledge_pb2 as kpb
from services.edge.schemas.knowledge import (
    ChunkStrategyOut,
    DatasetOut,
    DocumentOut,
    DocumentProgressOut,
    FileOut,
)

DATASET_ENABLED = 1


def file_out(file: kpb.KnowledgeFile) -> FileOut:
    return FileOut(
        id=str(file.id), bytes=file.bytes, created_at=file.created_at, file_name=file.file_name
    )


def dataset_out(dataset: kpb.Dataset) -> DatasetOut:
    return DatasetOut(
        dataset_id=str(dataset.id),
        name=dataset.name,
        description=dataset.description,
        space_id=str(dataset.space_id),
        status=DATASET_ENABLED,
        format_type=dataset.format_type,
        can_edit=True,
        icon_url="",
        icon_uri=str(dataset.icon_file_id) if dataset.icon_file_id else "",
        doc_count=dataset.doc_count,
        file_list=[],
        hit_count=0,
        bot_used_count=0,
        slice_count=dataset.slice_count,
        all_file_size=dataset.all_file_size,
        failed_file_list=list(dataset.failed_file_names),
        processing_file_list=list(dataset.processing_file_names),
        processing_file_id_list=[str(i) for i in dataset.processing_document_ids],
        avatar_url="",
        creator_id=str(dataset.owner_id),
        creator_name="",
        create_time=dataset.created_at,
        update_time=dataset.updated_at,
    )


def document_out(document: kpb.Document) -> DocumentOut:
    strategy = document.chunk_strategy
    return DocumentOut(
        document_id=str(document.id),
        name=document.name,
        char_count=document.char_count,
        chunk_strategy=ChunkStrategyOut(
            chunk_type=strategy.chunk_type,
            separator=strategy.separator,
            max_tokens=strategy.max_tokens,
            remove_extra_spaces=strategy.remove_extra_spaces,
            remove_urls_emails=strategy.remove_urls_emails,
            caption_type=strategy.caption_type,
        ),
        format_type=document.format_type,
        hit_count=0,
        size=document.size,
        slice_count=document.slice_count,
        source_type=document.source_type,
        status=document.status,
        status_descript=document.status_descript,
        type=document.file_type,
        update_interval=document.update_interval,
        update_type=document.update_type,
        create_time=document.created_at,
        update_time=document.updated_at,
        tos_uri="",
        web_url=document.web_url,
    )


def progress_out(document: kpb.Document) -> DocumentProgressOut:
    return DocumentProgressOut(
        document_id=str(document.id),
        document_name=document.name,
        url=document.web_url,
        size=document.size,
        type=document.file_type,
        status=document.status,
        progress=document.progress,
        status_descript=document.status_descript,
        update_type=document.update_type,
        update_interval=document.update_interval,
        remaining_time=0,
    )
