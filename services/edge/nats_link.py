"""The edge's NATS connection (cozeplus.nats_connection, shared by every service).

The edge starts even when NATS is not reachable yet (it reports unhealthy until then) and keeps
retrying; nats-py handles reconnects once a first connection exists, and every stream and
bucket the edge uses is declared again after each reconnect. Listeners hear about every change
of connection state, because state that relies on broadcasts (the auth cache) cannot be
trusted while broadcasts may have been missed.
"""

from __future__ import annotations

from collections.abc import Sequence

from cozeplus.nats_connection import NatsConnection


class NatsLink(NatsConnection):
    def __init__(
        self, urls: str | Sequence[str], name: str = "cozeplus-edge", replicas: int = 1
    ) -> None:
        super().__init__(urls, name, replicas)
