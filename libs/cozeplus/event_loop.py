"""How every service runs its asyncio main: on uvloop where it is installed.

uvloop's libuv-based loop cuts the per-event cost of the loop itself (socket reads and
writes, callbacks, timers), which the runner and registry pay for every NATS message and
gRPC call (issue 14; about 8 % of their CPU per chat measured). `COZEPLUS_EVENT_LOOP=asyncio`
runs the standard loop instead, to compare or to rule uvloop out. The edge's uvicorn takes
the same choice (services/edge/main.py); its gRPC API's grpc.aio server runs on uvloop as the
registry's does.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def use_uvloop() -> bool:
    if os.environ.get("COZEPLUS_EVENT_LOOP", "").strip().lower() == "asyncio":
        return False
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


def run(main: Coroutine[Any, Any, T]) -> T:
    if use_uvloop():
        import uvloop

        return uvloop.run(main)
    return asyncio.run(main)
