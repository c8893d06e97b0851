"""An edge serving the public gRPC API beside HTTP, with a runner and the mock LLM behind it.

Bot-info requests are limited to 30 per account per hour on this edge (an hour, so no
window edge falls inside a test), for the test that shares the count between transports.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import httpx
import pytest

from cozeplus.api.v1 import bots_pb2_grpc, chat_pb2_grpc, conversations_pb2_grpc
from services.cli.system import ServiceProcess, edge_process, free_port
from tests.conftest import Account

BOT_INFO_LIMIT = 30


class GrpcEdge:
    def __init__(self, url: str, grpc_addr: str) -> None:
        self.url = url
        self.grpc_addr = grpc_addr


@pytest.fixture(scope="session")
def grpc_edge(
    work_dir: Path,
    nats_url: str,
    registry_addr: str,
    runner: ServiceProcess,
    mock_llm: str,
    start_service: Callable[[ServiceProcess], ServiceProcess],
) -> GrpcEdge:
    port, grpc_port = free_port(), free_port()
    start_service(
        edge_process(
            port=port,
            registry_addr=registry_addr,
            nats_url=nats_url,
            log_dir=work_dir / "logs",
            name="edge-grpc",
            extra_env={
                "COZEPLUS_EDGE_GRPC_PORT": str(grpc_port),
                "COZEPLUS_EDGE_RATE_LIMIT_BOT_INFO": str(BOT_INFO_LIMIT),
                "COZEPLUS_EDGE_RATE_LIMIT_WINDOW_S": "3600",
            },
        )
    )
    return GrpcEdge(f"http://127.0.0.1:{port}", f"127.0.0.1:{grpc_port}")


@pytest.fixture(scope="session")
def channel(grpc_edge: GrpcEdge) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(grpc_edge.grpc_addr) as ch:
        grpc.channel_ready_future(ch).result(timeout=10)
        yield ch


@pytest.fixture
def chats(channel: grpc.Channel) -> chat_pb2_grpc.ChatServiceStub:
    return chat_pb2_grpc.ChatServiceStub(channel)


@pytest.fixture
def bots(channel: grpc.Channel) -> bots_pb2_grpc.BotServiceStub:
    return bots_pb2_grpc.BotServiceStub(channel)


@pytest.fixture
def conversations(channel: grpc.Channel) -> conversations_pb2_grpc.ConversationServiceStub:
    return conversations_pb2_grpc.ConversationServiceStub(channel)


@pytest.fixture
def http(grpc_edge: GrpcEdge, account: Account) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=grpc_edge.url, headers=account.headers, timeout=60) as client:
        yield client


def auth(account: Account) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {account.token}")]


@pytest.fixture
def make_bot(http: httpx.Client) -> Callable[..., int]:
    def make(model: str = "mock-echo", publish: bool = True) -> int:
        created = http.post("/api/draftbot/create", json={"name": "grpc bot", "model": model})
        assert created.status_code == 200, created.text
        bot_id = int(created.json()["data"]["bot_id"])
        if publish:
            published = http.post("/api/draftbot/publish", json={"bot_id": bot_id})
            assert published.status_code == 200, published.text
        return bot_id

    return make
