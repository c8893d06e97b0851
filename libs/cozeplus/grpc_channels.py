"""Options of every internal gRPC channel.

gRPC's default reconnect backoff (1 s, growing to 120 s) would leave a service failing for
seconds, even minutes, after a restarted registry is back; these keep retrying the
connection every 0.1 s to 1 s, so a registry that returns is used at once."""

from __future__ import annotations

RECONNECT_OPTIONS: list[tuple[str, int]] = [
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
]
