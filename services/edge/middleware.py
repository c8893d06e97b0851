"""Pure ASGI middleware: request context (log id, access log, last-resort 500) and the body
size limit.

Both are plain ASGI rather than Starlette's BaseHTTPMiddleware so that they see every
response, including Starlette's own 404/405 and streamed bodies, without buffering them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.edge.errors import INTERNAL_ERROR_MSG, error_response
from services.edge.log_id import LOG_ID, LogIdFilter, new_log_id

__all__ = [
    "LOG_ID",
    "LOG_ID_HEADERS",
    "RATE_LIMIT_STATE",
    "BodyLimitMiddleware",
    "LogIdFilter",
    "RequestContextMiddleware",
    "new_log_id",
]

log = logging.getLogger(__name__)
access_log = logging.getLogger("services.edge.access")

LOG_ID_HEADERS = (b"x-log-id", b"x-tt-logid")
# Key in the request state (scope["state"]) under which authentication leaves the rate-limit
# decision of the request.
RATE_LIMIT_STATE = "rate_limit"


class RequestContextMiddleware:
    """Outermost layer: gives each request a log id (echoed in X-Log-ID and x-tt-logid),
    logs one access line, and turns any unhandled exception into a 500 envelope.

    It also writes X-RateLimit-Limit / X-RateLimit-Remaining once the request has been
    counted against an account (see services/edge/deps.py): here, rather than in each
    response, so that successes, every kind of error and event streams all carry them.
    Requests refused before the account is known (401, a malformed body, 413) have none.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        log_id = new_log_id()
        token = LOG_ID.set(log_id)
        header_value = log_id.encode()
        status = 0
        started = time.perf_counter()
        # The dict Starlette's request.state writes to, for every handler of this request.
        state: dict[str, Any] = scope.setdefault("state", {})

        async def send_with_log_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", ()))
                headers.extend((name, header_value) for name in LOG_ID_HEADERS)
                decision = state.get(RATE_LIMIT_STATE)
                if decision is not None:
                    headers.append((b"x-ratelimit-limit", str(decision.limit).encode()))
                    headers.append((b"x-ratelimit-remaining", str(decision.remaining).encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_log_id)
        except Exception:
            log.exception("unhandled error serving %s %s", scope["method"], scope["path"])
            if status:
                raise  # headers are out; the server can only drop the connection
            await error_response(500, INTERNAL_ERROR_MSG)(scope, receive, send_with_log_id)
        finally:
            access_log.info(
                "%s %s %d %.1fms",
                scope["method"],
                scope["path"],
                status,
                (time.perf_counter() - started) * 1000,
            )
            LOG_ID.reset(token)


class BodyLimitMiddleware:
    """Rejects request bodies larger than `max_bytes` with a 413 envelope.

    The limit is enforced on the bytes actually received, so a chunked body or a lying
    Content-Length cannot get past it. The body is read before the app runs (the edge only
    takes small JSON bodies) and replayed to it; nothing beyond the limit is ever kept.
    """

    # After refusing a body we keep reading (and discarding) what the client is still
    # sending, up to this much, so that clients which only read the response once their
    # upload is done (httpx, requests) see the 413 instead of a reset connection.
    DRAIN_LIMIT_BYTES = 64 * 1024 * 1024

    def __init__(
        self, app: ASGIApp, max_bytes: int, path_limits: Mapping[str, int] | None = None
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        # Routes that take more than small JSON (file uploads, base64 documents).
        self.path_limits = dict(path_limits or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        max_bytes = self.path_limits.get(scope.get("path", ""), self.max_bytes)
        if max_bytes != self.max_bytes:
            await BodyLimitMiddleware(self.app, max_bytes)(scope, receive, send)
            return
        headers = Headers(scope=scope)
        declared = _content_length(headers)
        if declared is not None and declared > self.max_bytes:
            # A client waiting for "100 Continue" has not sent the body yet: answer at once.
            if headers.get("expect", "").lower() != "100-continue":
                await self._drain(receive, 0)
            await self._reject(scope, receive, send)
            return

        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                if message.get("more_body", False):
                    await self._drain(receive, size)
                await self._reject(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break

        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            # Later calls are the app waiting for a disconnect (e.g. while streaming).
            return await receive()

        await self.app(scope, replay, send)

    async def _drain(self, receive: Receive, received: int) -> None:
        while received <= self.DRAIN_LIMIT_BYTES:
            message = await receive()
            if message["type"] != "http.request":
                return
            received += len(message.get("body", b""))
            if not message.get("more_body", False):
                return

    async def _reject(self, scope: Scope, receive: Receive, send: Send) -> None:
        msg = f"request body too large: the limit is {self.max_bytes} bytes"
        response = error_response(413, msg, headers={"connection": "close"})
        await response(scope, receive, send)


def _content_length(headers: Headers) -> int | None:
    value = headers.get("content-length")
    if value is None or not value.isdigit():
        return None
    return int(value)
