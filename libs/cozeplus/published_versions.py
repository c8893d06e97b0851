"""Which version of a bot is published, cached where chats start, invalidated by broadcast.

Looking a bot's published version up in the registry cost every chat a gRPC round trip and
the registry a read transaction (issue 14). The answer only changes on publish, unpublish or
delete, which the registry announces on BOT_CHANGED; each entry also expires after a TTL, so
a broadcast missed while NATS reconnects is bounded, and while NATS is down the cache is
emptied and bypassed (as the auth cache is).

A lookup that started before an invalidation must not store its (possibly stale) answer
after it: every invalidation bumps a generation, and an answer is stored only if the
generation did not move while it was fetched.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

import orjson

log = logging.getLogger(__name__)

V = TypeVar("V")
Key = tuple[int, int]  # (owner_id, bot_id)


class PublishedVersionCache(Generic[V]):
    def __init__(
        self,
        fetch: Callable[[int, int], Awaitable[V]],
        ttl_s: float = 30.0,
        size: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
        *,
        enabled: bool = False,
    ) -> None:
        self._fetch = fetch
        self._ttl_s = ttl_s
        self._size = size
        self._clock = clock
        self._entries: OrderedDict[Key, tuple[float, V]] = OrderedDict()
        self._generation = 0
        self._inflight: dict[Key, asyncio.Future[V]] = {}
        # Off until the NATS connection is up (set_enabled), as invalidations need it.
        self._enabled = enabled
        self.hits = 0
        self.misses = 0

    async def get(self, owner_id: int, bot_id: int) -> V:
        key = (owner_id, bot_id)
        now = self._clock()
        entry = self._entries.get(key)
        if entry is not None and entry[0] > now:
            self.hits += 1
            return entry[1]
        self.misses += 1
        # One lookup per key at a time: a burst of chats for a bot not cached yet (a cold
        # edge, an expiry, a publish) waits for the same answer instead of sending the
        # registry a call each (2,000 at once failed some of them).
        fetching = self._inflight.get(key)
        if fetching is None:
            fetching = asyncio.ensure_future(self._fetch_and_store(key, now, self._generation))
            self._inflight[key] = fetching
            fetching.add_done_callback(lambda done: self._forget_lookup(key, done))
        # Shielded: one waiter going away must not cancel the lookup the others wait for.
        return await asyncio.shield(fetching)

    def _forget_lookup(self, key: Key, done: asyncio.Future[V]) -> None:
        if self._inflight.get(key) is done:
            del self._inflight[key]
        if not done.cancelled():
            done.exception()  # seen here, so a failure nobody waited for is not logged twice

    async def _fetch_and_store(self, key: Key, now: float, generation: int) -> V:
        value = await self._fetch(*key)
        if self._enabled and self._ttl_s > 0 and generation == self._generation:
            self._entries[key] = (now + self._ttl_s, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)
        return value

    def invalidate_bot(self, bot_id: int) -> None:
        self._generation += 1
        # Lookups under way may return what was true before: later callers start anew.
        for key in [k for k in self._inflight if k[1] == bot_id]:
            del self._inflight[key]
        for key in [k for k in self._entries if k[1] == bot_id]:
            del self._entries[key]

    def set_enabled(self, enabled: bool) -> None:
        """Follows the NATS connection: without it invalidations could go unheard."""
        self._generation += 1
        self._entries.clear()
        self._inflight.clear()
        self._enabled = enabled

    async def on_changed_message(self, msg: Any) -> None:
        bot_id = bot_id_of(msg.data)
        if bot_id is not None:
            self.invalidate_bot(bot_id)


def bot_changed_payload(bot_id: int) -> bytes:
    return orjson.dumps({"bot_id": bot_id})


def bot_id_of(data: bytes) -> int | None:
    """The bot id of a BOT_CHANGED message; None (logged) if malformed."""
    try:
        bot_id = orjson.loads(data)["bot_id"]
        if isinstance(bot_id, bool) or not isinstance(bot_id, int):
            raise TypeError("bot_id is not an integer")
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        log.warning("ignoring malformed bot change message %r: %s", data[:200], exc)
        return None
    return bot_id
