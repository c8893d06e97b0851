"""Uploaded files' bytes, in the JetStream object store.

Why there: every node (edges that take uploads, workers that ingest documents, runners that
send images to models) already talks to NATS, so files need no shared disk and no extra
service, and they get JetStream's replication (`replicas`). Limits: an object is read into
memory whole by nats-py's get(), so uploads are capped (COZEPLUS_EDGE_MAX_FILE_BYTES,
default 20 MiB); each account's total is the registry's quota (COZEPLUS_REGISTRY_
FILE_QUOTA_BYTES), checked when the file is recorded; and a NATS cluster is not a CDN, so
images reach models as data URLs rather than links. Bytes are deleted by the edge (a put
whose record was refused) and the registry (a base64 document's file, with its document).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace

from nats.js.api import ObjectStoreConfig
from nats.js.client import JetStreamContext
from nats.js.errors import (
    BucketNotFoundError,
    NotFoundError,
    ObjectDeletedError,
    ObjectNotFoundError,
)
from nats.js.object_store import ObjectStore

from cozeplus.subjects import FILES_BUCKET

log = logging.getLogger(__name__)

# The stream behind an object store bucket (nats-py's and the server's naming).
FILES_STREAM = f"OBJ_{FILES_BUCKET}"


async def declare_files_bucket(js: JetStreamContext, replicas: int = 1) -> None:
    """Creates the bucket, or brings an existing one's replicas to `replicas` (a
    NatsConnection declaration of the services that write or read files)."""
    try:
        info = await js.stream_info(FILES_STREAM)
    except NotFoundError:
        config = ObjectStoreConfig(bucket=FILES_BUCKET, replicas=replicas)
        await js.create_object_store(FILES_BUCKET, config=config)
        log.info("created bucket %s (%d replicas)", FILES_BUCKET, replicas)
        return
    if (info.config.num_replicas or 1) != replicas:
        await js.update_stream(replace(info.config, num_replicas=replicas))
        log.info("bucket %s: replicas -> %d", FILES_BUCKET, replicas)


async def files_bucket(js: JetStreamContext, replicas: int = 1) -> ObjectStore:
    """The bucket; created here only if no declaration made it yet."""
    try:
        return await js.object_store(FILES_BUCKET)
    except BucketNotFoundError:
        await declare_files_bucket(js, replicas)
        return await js.object_store(FILES_BUCKET)


async def read_file(js: JetStreamContext, object_name: str) -> bytes:
    bucket = await files_bucket(js)
    result = await bucket.get(object_name)
    return result.data or b""


async def delete_objects(bucket: ObjectStore, object_names: Sequence[str]) -> None:
    """Each object's bytes; one already gone is done, one that fails is logged and left (no
    record names it any more, so no quota counts it)."""
    for object_name in object_names:
        try:
            await bucket.delete(object_name)
        except (ObjectNotFoundError, ObjectDeletedError):
            pass
        except Exception:
            log.warning("could not delete file object %s", object_name, exc_info=True)


class FileBucket:
    """The bucket's bytes for a service that deletes files it no longer records (the
    registry, after committing the deletion of documents that owned them)."""

    def __init__(self, js: JetStreamContext, replicas: int = 1) -> None:
        self._js = js
        self._replicas = replicas

    async def delete(self, object_names: Sequence[str]) -> None:
        await delete_objects(await files_bucket(self._js, self._replicas), object_names)
