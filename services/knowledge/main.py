"""Knowledge worker entry point: ingests documents from the JetStream work queue.

Workers share one durable pull consumer, so each job goes to exactly one of them and more
workers ingest more at once. While a worker processes a document it sends in-progress acks;
it acks once the registry stored the outcome. A worker that dies stops acking and the job is
redelivered to another after the ack wait (see cozeplus.knowledge_jobs for the limit).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from nats.aio.msg import Msg

from cozeplus import heap
from cozeplus.embeddings import EmbeddingClient
from cozeplus.file_store import declare_files_bucket
from cozeplus.knowledge_jobs import (
    decode_job,
    ensure_ingest_stream,
    ensure_worker_consumer,
    worker_consumer_config,
)
from cozeplus.model_catalog import ModelCatalog
from cozeplus.nats_connection import NatsConnection
from cozeplus.rpc.v1.knowledge_pb2_grpc import KnowledgeStub
from cozeplus.service_auth import service_aio_channel
from cozeplus.subjects import (
    KNOWLEDGE_INGEST_STREAM,
    KNOWLEDGE_INGEST_SUBJECT,
    KNOWLEDGE_WORKER_CONSUMER,
)
from cozeplus.work_queue import PullPool
from cozeplus.worker_health import health_server
from services.knowledge.ingestion import IngestionDeps, ingest
from services.knowledge.settings import KnowledgeSettings
from services.knowledge.web_page import WebLimits

log = logging.getLogger("cozeplus.knowledge")


class IngestionPool(PullPool):
    """Pulls jobs while it has free slots and ingests each as its own task."""

    def __init__(self, deps: IngestionDeps, concurrency: int, keepalive_s: float) -> None:
        super().__init__(concurrency, fetch_batch=concurrency, log=log)
        self.deps = deps
        self.keepalive_s = keepalive_s

    async def _handle(self, msg: Msg) -> None:
        try:
            document_id = decode_job(msg.data)
        except ValueError:
            log.error("dropping a malformed job: %r", msg.data[:200])
            await msg.term()
            return
        keepalive = asyncio.create_task(self._keep_alive(msg))
        try:
            await ingest(self.deps, document_id, msg.metadata.num_delivered)
            await msg.ack()
        except asyncio.CancelledError:
            raise
        except Exception:
            # Registry or NATS trouble: let another attempt (maybe another worker) retry.
            log.exception("document %d: ingestion failed; it will be retried", document_id)
            with contextlib.suppress(Exception):
                await msg.nak(delay=2.0)
        finally:
            keepalive.cancel()

    async def _keep_alive(self, msg: Msg) -> None:
        while True:
            await asyncio.sleep(self.keepalive_s)
            with contextlib.suppress(Exception):
                await msg.in_progress()

    async def drain(self, grace_s: float) -> None:
        if not self._tasks:
            return
        _, pending = await asyncio.wait(set(self._tasks), timeout=grace_s)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=5)


async def serve(settings: KnowledgeSettings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    catalog = ModelCatalog.load(settings.models_file)
    config = worker_consumer_config()
    config.ack_wait = settings.ack_wait_s
    # Declared on the first connection and again after every reconnect: a NATS that lost
    # its storage gets the queue, the bucket and the consumer back without a restart.
    link = NatsConnection(settings.nats_url, "cozeplus-knowledge", settings.nats_replicas)
    link.declare("the document ingestion queue", lambda js: ensure_ingest_stream(js, link.replicas))
    link.declare("the files bucket", lambda js: declare_files_bucket(js, link.replicas))
    link.declare("the workers' consumer", lambda js: ensure_worker_consumer(js, config))
    await link.connect()
    nc = await link.wait_declared()
    js = nc.jetstream()
    channel = service_aio_channel(settings.registry_addr, settings.service_token)
    embeddings = EmbeddingClient(catalog.embedding) if catalog.embedding else None
    deps = IngestionDeps(
        knowledge=KnowledgeStub(channel),
        js=js,
        embeddings=embeddings,
        web_limits=WebLimits(
            timeout_s=settings.web_timeout_s,
            max_bytes=settings.max_document_bytes,
            max_redirects=settings.web_max_redirects,
            allowed_networks=WebLimits.parse_networks(settings.web_allowed_networks),
        ),
        max_document_bytes=settings.max_document_bytes,
        max_chunks=settings.max_chunks,
    )
    pool = IngestionPool(deps, settings.concurrency, keepalive_s=settings.ack_wait_s / 3)
    subscription = await js.pull_subscribe(
        KNOWLEDGE_INGEST_SUBJECT,
        durable=KNOWLEDGE_WORKER_CONSUMER,
        stream=KNOWLEDGE_INGEST_STREAM,
        config=config,
    )
    health = None
    health_task: asyncio.Task[None] | None = None
    if settings.health_port:
        health = health_server(settings.health_host, settings.health_port, lambda: nc.is_connected)
        health_task = asyncio.create_task(health.serve())
    # Exactly this line: launchers may wait for it.
    log.info("knowledge worker ready: concurrency %d", settings.concurrency)

    consumer = asyncio.create_task(pool.consume(subscription, stop))
    await stop.wait()
    log.info("knowledge worker stopping")
    await asyncio.wait({consumer}, timeout=5.0)
    if not consumer.done():
        consumer.cancel()
    await subscription.unsubscribe()
    await pool.drain(10.0)
    if health is not None and health_task is not None:
        health.should_exit = True
        await health_task
    if embeddings is not None:
        await embeddings.close()
    await channel.close()
    await link.close()


def main() -> None:
    settings = KnowledgeSettings()
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    heap.settle()
    asyncio.run(serve(settings))
