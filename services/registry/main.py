"""Entry point: migrate the database, then serve the registry's gRPC services (BotRegistry,
Accounts, Conversations, RunLiveness, MessageFeedback, Variables, BotPublishing, Knowledge,
Plugins; servicers in services/registry/servicers/, behind the service credential and one
error interceptor).

Also served: grpc.health.v1 (overall "" and each service) and server reflection.
SIGTERM/SIGINT mark every service NOT_SERVING, then in-flight RPCs get
`grace_period_s` to finish before the server stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from nats.aio.client import Client as NATS

from cozeplus import event_loop, heap
from cozeplus.embeddings import EmbeddingClient
from cozeplus.file_store import FileBucket
from cozeplus.ids import IdGenerator, lease_node_id, node_bucket_config
from cozeplus.knowledge_jobs import JetStreamIngestionQueue, ensure_ingest_stream
from cozeplus.model_catalog import ModelCatalog
from cozeplus.nats_connection import NatsConnection, declare_key_value
from cozeplus.outbound import OutboundPolicy, parse_networks
from cozeplus.rpc.v1 import conversations_pb2 as cpb
from cozeplus.rpc.v1 import conversations_pb2_grpc as cpb_grpc
from cozeplus.rpc.v1 import knowledge_pb2 as kpb
from cozeplus.rpc.v1 import knowledge_pb2_grpc as kpb_grpc
from cozeplus.rpc.v1 import liveness_pb2 as lpb
from cozeplus.rpc.v1 import liveness_pb2_grpc as lpb_grpc
from cozeplus.rpc.v1 import plugins_pb2 as ppb
from cozeplus.rpc.v1 import plugins_pb2_grpc as ppb_grpc
from cozeplus.rpc.v1 import registry_pb2 as pb
from cozeplus.rpc.v1 import registry_pb2_grpc as pb_grpc
from cozeplus.rpc.v1 import user_state_pb2 as us
from cozeplus.rpc.v1 import user_state_pb2_grpc as us_grpc
from cozeplus.service_auth import MISSING_TOKEN_MSG, ServiceTokenInterceptor
from services.registry.accounts import AccountService, NatsRevocationBroadcast
from services.registry.bot_changes import NatsBotChanges
from services.registry.bots import BotService
from services.registry.conversations import ConversationService
from services.registry.database import Database
from services.registry.knowledge import KnowledgeService
from services.registry.knowledge_search import KnowledgeSearch
from services.registry.knowledge_vectors import open_chunk_vectors
from services.registry.mcp_discovery import McpToolDiscovery
from services.registry.plugins import PluginService
from services.registry.run_events import NatsRunEndNotifier
from services.registry.run_liveness import (
    SWEEPER_LEASE,
    DatabaseLease,
    RunDeadlines,
    RunLivenessService,
    RunSweeper,
)
from services.registry.secret_box import SecretBox
from services.registry.servicers.accounts import AccountsServicer
from services.registry.servicers.bots import BotRegistryServicer
from services.registry.servicers.conversations import ConversationsServicer
from services.registry.servicers.errors import ErrorInterceptor
from services.registry.servicers.knowledge import KnowledgeServicer
from services.registry.servicers.liveness import RunLivenessServicer
from services.registry.servicers.plugins import PluginsServicer
from services.registry.servicers.user_state import (
    BotPublishingServicer,
    MessageFeedbackServicer,
    VariablesServicer,
)
from services.registry.settings import RegistrySettings
from services.registry.user_state import FeedbackService, VariableService

SERVICE_NAMES = (
    pb.DESCRIPTOR.services_by_name["BotRegistry"].full_name,
    pb.DESCRIPTOR.services_by_name["Accounts"].full_name,
    cpb.DESCRIPTOR.services_by_name["Conversations"].full_name,
    ppb.DESCRIPTOR.services_by_name["Plugins"].full_name,
    *(s.full_name for s in us.DESCRIPTOR.services_by_name.values()),
    lpb.DESCRIPTOR.services_by_name["RunLiveness"].full_name,
    kpb.DESCRIPTOR.services_by_name["Knowledge"].full_name,
)

# Largest request the registry takes (gRPC's default is 4 MiB).
MAX_MESSAGE_BYTES = 64 * 1024 * 1024

log = logging.getLogger("services.registry")


async def serve(settings: RegistrySettings) -> None:
    if not settings.service_token:
        raise SystemExit(f"registry: {MISSING_TOKEN_MSG}")
    catalog = ModelCatalog.load(settings.models_file)
    if settings.default_model not in catalog:
        raise SystemExit(
            f"default model {settings.default_model!r} is not in the model catalog "
            f"(known: {', '.join(catalog.ids)}); set COZEPLUS_REGISTRY_DEFAULT_MODEL "
            "or add it to COZEPLUS_REGISTRY_MODELS_FILE"
        )
    database = Database(settings.resolved_database_url())
    try:
        log.info("migrating %s database to the latest schema", database.backend)
        await asyncio.to_thread(database.upgrade_to_head)
        # Never gives up reconnecting: without NATS, revocations cannot reach the edges.
        link = NatsConnection(settings.nats_url, "cozeplus-registry", settings.nats_replicas)
        link.declare(
            "the node id bucket",
            lambda js: declare_key_value(js, node_bucket_config(link.replicas)),
        )
        link.declare(
            "the document ingestion queue", lambda js: ensure_ingest_stream(js, link.replicas)
        )
        await link.connect()
        nc = await link.wait_declared()
        try:
            await _serve_with(settings, catalog, database, nc)
        finally:
            await link.close()
    finally:
        database.close()


async def _serve_with(
    settings: RegistrySettings,
    catalog: ModelCatalog,
    database: Database,
    nc: NATS,
) -> None:
    async with contextlib.AsyncExitStack() as stack:
        node_id = settings.node_id
        if node_id is None:
            owner = f"registry@{socket.gethostname()}:{os.getpid()}"
            node_id = await stack.enter_async_context(
                lease_node_id(nc, owner, settings.nats_replicas)
            )
        ids = IdGenerator(node_id)
        bot_service = BotService(database, ids, catalog, settings.default_model, NatsBotChanges(nc))
        account_service = await asyncio.to_thread(
            # Builds an argon2 hash at start-up; keep it off the event loop.
            AccountService,
            database,
            ids,
            NatsRevocationBroadcast(nc),
            session_ttl_s=settings.session_ttl_s,
        )

        plugin_service = PluginService(
            database,
            ids,
            SecretBox.from_settings(settings.secret_key, settings.data_dir),
            McpToolDiscovery(
                OutboundPolicy(
                    allowed_networks=parse_networks(settings.plugin_allowed_networks),
                    timeout_s=settings.plugin_timeout_s,
                    max_response_bytes=settings.plugin_max_response_bytes,
                )
            ),
        )

        server = grpc.aio.server(
            # The credential first: a caller without it learns nothing else (ResolveTools
            # answers with plugins' decrypted secrets).
            interceptors=[ServiceTokenInterceptor(settings.service_token), ErrorInterceptor()],
            # A knowledge worker hands over a whole document's chunks (and vectors) at once.
            options=[("grpc.max_receive_message_length", MAX_MESSAGE_BYTES)],
        )
        pb_grpc.add_BotRegistryServicer_to_server(BotRegistryServicer(bot_service), server)
        pb_grpc.add_AccountsServicer_to_server(AccountsServicer(account_service), server)
        conversation_service = ConversationService(
            database,
            ids,
            tool_outputs_timeout_s=settings.tool_outputs_timeout_s,
            run_silence_s=settings.run_silence_s,
        )
        ppb_grpc.add_PluginsServicer_to_server(PluginsServicer(plugin_service), server)
        notifier = NatsRunEndNotifier(nc)
        lpb_grpc.add_RunLivenessServicer_to_server(
            RunLivenessServicer(RunLivenessService(database, notifier)), server
        )
        sweeper = RunSweeper(
            database,
            notifier,
            DatabaseLease(
                database,
                SWEEPER_LEASE,
                f"registry@{socket.gethostname()}:{os.getpid()}",
                ttl_s=3 * settings.run_sweep_interval_s,
            ),
            RunDeadlines(
                created_s=settings.run_created_s,
                in_progress_s=settings.run_silence_s,
                # Only for a paused run without its own paused_until (see RunDeadlines).
                requires_action_s=settings.tool_outputs_timeout_s,
            ),
            interval_s=settings.run_sweep_interval_s,
        )
        cpb_grpc.add_ConversationsServicer_to_server(
            ConversationsServicer(conversation_service), server
        )
        us_grpc.add_MessageFeedbackServicer_to_server(
            MessageFeedbackServicer(FeedbackService(database)), server
        )
        us_grpc.add_VariablesServicer_to_server(
            VariablesServicer(VariableService(database, ids)), server
        )
        us_grpc.add_BotPublishingServicer_to_server(BotPublishingServicer(bot_service), server)
        embedder = None
        if catalog.embedding is not None:
            embeddings = EmbeddingClient(catalog.embedding)
            stack.push_async_callback(embeddings.close)
            embedder = embeddings.embed_one
        vectors = await open_chunk_vectors(database)
        knowledge_service = KnowledgeService(
            database,
            ids,
            JetStreamIngestionQueue(nc.jetstream(), settings.nats_replicas),
            vectors,
            file_quota_bytes=settings.file_quota_bytes,
            objects=FileBucket(nc.jetstream(), settings.nats_replicas),
        )
        kpb_grpc.add_KnowledgeServicer_to_server(
            KnowledgeServicer(
                knowledge_service,
                KnowledgeSearch(database, embedder, vectors),
            ),
            server,
        )
        health_servicer = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
        reflection.enable_server_reflection(
            (*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), server
        )
        port = server.add_insecure_port(settings.listen)
        host = settings.listen.rsplit(":", 1)[0]
        await server.start()
        heap.settle()

        for service in ("", *SERVICE_NAMES):
            await health_servicer.set(service, health_pb2.HealthCheckResponse.SERVING)
        log.info("id node %d", node_id)
        # Exactly this line: launchers wait for it and read the bound port from it.
        log.info("registry listening on %s:%d", host, port)

        sweeping = asyncio.create_task(sweeper.run(), name="run-sweeper")

        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        document_sweep = asyncio.create_task(
            _fail_stalled_documents(knowledge_service, settings, stop)
        )
        await stop.wait()
        await document_sweep

        sweeper.stop()
        await asyncio.wait({sweeping}, timeout=settings.grace_period_s)

        log.info("shutting down; in-flight calls get %.1fs", settings.grace_period_s)
        await health_servicer.enter_graceful_shutdown()
        await server.stop(settings.grace_period_s)
    log.info("registry stopped")


async def _fail_stalled_documents(
    service: KnowledgeService, settings: RegistrySettings, stop: asyncio.Event
) -> None:
    """Fails documents stuck in processing (every replica may run it: one conditional
    UPDATE, so a document is failed once)."""
    while not stop.is_set():
        try:
            for document_id in await service.fail_stalled_documents(
                stalled_s=settings.document_stalled_s
            ):
                log.warning("document %d: processing stalled; failed", document_id)
        except Exception:
            log.exception("failing stalled documents failed; retrying")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=settings.document_sweep_interval_s)


def main() -> None:
    settings = RegistrySettings()
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    event_loop.run(serve(settings))
