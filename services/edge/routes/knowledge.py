"""Files, datasets and documents: the official SDKs' `files`, `datasets` and
`datasets.documents` surfaces (wire contract section 8).

Uploaded bytes go to the JetStream object store (cozeplus.file_store); the registry keeps
the metadata. A base64 document is stored the same way, as a file of its owner, so workers
read every document's bytes from one place. Some SDK calls read payloads outside `data`
(cozepy's document create reads top-level `document_infos`; @coze/api's document list reads
the whole body): those answers carry them in both places.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Self

import grpc
from fastapi import APIRouter, Path, Query, Request
from nats.js.object_store import ObjectStore
from starlette.datastructures import UploadFile
from starlette.responses import Response

from cozeplus.file_store import delete_objects, files_bucket
from cozeplus.knowledge_jobs import FILE_TYPES, SOURCE_FILE_ID, SOURCE_LOCAL_FILE, SOURCE_WEB_PAGE
from cozeplus.rpc.v1 import knowledge_pb2 as kpb
from services.edge import knowledge_mapping as mapping
from services.edge.core.auth import Principal
from services.edge.deps import CurrentUser, Runtime
from services.edge.errors import ApiError
from services.edge.responses import envelope_json
from services.edge.runtime import EdgeRuntime
from services.edge.schemas.common import (
    ERROR_RESPONSES,
    INT32_MAX,
    EmptyData,
    Envelope,
    Id,
    ok,
)
from services.edge.schemas.knowledge import (
    CreateDatasetRequest,
    CreateDocumentsRequest,
    DatasetCreated,
    DatasetList,
    DeleteDocumentsRequest,
    DocumentBaseIn,
    DocumentInfos,
    DocumentPage,
    DocumentProgressList,
    FileOut,
    ListDocumentsRequest,
    ProcessRequest,
    UpdateDatasetRequest,
    UpdateDocumentRequest,
)

log = logging.getLogger(__name__)

router = APIRouter(responses=ERROR_RESPONSES)
NATS_WAIT_S = 5.0
# Multipart framing around an upload's bytes.
UPLOAD_OVERHEAD_BYTES = 64 * 1024


def upload_body_limits(max_file_bytes: int) -> dict[str, int]:
    """Body limits of the routes that carry files (base64 is 4/3 of the bytes)."""
    return {
        "/v1/files/upload": max_file_bytes + UPLOAD_OVERHEAD_BYTES,
        "/open_api/knowledge/document/create": (max_file_bytes * 4) // 3 + UPLOAD_OVERHEAD_BYTES,
    }


@dataclass(frozen=True)
class _Upload:
    file_name: str
    data: bytes
    content_type: str = ""


class _PutObjects:
    """Uploads' bytes put in the object store, as files for the registry to record. When a
    put fails, or the registry refuses the records (over the account's quota, say), the
    bytes put are deleted again: no file will name them."""

    def __init__(self, bucket: ObjectStore) -> None:
        self.bucket = bucket
        self.files: list[kpb.CreateFileRequest] = []

    @classmethod
    async def put(cls, runtime: EdgeRuntime, user: Principal, uploads: Sequence[_Upload]) -> Self:
        try:
            nc = await asyncio.wait_for(runtime.nats.wait_connected(), NATS_WAIT_S)
            bucket = await files_bucket(nc.jetstream(), runtime.settings.nats_replicas)
        except TimeoutError as exc:
            raise ApiError(503, "file storage is unavailable, try again") from exc
        put = cls(bucket)
        try:
            for upload in uploads:
                object_name = f"{user.user_id}/{secrets.token_hex(16)}"
                await bucket.put(object_name, upload.data)
                put.files.append(
                    kpb.CreateFileRequest(
                        owner_id=user.user_id,
                        file_name=upload.file_name,
                        bytes=len(upload.data),
                        content_type=upload.content_type,
                        object_name=object_name,
                    )
                )
        except BaseException as exc:
            await put.forget()
            if isinstance(exc, TimeoutError):
                raise ApiError(503, "file storage is unavailable, try again") from exc
            raise
        return put

    async def forget(self) -> None:
        await delete_objects(self.bucket, [f.object_name for f in self.files])

    @contextlib.asynccontextmanager
    async def recording(self) -> AsyncIterator[None]:
        """Around the registry call that records them: a refusal forgets the bytes. Not a
        call whose outcome is unknown (a deadline): the records may exist."""
        try:
            yield
        except grpc.aio.AioRpcError as err:
            if err.code() in _REFUSALS:
                await self.forget()
            raise


async def _store_files(
    runtime: EdgeRuntime, user: Principal, uploads: Sequence[_Upload]
) -> list[kpb.KnowledgeFile]:
    """The bytes into the object store, then one registry record of them all (CreateFiles:
    all or none)."""
    put = await _PutObjects.put(runtime, user, uploads)
    async with put.recording():
        created = await runtime.registry.knowledge.CreateFiles(
            kpb.CreateFilesRequest(owner_id=user.user_id, files=put.files)
        )
    return list(created.files)


# Registry answers that mean it recorded none of the files.
_REFUSALS = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.FAILED_PRECONDITION,
    }
)


# ------------------------------------------------------------------------------- files


@router.post("/v1/files/upload", tags=["files"], summary="Upload a file (multipart `file`)")
async def upload_file(request: Request, user: CurrentUser, runtime: Runtime) -> Envelope[FileOut]:
    try:
        form = await request.form(max_files=1, max_fields=10)
    except Exception as exc:  # starlette raises several kinds for a bad multipart body
        raise ApiError(400, f"file: a multipart/form-data body is required ({exc})") from exc
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise ApiError(400, "file is required (a multipart/form-data part named `file`)")
    data = await upload.read()
    limit = runtime.settings.max_file_bytes
    if len(data) > limit:
        raise ApiError(400, f"file: {len(data)} bytes is over the limit of {limit} bytes")
    name = (upload.filename or "file").rsplit("/", 1)[-1][:255] or "file"
    (stored,) = await _store_files(runtime, user, [_Upload(name, data, upload.content_type or "")])
    return ok(mapping.file_out(stored))


@router.get("/v1/files/retrieve", tags=["files"], summary="An uploaded file's details")
async def retrieve_file(
    file_id: Annotated[Id, Query()], user: CurrentUser, runtime: Runtime
) -> Envelope[FileOut]:
    file = await runtime.registry.knowledge.GetFile(
        kpb.FileRef(owner_id=user.user_id, file_id=file_id)
    )
    return ok(mapping.file_out(file))


# ---------------------------------------------------------------------------- datasets


@router.post("/v1/datasets", tags=["datasets"], summary="Create a dataset")
async def create_dataset(
    body: CreateDatasetRequest, user: CurrentUser, runtime: Runtime
) -> Envelope[DatasetCreated]:
    dataset = await runtime.registry.knowledge.CreateDataset(
        kpb.CreateDatasetRequest(
            owner_id=user.user_id,
            space_id=body.space_id or 0,
            name=body.name,
            description=body.description,
            format_type=body.format_type,
            icon_file_id=body.file_id or 0,
        )
    )
    return ok(DatasetCreated(dataset_id=str(dataset.id)))


@router.get("/v1/datasets", tags=["datasets"], summary="List datasets")
async def list_datasets(
    user: CurrentUser,
    runtime: Runtime,
    space_id: Annotated[Id | None, Query()] = None,
    name: Annotated[str, Query(max_length=100)] = "",
    # cozepy sends `format_type=` (empty) when not filtering.
    format_type: Annotated[str, Query(pattern="^[012]?$")] = "",
    page_num: Annotated[int, Query(ge=1, le=INT32_MAX)] = 1,
    page_size: Annotated[int, Query(ge=1, le=300)] = 10,
) -> Envelope[DatasetList]:
    request = kpb.ListDatasetsRequest(
        owner_id=user.user_id,
        space_id=space_id or 0,
        name=name,
        page_num=page_num,
        page_size=min(page_size, 100),
    )
    if format_type:
        request.format_type = int(format_type)
    page = await runtime.registry.knowledge.ListDatasets(request)
    return ok(
        DatasetList(
            total_count=page.total, dataset_list=[mapping.dataset_out(d) for d in page.datasets]
        )
    )


@router.put("/v1/datasets/{dataset_id}", tags=["datasets"], summary="Update a dataset")
async def update_dataset(
    dataset_id: Annotated[Id, Path()],
    body: UpdateDatasetRequest,
    user: CurrentUser,
    runtime: Runtime,
) -> Envelope[EmptyData]:
    await runtime.registry.knowledge.UpdateDataset(
        kpb.UpdateDatasetRequest(
            owner_id=user.user_id,
            dataset_id=dataset_id,
            name=body.name,
            description=body.description,
            icon_file_id=body.file_id or 0,
        )
    )
    return ok(EmptyData())


@router.delete(
    "/v1/datasets/{dataset_id}", tags=["datasets"], summary="Delete a dataset and its documents"
)
async def delete_dataset(
    dataset_id: Annotated[Id, Path()], user: CurrentUser, runtime: Runtime
) -> Envelope[EmptyData]:
    await runtime.registry.knowledge.DeleteDataset(
        kpb.DatasetRef(owner_id=user.user_id, dataset_id=dataset_id)
    )
    return ok(EmptyData())


@router.post(
    "/v1/datasets/{dataset_id}/process",
    tags=["datasets"],
    summary="Processing progress of documents",
)
async def dataset_process(
    dataset_id: Annotated[Id, Path()],
    user: CurrentUser,
    runtime: Runtime,
    body: ProcessRequest | None = None,
) -> Envelope[DocumentProgressList]:
    documents = await runtime.registry.knowledge.DocumentProgress(
        kpb.DocumentProgressRequest(
            owner_id=user.user_id,
            dataset_id=dataset_id,
            document_ids=body.document_ids if body is not None else [],
        )
    )
    return ok(DocumentProgressList(data=[mapping.progress_out(d) for d in documents.documents]))


# --------------------------------------------------------------------------- documents


@dataclass
class _PendingDocument:
    """A document checked and ready to create; `content` is base64 bytes still to store."""

    document: kpb.NewDocument
    content: bytes | None = None


async def _check_document(
    runtime: EdgeRuntime, user: Principal, index: int, base: DocumentBaseIn
) -> _PendingDocument:
    where = f"document_bases[{index}].source_info"
    source = base.source_info
    rule = base.update_rule
    document = kpb.NewDocument(
        name=base.name,
        update_type=rule.update_type if rule else 0,
        update_interval=rule.update_interval if rule else 0,
    )
    if source.web_url:
        document.source_type = SOURCE_WEB_PAGE
        document.web_url = source.web_url
        document.file_type = "html"
        return _PendingDocument(document)
    file_type = (source.file_type or "").lower().lstrip(".")
    if source.file_base64 is not None:
        if file_type not in FILE_TYPES:
            raise ApiError(400, f"{where}.file_type must be one of {', '.join(FILE_TYPES)}")
        try:
            data = base64.b64decode(source.file_base64, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ApiError(400, f"{where}.file_base64 is not valid base64") from exc
        limit = runtime.settings.max_file_bytes
        if len(data) > limit:
            raise ApiError(
                400, f"{where}.file_base64: {len(data)} bytes is over the limit of {limit} bytes"
            )
        document.source_type = SOURCE_LOCAL_FILE
        document.file_type = file_type
        return _PendingDocument(document, data)
    if source.source_file_id is not None:
        file = await runtime.registry.knowledge.GetFile(
            kpb.FileRef(owner_id=user.user_id, file_id=source.source_file_id)
        )
        if not file_type:
            file_type = file.file_name.rsplit(".", 1)[-1].lower() if "." in file.file_name else ""
        if file_type not in FILE_TYPES:
            raise ApiError(
                400,
                f"{where}.file_type: cannot tell the type of {file.file_name!r}; "
                f"send one of {', '.join(FILE_TYPES)}",
            )
        document.source_type = SOURCE_FILE_ID
        document.source_file_id = file.id
        document.file_type = file_type
        return _PendingDocument(document)
    raise ApiError(400, f"{where} needs file_base64, source_file_id or web_url")


@router.post(
    "/open_api/knowledge/document/create",
    tags=["documents"],
    summary="Add documents to a dataset (processed asynchronously)",
    response_model=Envelope[DocumentInfos],
)
async def create_documents(
    body: CreateDocumentsRequest, user: CurrentUser, runtime: Runtime
) -> Response:
    # The dataset first: a foreign or unknown one stores no file.
    await runtime.registry.knowledge.GetDataset(
        kpb.DatasetRef(owner_id=user.user_id, dataset_id=body.dataset_id)
    )
    # Every document checked before any byte is stored: a bad one stores nothing.
    pending = [
        await _check_document(runtime, user, i, base) for i, base in enumerate(body.document_bases)
    ]
    # The base64 ones' bytes go to the object store first; the registry records each as its
    # document's own file, with the documents, in one transaction (all or none, their sum
    # held against the quota), and deletes it with its document.
    with_content = [item for item in pending if item.content is not None]
    put = None
    if with_content:
        uploads = [
            _Upload(f"{i.document.name}.{i.document.file_type}", i.content or b"")
            for i in with_content
        ]
        put = await _PutObjects.put(runtime, user, uploads)
        for item, file in zip(with_content, put.files, strict=True):
            item.document.content.CopyFrom(file)
    strategy = body.chunk_strategy
    async with put.recording() if put else contextlib.nullcontext():
        created = await runtime.registry.knowledge.CreateDocuments(
            kpb.CreateDocumentsRequest(
                owner_id=user.user_id,
                dataset_id=body.dataset_id,
                documents=[item.document for item in pending],
                chunk_strategy=kpb.ChunkStrategy(**strategy.model_dump()) if strategy else None,
                format_type=body.format_type,
            )
        )
    infos = [mapping.document_out(d).model_dump() for d in created.documents]
    return envelope_json({"document_infos": infos}, document_infos=infos)


@router.post("/open_api/knowledge/document/update", tags=["documents"], summary="Rename a document")
async def update_document(
    body: UpdateDocumentRequest, user: CurrentUser, runtime: Runtime
) -> Envelope[EmptyData]:
    request = kpb.UpdateDocumentRequest(owner_id=user.user_id, document_id=body.document_id)
    if body.document_name is not None:
        request.name = body.document_name
    if body.update_rule is not None:
        request.update_type = body.update_rule.update_type
        request.update_interval = body.update_rule.update_interval
    await runtime.registry.knowledge.UpdateDocument(request)
    return ok(EmptyData())


@router.post("/open_api/knowledge/document/delete", tags=["documents"], summary="Delete documents")
async def delete_documents(
    body: DeleteDocumentsRequest, user: CurrentUser, runtime: Runtime
) -> Envelope[EmptyData]:
    await runtime.registry.knowledge.DeleteDocuments(
        kpb.DeleteDocumentsRequest(owner_id=user.user_id, document_ids=body.document_ids)
    )
    return ok(EmptyData())


@router.post(
    "/open_api/knowledge/document/list",
    tags=["documents"],
    summary="List a dataset's documents",
    response_model=Envelope[DocumentPage],
)
async def list_documents(
    body: ListDocumentsRequest, user: CurrentUser, runtime: Runtime
) -> Response:
    page = await runtime.registry.knowledge.ListDocuments(
        kpb.ListDocumentsRequest(
            owner_id=user.user_id,
            dataset_id=body.dataset_id,
            page_num=body.page,
            page_size=body.size or body.page_size or 10,
        )
    )
    infos: list[dict[str, Any]] = [mapping.document_out(d).model_dump() for d in page.documents]
    return envelope_json(
        {"document_infos": infos, "total": page.total}, document_infos=infos, total=page.total
    )
