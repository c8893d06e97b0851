"""Images uploaded through /v1/files/upload, as data URLs a vision model can read.

A message may name an image by `file_id` (an object_string item). Providers cannot reach
our object store, so the runner reads the bytes (for the chat's owner only: another
account's file id is not found) and inlines them as a `data:` URL, which OpenAI-compatible
vision APIs accept in `image_url`. Called for vision models by ChatRun's
`_gather_context` step (services/runner/prompt_context.py); the prompt builder puts the URLs
in with `with_file_urls` (cozeplus.message_content). A file that is not an image (by its
first bytes, else its declared type or name) stays a note: providers reject other data URLs.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Iterable
from typing import TYPE_CHECKING

import grpc
from nats.js.client import JetStreamContext

from cozeplus.file_store import read_file
from cozeplus.message_content import data_url
from cozeplus.rpc.v1 import knowledge_pb2 as kpb

if TYPE_CHECKING:
    from cozeplus.rpc.v1.knowledge_pb2_grpc import KnowledgeAsyncStub

# Larger images are left as they are (the model then sees the bare file id).
MAX_IMAGE_BYTES = 10 * 1024 * 1024
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF8", "image/gif"),
    (b"RIFF", "image/webp"),
)


def image_type(data: bytes, file_name: str, declared: str) -> str:
    for magic, content_type in _MAGIC:
        if data.startswith(magic):
            return content_type
    if declared.startswith("image/"):
        return declared
    return mimetypes.guess_type(file_name)[0] or "application/octet-stream"


async def image_urls(
    knowledge: KnowledgeAsyncStub,
    js: JetStreamContext,
    *,
    owner_id: int,
    file_ids: Iterable[str],
    max_bytes: int = MAX_IMAGE_BYTES,
) -> dict[str, str]:
    """file id -> data URL, for the ids that are the owner's files and small enough."""
    urls: dict[str, str] = {}
    for file_id in dict.fromkeys(file_ids):
        if not file_id.isdigit() or file_id in urls:
            continue
        try:
            file = await knowledge.GetFile(kpb.FileRef(owner_id=owner_id, file_id=int(file_id)))
        except grpc.aio.AioRpcError as err:
            if err.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT):
                continue
            raise
        if file.bytes > max_bytes:
            continue
        data = await read_file(js, file.object_name)
        content_type = image_type(data, file.file_name, file.content_type)
        if content_type.startswith("image/"):
            urls[file_id] = data_url(data, content_type)
    return urls
