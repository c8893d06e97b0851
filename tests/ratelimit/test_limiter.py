"""The shared rate limiter against a real NATS server (the 3-edge test is in test_edges.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import nats
import pytest
from fastapi import APIRouter
from fastapi.routing import APIRoute
from nats.aio.client import Client as NATS

from cozeplus.embedded_nats import EmbeddedNats
from services.edge.deps import declared_limit_class
from services.edge.rate_limit import (
    STORE_ERRORS,
    LimitClass,
    RateLimiter,
    set_override,
)
from services.edge.routes import (
    bots,
    chat,
    conversations,
    openai_compat,
    plugins,
    user_state,
    workspaces,
)

DEFAULTS = {
    LimitClass.CHAT: 5,
    LimitClass.BOT_MANAGEMENT: 3,
    LimitClass.BOT_INFO: 10,
    LimitClass.OTHER: 100,
}


@pytest.fixture
async def nc(nats_url: str) -> AsyncIterator[NATS]:
    client = await nats.connect(nats_url)
    yield client
    await client.close()


async def _limiter(nc: NATS, window_s: int = 60) -> RateLimiter:
    limiter = RateLimiter(DEFAULTS, window_s=window_s)
    await limiter.start(nc)
    return limiter


@pytest.mark.parametrize(
    ("router", "path", "expected"),
    [
        (chat.router, "/v3/chat", LimitClass.CHAT),
        (chat.router, "/v3/chat/cancel", LimitClass.CHAT),
        (chat.router, "/v3/chat/submit_tool_outputs", LimitClass.CHAT),
        (chat.router, "/api/conversation/chat", LimitClass.CHAT),
        (bots.management, "/api/draftbot/create", LimitClass.BOT_MANAGEMENT),
        (bots.management, "/v1/bot/publish", LimitClass.BOT_MANAGEMENT),
        (plugins.router, "/v1/plugins", LimitClass.BOT_MANAGEMENT),
        (plugins.router, "/v1/plugins/{plugin_id}", LimitClass.BOT_MANAGEMENT),
        (plugins.router, "/v1/plugins/{plugin_id}/refresh", LimitClass.BOT_MANAGEMENT),
        (bots.info, "/v1/bot/get_online_info", LimitClass.BOT_INFO),
        (bots.info, "/v1/bots/{bot_id}", LimitClass.BOT_INFO),
        (bots.info, "/v1/bots", LimitClass.BOT_INFO),
        (conversations.router, "/v1/conversation/create", LimitClass.OTHER),
        (openai_compat.router, "/v1/chat/completions", LimitClass.CHAT),
        (openai_compat.router, "/v1/models", LimitClass.OTHER),
        (user_state.router, "/v1/bots/{bot_id}/unpublish", LimitClass.BOT_MANAGEMENT),
        (user_state.router, "/v1/variables", LimitClass.OTHER),
        (workspaces.router, "/v1/workspaces", LimitClass.OTHER),
    ],
)
async def test_routes_declare_the_contract_classes(
    router: APIRouter, path: str, expected: LimitClass
) -> None:
    """Each router (or route) declares its class (services/edge/deps.py); undeclared is
    `other`."""
    routes = [r for r in router.routes if isinstance(r, APIRoute) and r.path == path]
    assert routes, path
    for route in routes:
        state = SimpleNamespace(state=SimpleNamespace())
        # The markers are async (services/edge/deps.py: no thread-pool hand-off per request).
        declared = [
            await d.dependency(state) for d in route.dependencies if d.dependency is not None
        ]
        assert declared == ([] if expected is LimitClass.OTHER else [expected])
        assert declared_limit_class(cast(Any, state)) == expected


async def test_limit_counts_down_then_refuses_with_retry_after(nc: NATS) -> None:
    limiter = await _limiter(nc)
    account = int(time.time_ns() % 10**12)
    decisions = [await limiter.hit(account, LimitClass.CHAT) for _ in range(6)]
    assert [d.allowed for d in decisions] == [True] * 5 + [False]
    assert [d.remaining for d in decisions] == [4, 3, 2, 1, 0, 0]
    refused = decisions[-1]
    assert 1 <= refused.reset_after_s <= 60
    assert refused.headers() == {
        "X-RateLimit-Limit": "5",
        "X-RateLimit-Remaining": "0",
        "Retry-After": str(refused.reset_after_s),
    }
    # Classes and accounts are counted apart.
    assert (await limiter.hit(account, LimitClass.BOT_INFO)).allowed
    assert (await limiter.hit(account + 1, LimitClass.CHAT)).allowed
    await limiter.stop()


async def test_two_limiters_share_one_count_under_concurrency(nc: NATS, nats_url: str) -> None:
    other_nc = await nats.connect(nats_url)
    first, second = await _limiter(nc), await _limiter(other_nc)
    account = int(time.time_ns() % 10**12)
    decisions = await asyncio.gather(
        *(
            limiter.hit(account, LimitClass.BOT_INFO)
            for limiter in (first, second)
            for _ in range(12)
        )
    )
    assert sum(d.allowed for d in decisions) == 10
    await first.stop()
    await second.stop()
    await other_nc.close()


async def test_the_window_resets(nc: NATS) -> None:
    limiter = await _limiter(nc, window_s=2)
    account = int(time.time_ns() % 10**12)
    for _ in range(3):
        await limiter.hit(account, LimitClass.BOT_MANAGEMENT)
    refused = await limiter.hit(account, LimitClass.BOT_MANAGEMENT)
    assert not refused.allowed
    await asyncio.sleep(refused.reset_after_s + 0.1)
    assert (await limiter.hit(account, LimitClass.BOT_MANAGEMENT)).allowed
    await limiter.stop()


async def test_per_account_override_applies_on_every_limiter(nc: NATS) -> None:
    limiter = await _limiter(nc)
    account = int(time.time_ns() % 10**12)
    for _ in range(3):
        assert (await limiter.hit(account, LimitClass.BOT_MANAGEMENT)).allowed
    assert not (await limiter.hit(account, LimitClass.BOT_MANAGEMENT)).allowed
    await set_override(nc.jetstream(), account, {"bot_management": 5})
    deadline = time.monotonic() + 5
    while limiter.limit_for(account, LimitClass.BOT_MANAGEMENT) != 5:
        assert time.monotonic() < deadline, "override never arrived"
        await asyncio.sleep(0.05)
    assert (await limiter.hit(account, LimitClass.BOT_MANAGEMENT)).allowed
    await set_override(nc.jetstream(), account, {})
    while limiter.limit_for(account, LimitClass.BOT_MANAGEMENT) != 3:
        assert time.monotonic() < deadline, "override removal never arrived"
        await asyncio.sleep(0.05)
    await limiter.stop()


async def test_an_unreachable_store_fails_open(tmp_path: Path) -> None:
    server = EmbeddedNats(tmp_path / "nats")
    server.start()
    client = await nats.connect(server.url, max_reconnect_attempts=0, allow_reconnect=False)
    limiter = await _limiter(client)
    server.stop()
    await asyncio.sleep(0.2)
    errors_before = STORE_ERRORS._value.get()
    decision = await limiter.hit(1, LimitClass.CHAT)
    assert decision.allowed and decision.remaining == decision.limit
    assert STORE_ERRORS._value.get() == errors_before + 1
    await limiter.stop()
    await client.close()
