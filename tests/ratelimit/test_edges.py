"""Rate limits as clients meet them: three edge processes on one NATS share each account's
count exactly, refuse with 429 + Retry-After once it is spent, count again after the window,
apply per-account overrides everywhere, and serve (uncounted, but observably so) when NATS is
not there at all."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import nats
import pytest

from services.cli.system import ServiceProcess, edge_process, free_port, http_ok
from services.edge.rate_limit import set_override
from tests.chat.sse import SUCCESS, collapse_deltas, parse_stream
from tests.conftest import Account
from tests.edge.envelope import assert_error, data_of

WINDOW_S = 4
BOT_INFO_LIMIT = 10
LIMITED_ENV = {
    "COZEPLUS_EDGE_RATE_LIMIT_WINDOW_S": str(WINDOW_S),
    "COZEPLUS_EDGE_RATE_LIMIT_BOT_INFO": str(BOT_INFO_LIMIT),
}


@pytest.fixture(scope="module")
def edges(
    work_dir: Path,
    nats_url: str,
    registry_addr: str,
    runner: ServiceProcess,
    start_service: Callable[[ServiceProcess], ServiceProcess],
) -> Iterator[list[httpx.Client]]:
    """Three replicas with a 4 s window and 10 bot-info requests per window; a runner behind
    them for the streaming case."""
    services = []
    for index in range(3):
        services.append(
            start_service(
                edge_process(
                    port=free_port(),
                    registry_addr=registry_addr,
                    nats_url=nats_url,
                    log_dir=work_dir / "logs",
                    name=f"edge-limited-{index}",
                    extra_env=LIMITED_ENV,
                )
            )
        )
    clients = [
        httpx.Client(base_url=f"http://127.0.0.1:{s.env['COZEPLUS_EDGE_PORT']}", timeout=30)
        for s in services
    ]
    yield clients
    for client in clients:
        client.close()
    for service in services:
        service.stop()


def published_bot(http: httpx.Client, account: Account) -> str:
    bot = data_of(
        http.post(
            "/api/draftbot/create",
            json={"name": "limited", "model": "echo"},
            headers=account.headers,
        )
    )
    data_of(
        http.post("/api/draftbot/publish", json={"bot_id": bot["bot_id"]}, headers=account.headers)
    )
    return str(bot["bot_id"])


def start_of_a_window() -> int:
    """Waits for the next window to begin, so that a short burst neither straddles two nor
    shares one with earlier requests; returns that window's number (the edges number windows
    the same way, on the same clock)."""
    time.sleep(WINDOW_S - time.time() % WINDOW_S + 0.05)
    return int(time.time() // WINDOW_S)


def burst(
    edges: list[httpx.Client], account: Account, path: str, count: int
) -> list[httpx.Response]:
    """`count` requests spread round-robin over the edges, all within one window."""
    window = start_of_a_window()
    responses = [
        edge.get(path, headers=account.headers)
        for edge, _ in zip(itertools.cycle(edges), range(count), strict=False)
    ]
    assert int(time.time() // WINDOW_S) == window, "the burst straddled two windows"
    return responses


def test_three_edges_share_one_count_exactly(
    edges: list[httpx.Client], make_account: Callable[..., Account]
) -> None:
    account, other = make_account(), make_account()
    bot_id = published_bot(edges[0], account)
    other_bot_id = published_bot(edges[1], other)

    responses = burst(edges, account, f"/v1/bots/{bot_id}", 3 * BOT_INFO_LIMIT)

    served = [r for r in responses if r.status_code == 200]
    refused = [r for r in responses if r.status_code != 200]
    # Not 3 x 10: the replicas count together.
    assert len(served) == BOT_INFO_LIMIT
    # Each served request saw the shared count go down by one, whichever edge served it.
    remaining = sorted(int(r.headers["x-ratelimit-remaining"]) for r in served)
    assert remaining == list(range(BOT_INFO_LIMIT))
    assert {r.request.url.port for r in served} == {e.base_url.port for e in edges}
    for response in refused:
        assert_error(response, 429)
        assert response.json()["msg"] == "too many requests"
        assert 1 <= int(response.headers["retry-after"]) <= WINDOW_S
        assert response.headers["x-ratelimit-remaining"] == "0"
    assert {r.headers["x-ratelimit-limit"] for r in responses} == {str(BOT_INFO_LIMIT)}

    for edge in edges:
        # Another account, and another class of the same account, are counted apart.
        data_of(edge.get(f"/v1/bots/{other_bot_id}", headers=other.headers))
        data_of(edge.get("/api/passport/me", headers=account.headers))

    # The window ends when Retry-After says: then every edge serves the account again.
    time.sleep(int(refused[-1].headers["retry-after"]) + 0.1)
    for edge in edges:
        data_of(edge.get(f"/v1/bots/{bot_id}", headers=account.headers))


async def _override(nats_url: str, account_id: int, limits: dict[str, int]) -> None:
    nc = await nats.connect(nats_url)
    try:
        await set_override(nc.jetstream(), account_id, limits)
    finally:
        await nc.close()


def test_a_per_account_override_applies_on_every_edge(
    edges: list[httpx.Client], make_account: Callable[..., Account], nats_url: str
) -> None:
    account = make_account()
    bot_id = published_bot(edges[0], account)
    asyncio.run(_override(nats_url, account.user_id, {"bot_info": 3}))
    deadline = time.monotonic() + 5
    for edge in edges:
        while True:
            response = edge.get(f"/v1/bots/{bot_id}", headers=account.headers)
            if response.headers["x-ratelimit-limit"] == "3":
                break
            assert time.monotonic() < deadline, f"{edge.base_url} never saw the override"
            time.sleep(0.05)

    responses = burst(edges, account, f"/v1/bots/{bot_id}", 9)
    assert [r.status_code for r in responses].count(200) == 3
    assert {r.headers["x-ratelimit-limit"] for r in responses} == {"3"}


def test_every_answer_of_an_authenticated_request_carries_the_headers(
    edges: list[httpx.Client], make_account: Callable[..., Account]
) -> None:
    account = make_account()
    edge = edges[0]
    bot_id = published_bot(edge, account)
    answers = {
        "success": edge.get("/api/passport/me", headers=account.headers),
        "404": edge.get("/v1/bots/123", headers=account.headers),
        "400 naming a field": edge.post(
            "/v3/chat", json={"bot_id": bot_id, "user_id": ""}, headers=account.headers
        ),
        "400 from the handler": edge.post("/api/passport/logout", headers=account.headers),
    }
    with edge.stream(
        "POST",
        "/v3/chat",
        json={"bot_id": bot_id, "user_id": "u", "stream": True, "query": "hi"},
        headers=account.headers,
    ) as streamed:
        raw = streamed.read()
    assert streamed.headers["content-type"].startswith("text/event-stream")
    assert collapse_deltas(parse_stream(raw)) == SUCCESS
    for name, response in [*answers.items(), ("event stream", streamed)]:
        assert response.headers.get("x-ratelimit-limit"), name
        assert response.headers.get("x-ratelimit-remaining"), name
    # Chat has its own class: 60 per window by default.
    assert streamed.headers["x-ratelimit-limit"] == "60"
    # Before the account is known there is nothing to count against.
    anonymous = edge.get("/api/passport/me")
    assert_error(anonymous, 401)
    assert "x-ratelimit-limit" not in anonymous.headers


def test_an_edge_without_nats_serves_unlimited_and_says_so(
    work_dir: Path, registry_addr: str, make_account: Callable[..., Account]
) -> None:
    port = free_port()
    service = edge_process(
        port=port,
        registry_addr=registry_addr,
        # Nothing listens there: the limiter can never start.
        nats_url=f"nats://127.0.0.1:{free_port()}",
        log_dir=work_dir / "logs",
        name="edge-no-nats",
        extra_env={"COZEPLUS_EDGE_RATE_LIMIT_BOT_INFO": "2"},
    )
    url = f"http://127.0.0.1:{port}"
    # Never healthy without NATS (/healthz is 503); /metrics answers once it serves.
    service = dataclasses.replace(service, ready=http_ok(f"{url}/metrics"))
    service.start()
    try:
        service.wait_ready()
        account = make_account()
        with httpx.Client(base_url=url, headers=account.headers, timeout=30) as http:
            for _ in range(5):
                listed = http.get("/v1/bots")
                data_of(listed)
                # Served, uncounted: the remaining count never goes down.
                assert listed.headers["x-ratelimit-remaining"] == "2"
            # What does need NATS is refused as unavailable, in the same envelope.
            bot_id = data_of(http.post("/api/draftbot/create", json={"name": "b"}))["bot_id"]
            data_of(http.post("/api/draftbot/publish", json={"bot_id": bot_id}))
            chat = http.post("/v3/chat", json={"bot_id": bot_id, "user_id": "u", "query": "q"})
            assert_error(chat, 503, "temporarily unavailable")
            assert chat.headers["x-ratelimit-limit"] == "60"
            metrics = http.get("/metrics").text
        errors = next(
            float(line.split()[-1])
            for line in metrics.splitlines()
            if line.startswith("cozeplus_edge_rate_limit_store_errors_total ")
        )
        assert errors >= 5
        assert "rate-limit store unavailable" in service.log_path.read_text()
    finally:
        service.stop()
