"""Time-ordered 64-bit ids below 2^53, unique across replicas.

Layout (53 bits, so JavaScript numbers hold them exactly):

    | 41 bits: ms since 2025-01-01 | 6 bits: node | 6 bits: sequence |

41 bits of milliseconds last until 2094. Each process takes a node number that no
other live process holds, leased from a NATS KV bucket (see `lease_node_id`), so
two replicas never mint the same id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator

from nats.aio.client import Client as NATS
from nats.js.api import KeyValueConfig
from nats.js.errors import KeyWrongLastSequenceError

from cozeplus.nats_connection import declare_key_value

EPOCH_MS = 1_735_689_600_000  # 2025-01-01T00:00:00Z
NODE_BITS = 6
SEQUENCE_BITS = 6
MAX_NODE = (1 << NODE_BITS) - 1
MAX_SEQUENCE = (1 << SEQUENCE_BITS) - 1
MAX_ID = (1 << 53) - 1

NODE_BUCKET = "cozeplus_nodes"
NODE_LEASE_TTL_S = 30.0

log = logging.getLogger(__name__)


class IdGenerator:
    """Mints ids for one node. Thread-safe; waits out a full millisecond or a clock step back."""

    def __init__(self, node_id: int) -> None:
        if not 0 <= node_id <= MAX_NODE:
            raise ValueError(f"node id must be in 0..{MAX_NODE}, got {node_id}")
        self.node_id = node_id
        self._lock = threading.Lock()
        self._last_ms = -1
        self._sequence = 0

    def next_id(self) -> int:
        with self._lock:
            now = _now_ms()
            if now < self._last_ms:
                # The clock stepped back: wait rather than risk repeating an id.
                time.sleep((self._last_ms - now) / 1000)
                now = _now_ms()
            if now == self._last_ms:
                self._sequence = (self._sequence + 1) & MAX_SEQUENCE
                if self._sequence == 0:
                    while now <= self._last_ms:
                        now = _now_ms()
            else:
                self._sequence = 0
            self._last_ms = now
            return (
                ((now - EPOCH_MS) << (NODE_BITS + SEQUENCE_BITS))
                | (self.node_id << SEQUENCE_BITS)
                | self._sequence
            )


def id_timestamp(value: int) -> float:
    """Unix seconds at which an id was minted."""
    return ((value >> (NODE_BITS + SEQUENCE_BITS)) + EPOCH_MS) / 1000


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def node_bucket_config(replicas: int = 1) -> KeyValueConfig:
    return KeyValueConfig(bucket=NODE_BUCKET, ttl=NODE_LEASE_TTL_S, history=1, replicas=replicas)


@contextlib.asynccontextmanager
async def lease_node_id(nc: NATS, owner: str, replicas: int = 1) -> AsyncIterator[int]:
    """Hold a node number no other live process holds, for as long as the context is open.

    The lease is a key in a KV bucket whose entries expire after NODE_LEASE_TTL_S; a
    background task refreshes it. A crashed process's number becomes free again after
    the TTL. A lease lost to a NATS that came back without its storage is taken again.
    """
    js = nc.jetstream()
    await declare_key_value(js, node_bucket_config(replicas))
    kv = await js.key_value(NODE_BUCKET)
    for node in range(MAX_NODE + 1):
        key = f"node-{node}"
        try:
            revision = await kv.create(key, owner.encode())
        except KeyWrongLastSequenceError:
            continue
        break
    else:
        raise RuntimeError(f"all {MAX_NODE + 1} node ids are leased; set an explicit node id")

    async def refresh() -> None:
        nonlocal revision, kv
        while True:
            await asyncio.sleep(NODE_LEASE_TTL_S / 3)
            try:
                revision = await kv.update(key, owner.encode(), last=revision)
                continue
            except KeyWrongLastSequenceError:
                log.warning("node id lease %s was lost; taking it again", key)
            except Exception as exc:  # NATS away, electing a leader, or without the bucket
                log.warning("could not refresh node id lease %s (%r)", key, exc)
            try:
                # Gone with a NATS that lost its storage (or expired during an outage):
                # claim the same number again while nobody else holds it.
                await declare_key_value(js, node_bucket_config(replicas))
                kv = await js.key_value(NODE_BUCKET)
                revision = await kv.create(key, owner.encode())
                log.info("node id lease %s taken again", key)
            except KeyWrongLastSequenceError:
                with contextlib.suppress(Exception):
                    entry = await kv.get(key)
                    if entry.value == owner.encode() and entry.revision is not None:
                        revision = entry.revision  # ours after all (an update that timed out)
                        continue
                log.error(
                    "node id %s is now leased by another process: ids minted here may collide; "
                    "restart this process",
                    key,
                )
            except Exception:  # NATS still away; the next round tries again
                log.exception("could not take node id lease %s again", key)

    task = asyncio.create_task(refresh())
    try:
        yield node
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        with contextlib.suppress(Exception):
            await kv.delete(key, last=revision)
