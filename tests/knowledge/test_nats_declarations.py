"""The ingestion queue and the files bucket follow NATS_REPLICAS like the other streams: created
with the setting, left alone when it matches, brought to it when it differs (on one server a
change to 3 replicas is refused, which shows the update is attempted; the 3-node cluster test,
tests/reliability/test_nats_cluster.py, sees both at 3 replicas)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cozeplus.embedded_nats import EmbeddedNats
from cozeplus.file_store import FILES_STREAM, declare_files_bucket, files_bucket
from cozeplus.knowledge_jobs import ensure_ingest_stream
from cozeplus.nats_connection import NatsConnection
from cozeplus.subjects import KNOWLEDGE_INGEST_STREAM


async def test_the_queue_and_the_bucket_are_declared_with_the_replicas_setting(
    tmp_path: Path,
) -> None:
    with EmbeddedNats(tmp_path / "nats") as server:
        link = NatsConnection(server.url, "test", replicas=1)
        link.declare("queue", lambda js: ensure_ingest_stream(js, link.replicas))
        link.declare("bucket", lambda js: declare_files_bucket(js, link.replicas))
        try:
            await link.connect()
            nc = await link.wait_declared()
            js = nc.jetstream()
            for stream in (KNOWLEDGE_INGEST_STREAM, FILES_STREAM):
                assert (await js.stream_info(stream)).config.num_replicas == 1
            # Idempotent, and the bucket is usable.
            await ensure_ingest_stream(js, 1)
            await declare_files_bucket(js, 1)
            bucket = await files_bucket(js)
            await bucket.put("a/b", b"bytes")
            assert (await bucket.get("a/b")).data == b"bytes"
            # A changed setting is applied to the existing stream (refused by one server).
            with pytest.raises(Exception, match=r"(?i)replicas"):
                await ensure_ingest_stream(js, 3)
            with pytest.raises(Exception, match=r"(?i)replicas"):
                await declare_files_bucket(js, 3)
        finally:
            await link.close()
