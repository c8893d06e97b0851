"""Typed errors from the real edge: code, msg, HTTP status and log id."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from coze import (
    AsyncCozeClient,
    AuthenticationError,
    BadRequestError,
    CozeAPIError,
    CozeClient,
    CozeError,
    CozeTimeoutError,
    NotFoundError,
)


def test_bad_api_key_is_authentication_error(chat_system: str) -> None:
    client = CozeClient(api_key="pat_not_a_real_key", base_url=chat_system)
    with client, pytest.raises(AuthenticationError) as caught:
        client.bots.get(123)
    error = caught.value
    assert isinstance(error, CozeAPIError) and isinstance(error, CozeError)
    assert (error.code, error.http_status) == (401, 401)
    assert error.msg
    assert error.log_id and len(error.log_id) >= 16
    assert error.log_id in str(error) and "code=401" in str(error)


def test_unknown_bot_is_not_found_for_every_call_style(client: CozeClient) -> None:
    with pytest.raises(NotFoundError) as caught:
        client.bots.get(123)
    assert caught.value.code == 404 and "123" in caught.value.msg and caught.value.log_id
    with pytest.raises(NotFoundError):
        client.bots.online_info("123")
    # A streaming chat is refused before any stream: the error raises at the call.
    with pytest.raises(NotFoundError) as streaming:
        client.chat(bot_id=12345, query="hello?", stream=True)
    assert streaming.value.http_status == 404
    with pytest.raises(NotFoundError):
        client.chat(bot_id=12345, query="hello?")


def test_invalid_request_is_bad_request_naming_the_field(
    client: CozeClient, make_bot: Callable[..., str]
) -> None:
    bot_id = make_bot(model="mock-echo")
    with pytest.raises(BadRequestError) as caught:
        client.chat(bot_id=bot_id, stream=True)  # no message at all
    error = caught.value
    assert (error.code, error.http_status) == (400, 400)
    assert "additional_messages" in error.msg and error.log_id
    with pytest.raises(BadRequestError) as bad_id:
        client.bots.get("not-a-number")
    assert "bot_id" in bad_id.value.msg


def test_timeout_is_coze_timeout_error_and_not_retried(
    chat_system: str, account: object, make_bot: Callable[..., str]
) -> None:
    # mock-slow waits 60 s for its first token (the test runner gives up after 3 s).
    bot_id = make_bot(model="mock-slow")
    token = account.token  # type: ignore[attr-defined]
    with CozeClient(api_key=token, base_url=chat_system, timeout=1.0) as client:
        started = time.monotonic()
        with pytest.raises(CozeTimeoutError):
            client.chat(bot_id=bot_id, query="are you there?")
        # One attempt: a POST that reached the server is never re-sent.
        assert time.monotonic() - started < 2.5

        # Streaming: the chat starts, then no byte comes for longer than the timeout.
        stream = client.chat(bot_id=bot_id, query="still there?", stream=True)
        assert next(stream).type == "created"
        with pytest.raises(CozeTimeoutError):
            list(stream)
        assert stream.response.is_closed


async def test_async_errors(chat_system: str, aclient: AsyncCozeClient) -> None:
    async with AsyncCozeClient(api_key="pat_wrong", base_url=chat_system) as bad:
        with pytest.raises(AuthenticationError) as caught:
            await bad.bots.get(1)
    assert caught.value.log_id
    with pytest.raises(NotFoundError):
        await aclient.chat(bot_id=12345, query="x", stream=True)
    with pytest.raises(BadRequestError):
        await aclient.conversations.retrieve("abc")
