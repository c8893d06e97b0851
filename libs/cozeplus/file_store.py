"""Uploaded files' bytes, in the JetStream object store.

Why there: every node (edges that take uploads, workers that ingest documents, runners that
send images to models) already talks to NATS, so files need no shared disk and no extra
service, and they get JetStream's replication (`replicas`). Limits: an object is read into
memory whole by nats-py's get(), so uploads are capped (COZEPLUS_EDGE_MAX_FILE_BYTES,
default 20 MiB); the bucket has no per-account quota; and a NATS cluster is not a CDN, so
images reach models as data URLs rather than links.
"""

from __future__ import annotations

from nats.js.api import ObjectStoreConfig
from nats.js.client import JetStreamContext
from nats.js.errors import BucketNotFoundError
from nats.js.object_store import ObjectStore

from cozeplus.subjects import FILES_BUCKET


async def files_bucket(js: JetStreamContext, replicas: int = 1) -> ObjectStore:
    try:
        return await js.object_store(FILES_BUCKET)
    except BucketNotFoundError:
        config = ObjectStoreConfig(bucket=FILES_BUCKET, replicas=replicas)
        return await js.create_object_store(FILES_BUCKET, config=config)


async def read_file(js: JetStreamContext, object_name: str) -> bytes:
    bucket = await files_bucket(js)
    result = await bucket.get(object_name)
    return result.data or b""
