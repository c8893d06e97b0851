"""Runner entry point: a member of the worker pool that runs chats from the work queue."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

import nats

from cozeplus.chat_queue import ensure_chat_stream, runner_consumer_config
from cozeplus.subjects import CHAT_REQUEST_STREAM, CHAT_REQUEST_SUBJECT, CHAT_RUNNER_CONSUMER
from services.runner.health import health_server
from services.runner.settings import RunnerSettings

log = logging.getLogger("cozeplus.runner")


async def serve(settings: RunnerSettings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    nc = await nats.connect(settings.nats_url, name="cozeplus-runner", max_reconnect_attempts=-1)
    js = nc.jetstream()
    await ensure_chat_stream(js)
    await js.pull_subscribe(
        CHAT_REQUEST_SUBJECT,
        durable=CHAT_RUNNER_CONSUMER,
        stream=CHAT_REQUEST_STREAM,
        config=runner_consumer_config(),
    )

    health = None
    health_task = None
    if settings.health_port:
        health = health_server(settings.health_host, settings.health_port, lambda: nc.is_connected)
        health_task = asyncio.create_task(health.serve())
    log.info("runner ready (concurrency %d)", settings.concurrency)

    await stop.wait()
    log.info("runner stopping")
    if health is not None and health_task is not None:
        health.should_exit = True
        with contextlib.suppress(Exception):
            await health_task
    await nc.drain()


def main() -> None:
    settings = RunnerSettings()
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    asyncio.run(serve(settings))
