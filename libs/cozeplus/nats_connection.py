"""One way for every service to connect to NATS, and to keep its JetStream resources there.

`NatsConnection` takes the service's `NATS_URL` setting: one URL or a comma-separated list
(the servers of a cluster; nats-py fails over between them and learns the rest from the
cluster). It reconnects forever, and it (re-)declares every stream and bucket the service
uses on the first connection and again after every reconnect: a NATS server that restarted
without its storage (or a memory stream such as the rate-limit counters) must get them back
without the service restarting. Declarations are idempotent and retried with backoff until
they all succeed; `NATS_REPLICAS` sets their replicas.

Services also register here the core subscriptions they need (made on the first connection,
renewed by nats-py on reconnects) and listeners told of every change of connection state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Any

import nats
from nats.aio.client import Client as NATS
from nats.js.api import KeyValueConfig, StreamConfig
from nats.js.client import JetStreamContext
from nats.js.errors import NotFoundError

log = logging.getLogger(__name__)

MessageHandler = Callable[[Any], Awaitable[None]]
StateListener = Callable[[bool], None]
Declaration = Callable[[JetStreamContext], Awaitable[None]]
DeclaredListener = Callable[[], Awaitable[None]]

_RETRY_MIN_S = 0.2
_RETRY_MAX_S = 5.0
# How long nats-py waits between attempts to reach a server once it lost its connection.
RECONNECT_WAIT_S = 0.5


def server_list(urls: str | Sequence[str]) -> list[str]:
    """`nats://a:4222,nats://b:4222` (or a list) as nats-py's list of servers."""
    items = urls.split(",") if isinstance(urls, str) else list(urls)
    servers = [item.strip() for item in items if item.strip()]
    if not servers:
        raise ValueError("no NATS server URL given")
    return servers


class NatsConnection:
    def __init__(self, urls: str | Sequence[str], name: str, replicas: int = 1) -> None:
        self.servers = server_list(urls)
        self.name = name
        self.replicas = replicas
        self.nc: NATS | None = None
        self._subscriptions: list[tuple[str, MessageHandler]] = []
        self._state_listeners: list[StateListener] = []
        self._declarations: list[tuple[str, Declaration]] = []
        self._declared_listeners: list[DeclaredListener] = []
        self._connected = False
        self._closing = False
        # While NATS is down nats-py retries and reports each failure; one warning per outage.
        self._outage_reported = False
        self._task: asyncio.Task[None] | None = None
        self._declaring: asyncio.Task[None] | None = None
        self._first_connection = asyncio.Event()
        self._declared = asyncio.Event()

    # ------------------------------------------------------------- registration

    @property
    def is_connected(self) -> bool:
        return self._connected and self.nc is not None and bool(self.nc.is_connected)

    @property
    def declared(self) -> bool:
        """Every declaration succeeded since the last (re)connect."""
        return self._declared.is_set()

    def subscribe(self, subject: str, handler: MessageHandler) -> None:
        """A core subscription made on the first connection. Call before connecting."""
        self._subscriptions.append((subject, handler))

    def on_state_change(self, listener: StateListener) -> None:
        self._state_listeners.append(listener)

    def declare(self, what: str, declaration: Declaration) -> None:
        """Runs `declaration` on every (re)connect until it succeeds. Call before connecting."""
        self._declarations.append((what, declaration))

    def on_declared(self, listener: DeclaredListener) -> None:
        """Called after each round of declarations succeeded (first connect, reconnects)."""
        self._declared_listeners.append(listener)

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> None:
        """Connects in the background; for services that serve before NATS is up."""
        self._task = asyncio.create_task(self._connect_until_up(), name="nats-connect")

    async def connect(self) -> NATS:
        """Connects (retrying until a server answers) and returns the connection."""
        if self._task is None:
            self.start()
        return await self.wait_connected()

    async def wait_connected(self) -> NATS:
        await self._first_connection.wait()
        assert self.nc is not None
        return self.nc

    async def wait_declared(self) -> NATS:
        await self._declared.wait()
        assert self.nc is not None
        return self.nc

    async def close(self) -> None:
        self._closing = True
        for task in (self._task, self._declaring):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self.nc is not None:
            with contextlib.suppress(Exception):
                await self.nc.drain()

    async def _connect_until_up(self) -> None:
        # nats.connect keeps retrying unreachable servers itself (max_reconnect_attempts=-1
        # with retry_on_failed_connect); this loop covers whatever it raises instead.
        delay = _RETRY_MIN_S
        while True:
            try:
                nc = await nats.connect(
                    servers=self.servers,
                    name=self.name,
                    connect_timeout=2,
                    allow_reconnect=True,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=RECONNECT_WAIT_S,
                    disconnected_cb=self._on_disconnected,
                    reconnected_cb=self._on_reconnected,
                    error_cb=self._on_error,
                )
            except Exception as exc:
                log.warning(
                    "cannot reach NATS at %s (%s); retrying in %.1fs",
                    ",".join(self.servers),
                    exc,
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, _RETRY_MAX_S)
                continue
            self.nc = nc
            for subject, handler in self._subscriptions:
                await nc.subscribe(subject, cb=handler)
            log.info("connected to NATS at %s", nc.connected_url.netloc if nc.connected_url else "")
            self._set_connected(True)
            self._first_connection.set()
            self._redeclare()
            return

    # --------------------------------------------------------------- callbacks

    def _set_connected(self, connected: bool) -> None:
        self._connected = connected
        if connected:
            self._outage_reported = False
        for listener in self._state_listeners:
            listener(connected)

    async def _on_disconnected(self) -> None:
        if not self._closing:
            log.warning("disconnected from NATS")
        self._set_connected(False)

    async def _on_reconnected(self) -> None:
        nc = self.nc
        url = nc.connected_url.netloc if nc is not None and nc.connected_url else ""
        log.info("reconnected to NATS at %s", url)
        self._set_connected(True)
        self._redeclare()

    async def _on_error(self, exc: Exception) -> None:
        if self._outage_reported:
            log.debug("NATS error: %s", exc)
        else:
            self._outage_reported = True
            log.warning(
                "NATS error: %s (further errors until reconnected are logged at DEBUG)", exc
            )

    # ------------------------------------------------------------- declarations

    def _redeclare(self) -> None:
        if self._closing:
            return
        self._declared.clear()
        if self._declaring is not None:
            self._declaring.cancel()
        self._declaring = asyncio.create_task(self._declare_all(), name="nats-declare")

    async def _declare_all(self) -> None:
        assert self.nc is not None
        js = self.nc.jetstream()
        pending = list(self._declarations)
        delay = _RETRY_MIN_S
        while pending:
            failed: list[tuple[str, Declaration]] = []
            for what, declaration in pending:
                try:
                    await declaration(js)
                except Exception as exc:
                    log.warning("cannot declare %s (%r); retrying in %.1fs", what, exc, delay)
                    failed.append((what, declaration))
            pending = failed
            if pending:
                await asyncio.sleep(delay)
                delay = min(delay * 2, _RETRY_MAX_S)
        log.info("NATS declarations in place (%d)", len(self._declarations))
        self._declared.set()
        for listener in self._declared_listeners:
            try:
                await listener()
            except Exception:
                log.exception("a listener of NATS declarations failed")


# ------------------------------------------------------------ idempotent declares


async def declare_stream(js: JetStreamContext, config: StreamConfig) -> None:
    """Creates the stream, or brings an existing one's replicas to `config`'s. Other
    settings of an existing stream are left alone (an operator may have tuned them)."""
    assert config.name is not None
    try:
        info = await js.stream_info(config.name)
    except NotFoundError:
        await js.add_stream(config)
        log.info("created stream %s (%d replicas)", config.name, config.num_replicas or 1)
        return
    current = info.config
    if (current.num_replicas or 1) != (config.num_replicas or 1):
        await js.update_stream(replace(current, num_replicas=config.num_replicas))
        log.info(
            "stream %s: replicas %d -> %d",
            config.name,
            current.num_replicas or 1,
            config.num_replicas or 1,
        )


async def declare_key_value(js: JetStreamContext, config: KeyValueConfig) -> None:
    """Creates the bucket, or brings an existing one's replicas to `config`'s."""
    stream = f"KV_{config.bucket}"
    try:
        info = await js.stream_info(stream)
    except NotFoundError:
        await js.create_key_value(config)
        log.info("created bucket %s (%d replicas)", config.bucket, config.replicas)
        return
    if (info.config.num_replicas or 1) != config.replicas:
        await js.update_stream(replace(info.config, num_replicas=config.replicas))
        log.info("bucket %s: replicas -> %d", config.bucket, config.replicas)
