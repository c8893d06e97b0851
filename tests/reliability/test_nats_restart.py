"""NATS restarted under an edge and a runner, and coming back WITHOUT its storage (a node
that lost its disk, or memory-only streams such as the rate-limit counters): every stream,
bucket and consumer is declared again on reconnect, so rate limits are exact again and chats
run again, with no service restarted."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from cozeplus.embedded_nats import EmbeddedNats
from services.cli.system import ServiceProcess, edge_process, free_port, runner_process
from tests.chat.conftest import user_message
from tests.chat.sse import SUCCESS, collapse_deltas, parse_stream
from tests.conftest import Account
from tests.edge.envelope import assert_error, data_of

LIMIT = 5
WINDOW_S = 3600
WAIT_S = 60


class System:
    def __init__(self, work_dir: Path, registry_addr: str) -> None:
        self.work_dir = work_dir / "nats-restart"
        self.port = free_port()
        self.nats = EmbeddedNats(self.work_dir / "nats-1", port=self.port)
        url = self.nats.start()
        logs = self.work_dir / "logs"
        self.edge = edge_process(
            port=free_port(),
            registry_addr=registry_addr,
            nats_url=url,
            log_dir=logs,
            name="edge",
            extra_env={
                "COZEPLUS_EDGE_RATE_LIMIT_WINDOW_S": str(WINDOW_S),
                "COZEPLUS_EDGE_RATE_LIMIT_BOT_INFO": str(LIMIT),
            },
        )
        self.runner = runner_process(
            health_port=free_port(),
            registry_addr=registry_addr,
            nats_url=url,
            log_dir=logs,
            name="runner",
        )
        for service in (self.edge, self.runner):
            service.start()
            service.wait_ready()
        self.http = httpx.Client(
            base_url=f"http://127.0.0.1:{self.edge.env['COZEPLUS_EDGE_PORT']}", timeout=30
        )

    def restart_nats_without_storage(self, name: str) -> None:
        self.nats.stop()
        self.nats = EmbeddedNats(self.work_dir / name, port=self.port)
        self.nats.start()

    def close(self) -> None:
        self.http.close()
        for service in (self.edge, self.runner):
            service.stop()
        self.nats.stop()


@pytest.fixture(scope="module")
def system(work_dir: Path, registry_addr: str) -> Iterator[System]:
    started = System(work_dir, registry_addr)
    yield started
    started.close()


def wait_for_log(service: ServiceProcess, text: str, count: int) -> None:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if service.log_path.read_text(errors="replace").count(text) >= count:
            return
        time.sleep(0.1)
    raise AssertionError(
        f"{service.name} never logged {text!r} {count} times:\n{service.log_tail()}"
    )


def away_from_a_window_edge() -> None:
    """The counts are per fixed window; stay clear of its end so a burst fits in one."""
    left = WINDOW_S - time.time() % WINDOW_S
    if left < 30:
        time.sleep(left + 0.1)


def exact_limit(http: httpx.Client, account: Account, bot_id: str) -> None:
    away_from_a_window_edge()
    for expected_remaining in range(LIMIT - 1, -1, -1):
        response = http.get(f"/v1/bots/{bot_id}", headers=account.headers)
        data_of(response)
        assert response.headers["x-ratelimit-remaining"] == str(expected_remaining)
    assert_error(http.get(f"/v1/bots/{bot_id}", headers=account.headers), 429)


def new_bot(http: httpx.Client, account: Account) -> str:
    bot = data_of(
        http.post(
            "/api/draftbot/create", json={"name": "r", "model": "echo"}, headers=account.headers
        )
    )
    data_of(
        http.post("/api/draftbot/publish", json={"bot_id": bot["bot_id"]}, headers=account.headers)
    )
    return str(bot["bot_id"])


def chat(http: httpx.Client, account: Account, bot_id: str) -> None:
    response = http.post(
        "/v3/chat",
        headers=account.headers,
        json={
            "bot_id": bot_id,
            "user_id": "u",
            "stream": True,
            "additional_messages": [user_message("still there?")],
        },
    )
    assert response.status_code == 200, response.text
    assert collapse_deltas(parse_stream(response.content)) == SUCCESS


def test_limits_and_chats_are_back_after_nats_restarts_without_its_storage(
    system: System, make_account: Callable[..., Account]
) -> None:
    before, after = make_account(), make_account()
    bot_before, bot_after = new_bot(system.http, before), new_bot(system.http, after)
    wait_for_log(system.edge, "rate limits counted in NATS", 1)
    exact_limit(system.http, before, bot_before)
    chat(system.http, before, bot_before)

    system.restart_nats_without_storage("nats-2")
    # Reconnected and declared again (the log line follows the declarations).
    wait_for_log(system.edge, "rate limits counted in NATS", 2)

    exact_limit(system.http, after, bot_after)
    # The chat work queue, the runners' consumer and the node id buckets are back too.
    wait_for_log(system.runner, "NATS declarations in place", 2)
    chat(system.http, after, bot_after)
