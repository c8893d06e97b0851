"""Runner entry point: a member of the worker pool that runs chats from the work queue.

Runners share one durable pull consumer, so each queued chat goes to exactly one of
them. A runner acks a chat only when its outcome is persisted; while it runs, in-progress
acks keep JetStream from handing it to another runner. If the runner dies, the chat is
redelivered after the ack wait and the next runner ends it as failed (see ChatRun).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket

import nats
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.client import JetStreamContext

from cozeplus.chat_protocol import ChatRequest
from cozeplus.chat_queue import ACK_WAIT_S, ensure_chat_stream, runner_consumer_config
from cozeplus.ids import IdGenerator, lease_node_id
from cozeplus.model_catalog import ModelCatalog
from cozeplus.rpc.v1.conversations_pb2_grpc import ConversationsStub
from cozeplus.rpc.v1.registry_pb2_grpc import BotRegistryStub
from cozeplus.service_auth import service_aio_channel
from cozeplus.subjects import (
    CHAT_CANCEL_ALL,
    CHAT_REQUEST_STREAM,
    CHAT_REQUEST_SUBJECT,
    CHAT_RUNNER_CONSUMER,
)
from services.runner.chat_run import BotConfigCache, ChatRun, RunnerDeps
from services.runner.health import health_server
from services.runner.metrics import CHATS_RUNNING, CHATS_TOTAL
from services.runner.providers import close_providers
from services.runner.settings import RunnerSettings

log = logging.getLogger("cozeplus.runner")


class RunnerPool:
    """Pulls chats while it has free slots and runs each as its own task."""

    def __init__(self, deps: RunnerDeps, concurrency: int) -> None:
        self.deps = deps
        self.concurrency = concurrency
        self.running: dict[int, ChatRun] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._slot_freed = asyncio.Event()

    async def consume(
        self, subscription: JetStreamContext.PullSubscription, stop: asyncio.Event
    ) -> None:
        """Fetch while not stopping. Stopping is a flag checked between fetches, not a task
        cancellation: on Python 3.11 nats-py's fetch (asyncio.wait_for) can swallow one."""
        while not stop.is_set():
            free = self.concurrency - len(self._tasks)
            if free <= 0:
                self._slot_freed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._slot_freed.wait(), timeout=1.0)
                continue
            try:
                messages = await subscription.fetch(min(free, 16), timeout=1.0)
            except NatsTimeoutError:
                continue
            except Exception:
                log.exception("fetching chats failed; retrying")
                await asyncio.sleep(1.0)
                continue
            if stop.is_set():
                # Fetched as we stop: hand them straight back to the other runners.
                for msg in messages:
                    with contextlib.suppress(Exception):
                        await msg.nak()
                return
            for msg in messages:
                task = asyncio.create_task(self._handle(msg))
                self._tasks.add(task)
                task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._slot_freed.set()

    async def _handle(self, msg: Msg) -> None:
        try:
            request = ChatRequest.decode(msg.data)
        except ValueError:
            log.error("dropping a malformed chat request: %r", msg.data[:200])
            await msg.term()
            return
        run = ChatRun(self.deps, request, keepalive=msg.in_progress)
        self.running[request.chat_id] = run
        CHATS_RUNNING.inc()
        try:
            await run.execute()
            await msg.ack()
            CHATS_TOTAL.labels(outcome="ended").inc()
        except asyncio.CancelledError:
            raise
        except Exception:
            # Left unacked, it is redelivered and the next runner ends it properly.
            log.exception("chat %d crashed its run", request.chat_id)
            CHATS_TOTAL.labels(outcome="crashed").inc()
            with contextlib.suppress(Exception):
                await msg.nak(delay=1.0)
        finally:
            CHATS_RUNNING.dec()
            self.running.pop(request.chat_id, None)

    def cancel(self, chat_id: int) -> bool:
        run = self.running.get(chat_id)
        if run is None:
            return False
        run.cancel()
        return True

    async def drain(self, grace_s: float) -> None:
        """Let running chats finish; the rest are redelivered to other runners."""
        if not self._tasks:
            return
        _, pending = await asyncio.wait(set(self._tasks), timeout=grace_s)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=5)


async def serve(settings: RunnerSettings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    nc = await nats.connect(settings.nats_url, name="cozeplus-runner", max_reconnect_attempts=-1)
    js = nc.jetstream()
    await ensure_chat_stream(js)
    channel = service_aio_channel(settings.registry_addr, settings.service_token)
    owner = f"runner@{socket.gethostname()}:{os.getpid()}"
    async with contextlib.AsyncExitStack() as stack:
        node_id = settings.node_id
        if node_id is None:
            node_id = await stack.enter_async_context(lease_node_id(nc, owner))
        bots = BotRegistryStub(channel)
        deps = RunnerDeps(
            nc=nc,
            bots=bots,
            conversations=ConversationsStub(channel),
            catalog=ModelCatalog.load(settings.models_file),
            ids=IdGenerator(node_id),
            bot_configs=BotConfigCache(bots),
            model_timeout_s=settings.model_timeout_s,
            heartbeat_s=min(settings.heartbeat_s, ACK_WAIT_S / 3),
        )
        pool = RunnerPool(deps, settings.concurrency)

        async def on_cancel(msg: Msg) -> None:
            chat_id = int(msg.subject.rsplit(".", 1)[1])
            if pool.cancel(chat_id):
                log.info("chat %d: canceled on request", chat_id)

        await nc.subscribe(CHAT_CANCEL_ALL, cb=on_cancel)
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

        consumer = asyncio.create_task(pool.consume(subscription, stop))
        await stop.wait()
        log.info("runner stopping: %d chats running", len(pool.running))
        # The fetch timeout bounds how long the consumer takes to see the flag.
        await asyncio.wait({consumer}, timeout=5.0)
        if not consumer.done():
            consumer.cancel()
        await subscription.unsubscribe()
        await pool.drain(settings.shutdown_grace_s)
        await close_providers()
        if health is not None:
            health.should_exit = True
            await health_task
    await channel.close()
    await nc.drain()


def main() -> None:
    settings = RunnerSettings()
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    asyncio.run(serve(settings))
