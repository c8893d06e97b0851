"""The published-version cache shared by edges and runners, in process (fake fetch, fake
clock); the BOT_CHANGED broadcast itself is exercised end to end in tests/chat."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from cozeplus.published_versions import PublishedVersionCache, bot_changed_payload, bot_id_of


class Registry:
    def __init__(self) -> None:
        self.version = 1
        self.calls = 0
        self.gate: asyncio.Event | None = None

    async def fetch(self, owner_id: int, bot_id: int) -> tuple[int, int, int]:
        self.calls += 1
        answer = (owner_id, bot_id, self.version)
        if self.gate is not None:
            await self.gate.wait()
        return answer


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_hits_within_the_ttl_then_refetches() -> None:
    registry, clock = Registry(), Clock()
    cache = PublishedVersionCache(registry.fetch, ttl_s=30, clock=clock, enabled=True)
    assert await cache.get(1, 7) == (1, 7, 1)
    assert await cache.get(1, 7) == (1, 7, 1)
    assert registry.calls == 1
    registry.version = 2
    clock.now += 31
    assert await cache.get(1, 7) == (1, 7, 2)
    assert registry.calls == 2


async def test_a_change_broadcast_evicts_only_that_bot() -> None:
    registry = Registry()
    cache = PublishedVersionCache(registry.fetch, ttl_s=30, enabled=True)
    await cache.get(1, 7)
    await cache.get(1, 8)
    registry.version = 2
    await cache.on_changed_message(SimpleNamespace(data=bot_changed_payload(7)))
    assert await cache.get(1, 7) == (1, 7, 2)
    assert await cache.get(1, 8) == (1, 8, 1)
    assert registry.calls == 3


async def test_an_answer_fetched_across_an_invalidation_is_not_stored() -> None:
    registry = Registry()
    cache = PublishedVersionCache(registry.fetch, ttl_s=30, enabled=True)
    registry.gate = asyncio.Event()
    slow = asyncio.create_task(cache.get(1, 7))
    await asyncio.sleep(0)
    cache.invalidate_bot(7)  # a publish lands while the old answer is on its way
    registry.gate.set()
    assert await slow == (1, 7, 1)
    registry.gate, registry.version = None, 2
    assert await cache.get(1, 7) == (1, 7, 2)


async def test_disabled_while_nats_is_down_and_empty_after() -> None:
    registry = Registry()
    cache = PublishedVersionCache(registry.fetch, ttl_s=30)  # starts disabled
    await cache.get(1, 7)
    await cache.get(1, 7)
    assert registry.calls == 2
    cache.set_enabled(True)
    await cache.get(1, 7)
    await cache.get(1, 7)
    assert registry.calls == 3
    cache.set_enabled(False)
    await cache.get(1, 7)
    assert registry.calls == 4


async def test_errors_are_not_cached() -> None:
    calls = 0

    async def failing(owner_id: int, bot_id: int) -> int:
        nonlocal calls
        calls += 1
        raise LookupError("not published")

    cache = PublishedVersionCache(failing, ttl_s=30, enabled=True)
    for _ in range(2):
        with pytest.raises(LookupError):
            await cache.get(1, 7)
    assert calls == 2


def test_malformed_change_messages_are_ignored() -> None:
    assert bot_id_of(b"{") is None
    assert bot_id_of(b'{"bot_id": true}') is None
    assert bot_id_of(b'{"bot": 1}') is None
    assert bot_id_of(bot_changed_payload(42)) == 42


async def test_concurrent_misses_share_one_lookup() -> None:
    registry = Registry()
    cache = PublishedVersionCache(registry.fetch, ttl_s=30, enabled=True)
    registry.gate = asyncio.Event()
    waiting = [asyncio.create_task(cache.get(1, 7)) for _ in range(50)]
    await asyncio.sleep(0)
    waiting[0].cancel()  # one caller giving up does not cancel the others' lookup
    registry.gate.set()
    answers = await asyncio.gather(*waiting[1:])
    assert answers == [(1, 7, 1)] * 49
    assert registry.calls == 1
