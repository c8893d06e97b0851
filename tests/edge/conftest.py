from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import httpx
import pytest

from services.cli.system import ServiceProcess, edge_process, free_port
from tests.conftest import Account

StartEdge = Callable[[str, Mapping[str, str]], str]


@pytest.fixture
def client(edge_url: str, account: Account) -> Iterator[httpx.Client]:
    """The account's API key on every request."""
    with httpx.Client(base_url=edge_url, headers=account.headers, timeout=30) as http:
        yield http


@pytest.fixture
def anon(edge_url: str) -> Iterator[httpx.Client]:
    """No credentials; cookies kept between requests, like a browser."""
    with httpx.Client(base_url=edge_url, timeout=30) as http:
        yield http


@pytest.fixture(scope="session")
def start_edge(
    work_dir: Path,
    nats_url: str,
    registry_addr: str,
    start_service: Callable[[ServiceProcess], ServiceProcess],
) -> StartEdge:
    """Start one more edge process (another replica) with extra settings; returns its URL."""

    def start(name: str, extra_env: Mapping[str, str]) -> str:
        port = free_port()
        start_service(
            edge_process(
                port=port,
                registry_addr=registry_addr,
                nats_url=nats_url,
                log_dir=work_dir / "logs",
                name=name,
                extra_env=extra_env,
            )
        )
        return f"http://127.0.0.1:{port}"

    return start


TRUSTED_ORIGIN = "https://console.example.com"


@pytest.fixture(scope="session")
def second_edge_url(start_edge: StartEdge) -> str:
    """A second replica, configured for HTTPS cookies and a trusted console origin."""
    return start_edge(
        "edge-2",
        {
            "COZEPLUS_EDGE_COOKIE_SECURE": "true",
            "COZEPLUS_EDGE_ALLOWED_ORIGINS": f'["{TRUSTED_ORIGIN}"]',
        },
    )


@pytest.fixture(scope="session")
def lonely_edge_url(work_dir: Path) -> Iterator[str]:
    """An edge whose registry and NATS addresses have nothing listening."""
    port = free_port()
    service = edge_process(
        port=port,
        registry_addr=f"127.0.0.1:{free_port()}",
        nats_url=f"nats://127.0.0.1:{free_port()}",
        log_dir=work_dir / "logs",
        name="edge-lonely",
    )
    service.start()
    url = f"http://127.0.0.1:{port}"
    try:
        # Never healthy by design: wait until it answers at all.
        deadline = time.monotonic() + 30
        while True:
            assert service.alive, service.log_tail()
            try:
                httpx.get(f"{url}/healthz", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, service.log_tail()
                time.sleep(0.05)
        yield url
    finally:
        service.stop()


@pytest.fixture
def other_account(make_account: Callable[..., Account]) -> Account:
    return make_account()
