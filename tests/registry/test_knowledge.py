"""The Knowledge service on SQLite and PostgreSQL: storage, ingestion transitions, tenancy
and full-text retrieval in English and Chinese (FTS5 and tsvector over the same terms)."""

from __future__ import annotations

import grpc
import pytest

from cozeplus.rpc.v1 import knowledge_pb2 as kpb
from cozeplus.rpc.v1.knowledge_pb2_grpc import KnowledgeStub
from tests.registry.rpc_expect import expect_status

CHUNKS = [
    "The Zephyrine Lighthouse was first lit in 1871.",
    "Keepers logged the tides every four hours.",
    "故宫博物院成立于一九二五年。",
    "太和殿是紫禁城中最大的宫殿。",
]


async def indexed_document(
    rpc: KnowledgeStub, owner_id: int, chunks: list[str] = CHUNKS
) -> tuple[kpb.Dataset, kpb.Document]:
    file = await rpc.CreateFile(
        kpb.CreateFileRequest(owner_id=owner_id, file_name="a.txt", bytes=10, object_name="o/1")
    )
    dataset = await rpc.CreateDataset(kpb.CreateDatasetRequest(owner_id=owner_id, name="kb"))
    created = await rpc.CreateDocuments(
        kpb.CreateDocumentsRequest(
            owner_id=owner_id,
            dataset_id=dataset.id,
            documents=[
                kpb.NewDocument(name="doc", source_type=5, file_type="txt", source_file_id=file.id)
            ],
        )
    )
    [document] = created.documents
    assert document.status == 0 and document.size == 10
    started = await rpc.StartIngestion(kpb.StartIngestionRequest(document_id=document.id))
    assert (started.attempts, started.progress) == (1, 10)
    done = await rpc.CompleteIngestion(
        kpb.CompleteIngestionRequest(
            document_id=document.id,
            chunks=[kpb.NewChunk(content=c) for c in chunks],
            char_count=sum(map(len, chunks)),
        )
    )
    assert (done.status, done.slice_count, done.progress) == (1, len(chunks), 100)
    return dataset, done


async def test_full_text_search_in_english_and_chinese(
    registry_channel: grpc.aio.Channel, owner_id: int
) -> None:
    rpc = KnowledgeStub(registry_channel)
    dataset, _ = await indexed_document(rpc, owner_id)

    async def top(query: str, **kwargs: object) -> list[str]:
        reply = await rpc.Search(
            kpb.SearchRequest(owner_id=owner_id, dataset_ids=[dataset.id], query=query, **kwargs)
        )
        assert reply.strategy == 20  # no embedding model: full-text whatever was asked
        assert all(0 < c.score < 1 and c.document_name == "doc" for c in reply.chunks)
        return [c.content for c in reply.chunks]

    assert (await top("when was the lighthouse lit"))[0] == CHUNKS[0]
    assert (await top("tides", strategy=1))[0] == CHUNKS[1]
    assert (await top("博物院哪年成立"))[0] == CHUNKS[2]
    assert (await top("宫殿"))[0] == CHUNKS[3]
    assert await top("故宫 lighthouse", top_k=1) in ([CHUNKS[0]], [CHUNKS[2]])
    assert await top("submarine") == []


async def test_retried_ingestion_replaces_chunks_and_ended_documents_refuse_more(
    registry_channel: grpc.aio.Channel, owner_id: int
) -> None:
    rpc = KnowledgeStub(registry_channel)
    dataset, document = await indexed_document(rpc, owner_id)
    await expect_status(
        rpc.StartIngestion(kpb.StartIngestionRequest(document_id=document.id)),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    await expect_status(
        rpc.FailIngestion(kpb.FailIngestionRequest(document_id=document.id, reason="x")),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    deleted = await rpc.DeleteDocuments(
        kpb.DeleteDocumentsRequest(owner_id=owner_id, document_ids=[document.id])
    )
    assert [d.id for d in deleted.documents] == [document.id]
    await expect_status(
        rpc.StartIngestion(kpb.StartIngestionRequest(document_id=document.id)),
        grpc.StatusCode.NOT_FOUND,
    )
    reply = await rpc.Search(
        kpb.SearchRequest(owner_id=owner_id, dataset_ids=[dataset.id], query="lighthouse")
    )
    assert list(reply.chunks) == []


async def test_tenancy_and_bad_input(
    registry_channel: grpc.aio.Channel, owner_id: int, other_owner_id: int
) -> None:
    rpc = KnowledgeStub(registry_channel)
    dataset, document = await indexed_document(rpc, owner_id)
    await expect_status(
        rpc.GetDataset(kpb.DatasetRef(owner_id=other_owner_id, dataset_id=dataset.id)),
        grpc.StatusCode.NOT_FOUND,
    )
    await expect_status(
        rpc.DeleteDocuments(
            kpb.DeleteDocumentsRequest(owner_id=other_owner_id, document_ids=[document.id])
        ),
        grpc.StatusCode.NOT_FOUND,
    )
    await expect_status(
        rpc.ListDatasets(kpb.ListDatasetsRequest(owner_id=other_owner_id, space_id=owner_id)),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    foreign = await rpc.Search(
        kpb.SearchRequest(owner_id=other_owner_id, dataset_ids=[dataset.id], query="lighthouse")
    )
    assert list(foreign.chunks) == []
    for bad in (
        kpb.SearchRequest(owner_id=owner_id, dataset_ids=[dataset.id], query=" "),
        kpb.SearchRequest(owner_id=owner_id, dataset_ids=[dataset.id], query="x", strategy=7),
        kpb.SearchRequest(owner_id=owner_id, dataset_ids=[dataset.id], query="x", min_score=2),
    ):
        await expect_status(rpc.Search(bad), grpc.StatusCode.INVALID_ARGUMENT)
    await expect_status(
        rpc.CreateDocuments(
            kpb.CreateDocumentsRequest(
                owner_id=owner_id,
                dataset_id=dataset.id,
                documents=[
                    kpb.NewDocument(name="x", source_type=5, file_type="exe", source_file_id=1)
                ],
            )
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    listed = await rpc.ListDocuments(
        kpb.ListDocumentsRequest(owner_id=owner_id, dataset_id=dataset.id)
    )
    assert [d.id for d in listed.documents] == [document.id]


@pytest.mark.parametrize("name", ["", " ", "x" * 101])
async def test_dataset_names_are_checked(
    registry_channel: grpc.aio.Channel, owner_id: int, name: str
) -> None:
    await expect_status(
        KnowledgeStub(registry_channel).CreateDataset(
            kpb.CreateDatasetRequest(owner_id=owner_id, name=name)
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
