"""The edge's NATS connection.

The edge starts even when NATS is not reachable yet (it reports unhealthy until then) and keeps
retrying; nats-py handles reconnects once a first connection exists. Listeners hear about
every change of connection state, because state that relies on broadcasts (the auth cache)
cannot be trusted while broadcasts may have been missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import nats

log = logging.getLogger(__name__)

MessageHandler = Callable[[Any], Awaitable[None]]
StateListener = Callable[[bool], None]

_RETRY_MIN_S = 0.2
_RETRY_MAX_S = 5.0


class NatsLink:
    def __init__(self, url: str, name: str = "cozeplus-edge") -> None:
        self.url = url
        self.name = name
        self.nc: Any = None
        self._subscriptions: list[tuple[str, MessageHandler]] = []
        self._listeners: list[StateListener] = []
        self._connected = False
        self._closing = False
        # While NATS is down nats-py retries every reconnect_time_wait and reports each
        # failure; one warning per outage is enough.
        self._outage_reported = False
        self._task: asyncio.Task[None] | None = None
        self._first_connection = asyncio.Event()

    @property
    def is_connected(self) -> bool:
        return self._connected and self.nc is not None and bool(self.nc.is_connected)

    def subscribe(self, subject: str, handler: MessageHandler) -> None:
        """Registers a core NATS subscription, made on the first connection (nats-py renews
        it on reconnects). Call before `start`."""
        self._subscriptions.append((subject, handler))

    def on_state_change(self, listener: StateListener) -> None:
        self._listeners.append(listener)

    async def wait_connected(self) -> Any:
        """The connection, once the first one is up (later outages are nats-py's to ride out)."""
        await self._first_connection.wait()
        return self.nc

    def start(self) -> None:
        self._task = asyncio.create_task(self._connect_until_up(), name="nats-connect")

    async def _connect_until_up(self) -> None:
        # nats.connect itself keeps retrying an unreachable server (max_reconnect_attempts=-1);
        # this loop covers the errors it raises instead, so the edge never stops trying.
        delay = _RETRY_MIN_S
        while True:
            try:
                nc = await nats.connect(
                    self.url,
                    name=self.name,
                    connect_timeout=2,
                    allow_reconnect=True,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=0.5,
                    disconnected_cb=self._on_disconnected,
                    reconnected_cb=self._on_reconnected,
                    error_cb=self._on_error,
                )
            except Exception as exc:
                log.warning("cannot reach NATS at %s (%s); retrying in %.1fs", self.url, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, _RETRY_MAX_S)
                continue
            self.nc = nc
            for subject, handler in self._subscriptions:
                await nc.subscribe(subject, cb=handler)
            log.info("connected to NATS at %s", self.url)
            self._set_connected(True)
            self._first_connection.set()
            return

    def _set_connected(self, connected: bool) -> None:
        self._connected = connected
        if connected:
            self._outage_reported = False
        for listener in self._listeners:
            listener(connected)

    async def _on_disconnected(self) -> None:
        if not self._closing:
            log.warning("disconnected from NATS")
        self._set_connected(False)

    async def _on_reconnected(self) -> None:
        log.info("reconnected to NATS")
        self._set_connected(True)

    async def _on_error(self, exc: Exception) -> None:
        if self._outage_reported:
            log.debug("NATS error: %s", exc)
        else:
            self._outage_reported = True
            log.warning(
                "NATS error: %s (further errors until reconnected are logged at DEBUG)", exc
            )

    async def close(self) -> None:
        self._closing = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.nc is not None:
            with contextlib.suppress(Exception):
                await self.nc.drain()
