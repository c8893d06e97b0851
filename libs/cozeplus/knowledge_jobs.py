"""Document ingestion as a JetStream work queue, and the vocabulary of documents.

The registry publishes one job per new document; knowledge workers share one durable pull
consumer. A worker keeps its job with in-progress acks while it works; one that dies stops
acking and the job is redelivered after ACK_WAIT_S. A job delivered more than MAX_ATTEMPTS
times (each delivery a worker that died on it) is failed by the next worker without trying
again, so no document stays processing.
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson
from nats.js.api import AckPolicy, ConsumerConfig, RetentionPolicy, StorageType, StreamConfig
from nats.js.client import JetStreamContext

from cozeplus.nats_connection import declare_stream
from cozeplus.subjects import (
    KNOWLEDGE_INGEST_STREAM,
    KNOWLEDGE_INGEST_SUBJECT,
    KNOWLEDGE_WORKER_CONSUMER,
)

# The SDKs' DocumentStatus.
DOCUMENT_PROCESSING = 0
DOCUMENT_COMPLETED = 1
DOCUMENT_FAILED = 9
# The SDKs' DocumentSourceType values we take.
SOURCE_LOCAL_FILE = 0
SOURCE_WEB_PAGE = 1
SOURCE_FILE_ID = 5
FILE_TYPES = ("txt", "md", "html", "pdf", "docx")

ACK_WAIT_S = 30.0
MAX_ATTEMPTS = 3
# One more than the attempts: the last delivery only records the failure.
MAX_DELIVER = MAX_ATTEMPTS + 1
DUPLICATE_WINDOW_S = 120.0


def encode_job(document_id: int) -> bytes:
    return orjson.dumps({"document_id": document_id})


def decode_job(data: bytes) -> int:
    try:
        job = orjson.loads(data)
        document_id = job["document_id"]
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise ValueError("malformed ingestion job") from exc
    if not isinstance(document_id, int) or document_id <= 0:
        raise ValueError("malformed ingestion job")
    return document_id


async def ensure_ingest_stream(js: JetStreamContext, replicas: int = 1) -> None:
    """Creates the work queue, or brings an existing one's replicas to `replicas`."""
    await declare_stream(js, ingest_stream_config(replicas))


def ingest_stream_config(replicas: int = 1) -> StreamConfig:
    return StreamConfig(
        name=KNOWLEDGE_INGEST_STREAM,
        subjects=[KNOWLEDGE_INGEST_SUBJECT],
        retention=RetentionPolicy.WORK_QUEUE,
        storage=StorageType.FILE,
        duplicate_window=DUPLICATE_WINDOW_S,
        num_replicas=replicas,
        max_age=7 * 24 * 3600,
    )


async def ensure_worker_consumer(js: JetStreamContext, config: ConsumerConfig) -> None:
    """The workers' durable consumer (a pull subscription does not recreate a lost one)."""
    await js.add_consumer(KNOWLEDGE_INGEST_STREAM, config)


def worker_consumer_config() -> ConsumerConfig:
    return ConsumerConfig(
        durable_name=KNOWLEDGE_WORKER_CONSUMER,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=ACK_WAIT_S,
        max_deliver=MAX_DELIVER,
        max_ack_pending=-1,
    )


class JetStreamIngestionQueue:
    """The registry's side: publish a job per document (deduplicated by document id). The
    registry declares the stream on every NATS (re)connect; the first enqueue declares it
    too, for callers without that declaration (tests, tools)."""

    def __init__(self, js: JetStreamContext, replicas: int = 1) -> None:
        self._js = js
        self._replicas = replicas
        self._declared = False

    async def enqueue(self, document_ids: Sequence[int]) -> None:
        if not self._declared:
            await ensure_ingest_stream(self._js, self._replicas)
            self._declared = True
        for document_id in document_ids:
            await self._js.publish(
                KNOWLEDGE_INGEST_SUBJECT,
                encode_job(document_id),
                headers={"Nats-Msg-Id": f"document-{document_id}"},
            )
