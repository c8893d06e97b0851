"""Runner entry point: connects to NATS and the registry and runs a worker pool
(services/runner/pool.py) of chats from the work queue."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket

from nats.aio.msg import Msg

from cozeplus import event_loop, heap
from cozeplus.chat_queue import (
    ACK_WAIT_S,
    ensure_chat_stream,
    ensure_runner_consumer,
    runner_consumer_config,
)
from cozeplus.ids import IdGenerator, lease_node_id, node_bucket_config
from cozeplus.model_catalog import ModelCatalog
from cozeplus.nats_connection import NatsConnection, declare_key_value
from cozeplus.published_versions import bot_id_of
from cozeplus.rpc.v1.conversations_pb2_grpc import ConversationsStub
from cozeplus.rpc.v1.knowledge_pb2_grpc import KnowledgeStub
from cozeplus.rpc.v1.liveness_pb2_grpc import RunLivenessStub
from cozeplus.rpc.v1.plugins_pb2_grpc import PluginsStub
from cozeplus.rpc.v1.registry_pb2_grpc import BotRegistryStub
from cozeplus.service_auth import service_aio_channel
from cozeplus.subjects import (
    BOT_CHANGED,
    CHAT_CANCEL_ALL,
    CHAT_REQUEST_STREAM,
    CHAT_REQUEST_SUBJECT,
    CHAT_RUNNER_CONSUMER,
)
from cozeplus.worker_health import health_server
from services.runner.chat_run import BotConfigCache, RunnerDeps
from services.runner.liveness import RunHeartbeats
from services.runner.pool import RunnerPool
from services.runner.prompt_context import RegistryPromptContext
from services.runner.providers import close_providers, provider_for
from services.runner.registry_calls import RegistryRetry
from services.runner.run_outcomes import NatsRunOutcomes, outcome_bucket_config
from services.runner.settings import RunnerSettings
from services.runner.tools.combined import CombinedToolSource
from services.runner.tools.knowledge import KnowledgeToolSource
from services.runner.tools.outbound_policy import plugin_policy
from services.runner.tools.registry_source import RegistryToolSource

log = logging.getLogger("cozeplus.runner")


async def serve(settings: RunnerSettings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    link = NatsConnection(settings.nats_url, "cozeplus-runner", settings.nats_replicas)
    link.declare("the chat work queue", lambda js: ensure_chat_stream(js, link.replicas))
    link.declare("the runners' consumer", ensure_runner_consumer)
    link.declare(
        "the node id bucket", lambda js: declare_key_value(js, node_bucket_config(link.replicas))
    )
    link.declare(
        "the run outcome bucket",
        lambda js: declare_key_value(js, outcome_bucket_config(link.replicas)),
    )
    await link.connect()
    nc = await link.wait_declared()
    js = nc.jetstream()
    channel = service_aio_channel(settings.registry_addr, settings.service_token)
    plugins_channel = (
        service_aio_channel(settings.plugins_addr, settings.service_token)
        if settings.plugins_addr
        else channel
    )
    owner = f"runner@{socket.gethostname()}:{os.getpid()}"
    async with contextlib.AsyncExitStack() as stack:
        node_id = settings.node_id
        if node_id is None:
            node_id = await stack.enter_async_context(
                lease_node_id(nc, owner, settings.nats_replicas)
            )
        bots = BotRegistryStub(channel)
        knowledge = KnowledgeStub(channel)
        deps = RunnerDeps(
            events=nc,
            bots=bots,
            conversations=ConversationsStub(channel),
            catalog=ModelCatalog.load(settings.models_file),
            ids=IdGenerator(node_id),
            bot_configs=BotConfigCache(bots),
            provider_for=provider_for,
            tools=CombinedToolSource(
                RegistryToolSource(PluginsStub(plugins_channel), plugin_policy(settings)),
                KnowledgeToolSource(knowledge),
            ),
            model_timeout_s=settings.model_timeout_s,
            tool_timeout_s=settings.tool_timeout_s,
            heartbeat_s=min(settings.heartbeat_s, ACK_WAIT_S / 3),
            registry=RegistryRetry(budget_s=settings.registry_retry_s),
            outcomes=NatsRunOutcomes(js, nc),
            context=RegistryPromptContext(
                knowledge,
                nc.jetstream,
                timeout_s=settings.knowledge_timeout_s,
                max_image_bytes=settings.max_image_bytes,
            ),
        )
        pool = RunnerPool(
            deps,
            settings.concurrency,
            memory_limit_mib=settings.memory_limit_mib,
            fetch_batch=settings.fetch_batch,
        )

        async def on_cancel(msg: Msg) -> None:
            chat_id = int(msg.subject.rsplit(".", 1)[1])
            if pool.cancel(chat_id):
                log.info("chat %d: canceled on request", chat_id)

        await nc.subscribe(CHAT_CANCEL_ALL, cb=on_cancel)

        async def on_bot_changed(msg: Msg) -> None:
            bot_id = bot_id_of(msg.data)
            if bot_id is not None:
                deps.bot_configs.invalidate_bot(bot_id)

        await nc.subscribe(BOT_CHANGED, cb=on_bot_changed)
        subscription = await js.pull_subscribe(
            CHAT_REQUEST_SUBJECT,
            durable=CHAT_RUNNER_CONSUMER,
            stream=CHAT_REQUEST_STREAM,
            config=runner_consumer_config(),
        )
        health = None
        if settings.health_port:
            health = health_server(
                settings.health_host, settings.health_port, lambda: nc.is_connected
            )
            health_task = asyncio.create_task(health.serve())
        log.info("runner ready: node %d, concurrency %d", node_id, settings.concurrency)

        # Beats on through the shutdown drain: those runs are still held.
        heartbeats_stop = asyncio.Event()
        heartbeats = asyncio.create_task(
            RunHeartbeats(
                RunLivenessStub(channel),
                pool.held,
                pool.cancel,
                interval_s=settings.registry_heartbeat_s,
            ).run(heartbeats_stop)
        )
        heap.settle()
        consumer = asyncio.create_task(pool.consume(subscription, stop))
        await stop.wait()
        log.info("runner stopping: %d chats running", len(pool.running))
        # The fetch timeout bounds how long the consumer takes to see the flag.
        await asyncio.wait({consumer}, timeout=5.0)
        if not consumer.done():
            consumer.cancel()
        await subscription.unsubscribe()
        await pool.drain(settings.shutdown_grace_s)
        heartbeats_stop.set()
        await heartbeats
        await close_providers()
        if health is not None:
            health.should_exit = True
            await health_task
    await channel.close()
    if plugins_channel is not channel:
        await plugins_channel.close()
    await link.close()


def main() -> None:
    settings = RunnerSettings()
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    event_loop.run(serve(settings))
