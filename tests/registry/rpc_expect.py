"""Assertions on gRPC failures."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

import grpc
import pytest


async def expect_status(call: Awaitable[Any], code: grpc.StatusCode, message_part: str = "") -> str:
    """Await `call`, require it to fail with `code` and a message containing `message_part`;
    returns the message."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    error = caught.value
    details = error.details() or ""
    assert error.code() == code, f"expected {code.name}, got {error.code().name}: {details}"
    assert message_part in details, f"{message_part!r} not in {details!r}"
    return details
