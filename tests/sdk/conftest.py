"""Fixtures for the SDK tests: a real system (edge, registry, runner, mock LLM) from
tests/chat/conftest.py, and SDK clients authenticated as a fresh account."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from coze import AsyncCozeClient, CozeClient
from tests.chat.conftest import api, bots_stub, chat_system, make_bot  # noqa: F401
from tests.conftest import Account


@pytest.fixture
def client(chat_system: str, account: Account) -> Iterator[CozeClient]:  # noqa: F811
    with CozeClient(api_key=account.token, base_url=chat_system, timeout=30) as sdk:
        yield sdk


@pytest.fixture
async def aclient(chat_system: str, account: Account) -> AsyncIterator[AsyncCozeClient]:  # noqa: F811
    async with AsyncCozeClient(api_key=account.token, base_url=chat_system, timeout=30) as sdk:
        yield sdk


def last_prompt(mock_llm: str) -> list[dict[str, object]]:
    """The messages the mock LLM received in its latest chat request."""
    messages: list[dict[str, object]] = httpx.get(f"{mock_llm}/mock/requests").json()[-1][
        "messages"
    ]
    return messages
