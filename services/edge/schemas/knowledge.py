"""Files, datasets and documents as the official SDKs send and parse them (wire contract
section 8). Ids are strings in every response (the SDKs send `Agw-Js-Conv: str`)."""

from __future__ import annotations

from pydantic import Field

from services.edge.schemas.common import INT32_MAX, Id, NonEmptyStr, RequestModel, ResponseModel

# ------------------------------------------------------------------------------ requests


class CreateDatasetRequest(RequestModel):
    name: NonEmptyStr
    space_id: Id | None = Field(default=None, description="Absent: the personal space.")
    format_type: int = Field(default=0, ge=0, le=2, description="0 text, 1 table, 2 image.")
    description: str = ""
    file_id: Id | None = Field(default=None, description="Icon file, from /v1/files/upload.")


class UpdateDatasetRequest(RequestModel):
    name: NonEmptyStr
    description: str = ""
    file_id: Id | None = None


class ProcessRequest(RequestModel):
    document_ids: list[Id] = Field(default_factory=list)


class ChunkStrategyIn(RequestModel):
    chunk_type: int = Field(default=0, ge=0, le=1)
    separator: str = Field(default="", max_length=100)
    max_tokens: int = Field(default=0, ge=0, le=INT32_MAX)
    remove_extra_spaces: bool = False
    remove_urls_emails: bool = False
    caption_type: int = Field(default=0, ge=0, le=INT32_MAX)


class SourceInfoIn(RequestModel):
    file_base64: str | None = None
    file_type: str | None = Field(default=None, max_length=16)
    web_url: str | None = None
    source_file_id: Id | None = None
    document_source: int | None = None


class UpdateRuleIn(RequestModel):
    update_type: int = Field(default=0, ge=0, le=1)
    update_interval: int = Field(default=0, ge=0, le=INT32_MAX)


class DocumentBaseIn(RequestModel):
    name: NonEmptyStr
    source_info: SourceInfoIn
    update_rule: UpdateRuleIn | None = None


class CreateDocumentsRequest(RequestModel):
    dataset_id: Id
    document_bases: list[DocumentBaseIn] = Field(min_length=1, max_length=100)
    chunk_strategy: ChunkStrategyIn | None = None
    format_type: int = Field(default=0, ge=0, le=2)


class UpdateDocumentRequest(RequestModel):
    document_id: Id
    document_name: str | None = None
    update_rule: UpdateRuleIn | None = None


class DeleteDocumentsRequest(RequestModel):
    document_ids: list[Id] = Field(min_length=1, max_length=100)


class ListDocumentsRequest(RequestModel):
    dataset_id: Id
    page: int = Field(default=1, ge=1, le=INT32_MAX)
    # cozepy sends `size`, @coze/api `page_size`.
    size: int | None = Field(default=None, ge=1, le=100)
    page_size: int | None = Field(default=None, ge=1, le=100)


# ----------------------------------------------------------------------------- responses


class FileOut(ResponseModel):
    id: str
    bytes: int
    created_at: int
    file_name: str


class DatasetCreated(ResponseModel):
    dataset_id: str


class ChunkStrategyOut(ResponseModel):
    chunk_type: int
    separator: str
    max_tokens: int
    remove_extra_spaces: bool
    remove_urls_emails: bool
    caption_type: int


class DatasetOut(ResponseModel):
    dataset_id: str
    name: str
    description: str
    space_id: str
    status: int = Field(description="1 enabled.")
    format_type: int
    can_edit: bool
    icon_url: str
    icon_uri: str
    doc_count: int
    file_list: list[str]
    hit_count: int
    bot_used_count: int
    slice_count: int
    all_file_size: int
    failed_file_list: list[str]
    processing_file_list: list[str]
    processing_file_id_list: list[str]
    avatar_url: str
    creator_id: str
    creator_name: str
    create_time: int
    update_time: int


class DatasetList(ResponseModel):
    total_count: int
    dataset_list: list[DatasetOut]


class DocumentOut(ResponseModel):
    document_id: str
    name: str
    char_count: int
    chunk_strategy: ChunkStrategyOut
    format_type: int
    hit_count: int
    size: int
    slice_count: int
    source_type: int
    status: int = Field(description="0 processing, 1 completed, 9 failed.")
    status_descript: str
    type: str
    update_interval: int
    update_type: int
    create_time: int
    update_time: int
    tos_uri: str
    web_url: str


class DocumentProgressOut(ResponseModel):
    document_id: str
    document_name: str
    url: str
    size: int
    type: str
    status: int
    progress: int
    status_descript: str
    update_type: int
    update_interval: int
    remaining_time: int


class DocumentProgressList(ResponseModel):
    data: list[DocumentProgressOut]


class DocumentInfos(ResponseModel):
    document_infos: list[DocumentOut]


class DocumentPage(ResponseModel):
    document_infos: list[DocumentOut]
    total: int
