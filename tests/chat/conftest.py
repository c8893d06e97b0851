from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from google.protobuf.field_mask_pb2 import FieldMask

from cozeplus.rpc.v1 import registry_pb2 as pb
from cozeplus.rpc.v1.registry_pb2_grpc import BotRegistryStub
from cozeplus.service_auth import service_channel
from services.cli.system import ServiceProcess
from tests.chat.plugin_bots import make_plugin_bot, plugin_servers  # noqa: F401 (fixtures)
from tests.conftest import Account


@pytest.fixture(scope="session")
def chat_system(edge_url: str, runner: ServiceProcess, mock_llm: str) -> str:
    """The edge URL of a system with a runner and the mock LLM behind it."""
    return edge_url


@pytest.fixture
def api(chat_system: str, account: Account) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=chat_system, headers=account.headers, timeout=30) as client:
        yield client


@pytest.fixture(scope="session")
def bots_stub(registry_addr: str) -> Iterator[BotRegistryStub]:
    with service_channel(registry_addr) as channel:
        yield BotRegistryStub(channel)


@pytest.fixture
def make_bot(api: httpx.Client, account: Account, bots_stub: BotRegistryStub) -> Callable[..., str]:
    """Create and publish a bot through the HTTP API; returns its id as a string."""

    def make(
        model: str = "mock",
        prompt: str = "You are a test bot.",
        history_rounds: int | None = None,
        publish: bool = True,
        **config: Any,
    ) -> str:
        created = api.post(
            "/api/draftbot/create", json={"name": "chat bot", "prompt": prompt, "model": model}
        )
        assert created.status_code == 200, created.text
        bot_id = int(created.json()["data"]["bot_id"])
        if history_rounds is not None:
            bots_stub.UpdateConfig(
                pb.UpdateConfigRequest(
                    owner_id=account.user_id,
                    bot_id=bot_id,
                    config=pb.BotConfig(history_rounds=history_rounds, **config),
                    update_mask=FieldMask(paths=["history_rounds", *config]),
                )
            )
        if publish:
            published = api.post("/api/draftbot/publish", json={"bot_id": bot_id})
            assert published.status_code == 200, published.text
        return str(bot_id)

    return make


def user_message(text: str) -> dict[str, str]:
    return {"role": "user", "content": text, "content_type": "text"}
