"""The edge's side of the chat plumbing on NATS: the JetStream work queue it publishes chat
requests to, and the id generator that mints chat ids on a node number no other live process
holds.

Both need a NATS connection, and the edge starts (and serves everything but chats) without
one, so they are set up in the background once NATS is first reached; until then chat routes
answer 503 and /healthz reports the chat queue as not ready.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from typing import Any

import nats.errors
from nats.aio.client import Client as NATS
from nats.js.client import JetStreamContext
from nats.js.errors import NoStreamResponseError, ServiceUnavailableError

from cozeplus.chat_protocol import ChatRequest
from cozeplus.chat_queue import ensure_chat_stream
from cozeplus.ids import IdGenerator, lease_node_id, node_bucket_config
from cozeplus.nats_connection import declare_key_value
from cozeplus.subjects import CHAT_REQUEST_SUBJECT
from services.edge.errors import ApiError
from services.edge.nats_link import NatsLink

log = logging.getLogger(__name__)

_RETRY_MIN_S = 0.5
_RETRY_MAX_S = 10.0
# JetStream acknowledges a publish in milliseconds; past this the queue is in trouble.
_PUBLISH_TIMEOUT_S = 5.0
# What a publish meets while a stream leader is elected or the connection is re-made.
_TRANSIENT_PUBLISH_ERRORS = (
    NoStreamResponseError,
    ServiceUnavailableError,
    nats.errors.TimeoutError,
    nats.errors.NoRespondersError,
    nats.errors.ConnectionReconnectingError,
    nats.errors.StaleConnectionError,
    TimeoutError,
)
CHAT_UNAVAILABLE_MSG = "chat is temporarily unavailable (message queue not reachable), retry later"


class ChatBus:
    def __init__(self, link: NatsLink, node_id: int | None, publish_retry_s: float = 10.0) -> None:
        self._link = link
        self._publish_retry_s = publish_retry_s
        self.declare_on(link)
        self._node_id = node_id
        self._js: JetStreamContext | None = None
        self._ids: IdGenerator | None = None
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def ready(self) -> bool:
        return self._ids is not None and self._js is not None and self._link.is_connected

    def start(self) -> None:
        self._task = asyncio.create_task(self._set_up(), name="chat-bus")

    async def close(self) -> None:
        """Gives the node number back; call while NATS is still connected."""
        self._stop.set()
        task = self._task
        if task is None:
            return
        if self._ids is None:
            # Still waiting for NATS or the queue: there is nothing to give back.
            task.cancel()
        try:
            await asyncio.wait_for(task, timeout=5)
        except (TimeoutError, asyncio.CancelledError):
            pass
        except Exception:
            log.exception("chat bus shut down uncleanly")

    # ------------------------------------------------------------------- for requests

    @property
    def nc(self) -> NATS:
        """The connection, or a 503 when chats cannot be served right now."""
        nc = self._link.nc
        if not self.ready or nc is None:
            raise ApiError(503, CHAT_UNAVAILABLE_MSG)
        return nc

    def next_id(self) -> int:
        if self._ids is None or not self.ready:
            raise ApiError(503, CHAT_UNAVAILABLE_MSG)
        return self._ids.next_id()

    async def queue(self, request: ChatRequest) -> None:
        """Hands a chat to the runners. The chat id is the message id, so a publish retried
        after a lost acknowledgement is stored once; that makes it safe to retry while the
        queue has no leader (a NATS node failover) or the connection is being re-made,
        for up to `publish_retry_s`, rather than refuse the chat at once."""
        if self._js is None:
            raise ApiError(503, CHAT_UNAVAILABLE_MSG)
        loop = asyncio.get_running_loop()
        give_up_at = loop.time() + self._publish_retry_s
        delay = 0.1
        while True:
            timeout = max(0.5, min(_PUBLISH_TIMEOUT_S, give_up_at - loop.time()))
            try:
                await self._js.publish(
                    CHAT_REQUEST_SUBJECT,
                    request.encode(),
                    timeout=timeout,
                    headers={"Nats-Msg-Id": request.queue_message_id},
                )
                return
            except _TRANSIENT_PUBLISH_ERRORS as exc:
                if loop.time() + delay >= give_up_at:
                    raise
                log.info("chat %d: queue not ready (%r); retrying", request.chat_id, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)

    # ------------------------------------------------------------------------ set-up

    def declare_on(self, link: NatsLink) -> None:
        """The chat work queue and the node id bucket, declared on every (re)connect."""
        link.declare("the chat work queue", lambda js: ensure_chat_stream(js, link.replicas))
        link.declare(
            "the node id bucket",
            lambda js: declare_key_value(js, node_bucket_config(link.replicas)),
        )

    async def _set_up(self) -> None:
        nc: Any = await self._link.wait_declared()
        js: JetStreamContext = nc.jetstream()
        self._js = js
        if self._node_id is not None:
            self._ids = IdGenerator(self._node_id)
            log.info("chat queue ready; chat ids on configured node %d", self._node_id)
            return
        owner = f"edge@{socket.gethostname()}:{os.getpid()}"
        delay = _RETRY_MIN_S
        while not self._stop.is_set():
            try:
                async with lease_node_id(nc, owner, self._link.replicas) as node:
                    self._ids = IdGenerator(node)
                    log.info("chat queue ready; chat ids on leased node %d", node)
                    # Held until shutdown; leaving the block deletes the lease.
                    await self._stop.wait()
                    return
            except Exception as exc:
                log.warning("cannot lease a node id (%s); retrying in %.1fs", exc, delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), delay)
                delay = min(delay * 2, _RETRY_MAX_S)
