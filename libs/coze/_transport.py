"""HTTP plumbing shared by the sync and async clients: the request description, retries with
backoff, and turning responses and httpx failures into the SDK's typed errors.

Retry rules (the product document's best practice 3, made safe for a chat API):

- HTTP 429 is always retried: the server refused the request before doing anything. A
  `Retry-After` header (seconds) is honoured; without one the delay backs off exponentially.
- 502/503/504 are retried only for idempotent methods (GET, PUT, DELETE): a POST that reached
  the server may have started a chat, and running it twice would store the question twice.
- A failure to *connect* is retried for every method: no byte of the request left the client.
- Nothing is retried once a response has started; in particular never once SSE bytes arrived,
  since a stream cannot be resumed and re-sending would start a second chat.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import os
import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from coze.errors import (
    CozeAPIError,
    CozeConnectionError,
    CozeError,
    CozeTimeoutError,
    api_error,
)

VERSION = "0.1.0"
# What `cozeplus up` serves.
DEFAULT_BASE_URL = "http://127.0.0.1:8080"
USER_AGENT = f"cozeplus-python/{VERSION}"
LOG_ID_HEADERS = ("x-tt-logid", "x-log-id")
_IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE"})
_RETRYABLE_IF_IDEMPOTENT = frozenset({502, 503, 504})

Params = dict[str, str | int]


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    params: Params | None = None
    json: Any = None

    @property
    def idempotent(self) -> bool:
        return self.method in _IDEMPOTENT


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 3
    base_delay: float = 0.5
    max_delay: float = 8.0
    # A server asking for a longer pause than this is better reported than silently waited on.
    max_retry_after: float = 60.0
    _random: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def after_status(
        self, response: httpx.Response, attempt: int, idempotent: bool
    ) -> float | None:
        """Seconds to wait before retrying this error response, or None to give up."""
        if attempt >= self.max_retries:
            return None
        status = response.status_code
        if status != 429 and not (idempotent and status in _RETRYABLE_IF_IDEMPOTENT):
            return None
        retry_after = parse_retry_after(response.headers)
        if retry_after is None:
            return self.backoff(attempt)
        if retry_after > self.max_retry_after:
            return None
        # A little jitter on top, so clients told the same instant do not return together.
        return retry_after + self._random.uniform(0, min(1.0, retry_after * 0.1))

    def after_connect_error(self, attempt: int) -> float | None:
        return self.backoff(attempt) if attempt < self.max_retries else None

    def backoff(self, attempt: int) -> float:
        # "Equal jitter": half the exponential delay fixed, half random.
        delay = min(self.max_delay, self.base_delay * 2.0**attempt)
        return delay / 2 + self._random.uniform(0, delay / 2)


def parse_retry_after(headers: httpx.Headers) -> float | None:
    value: str | None = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def log_id_of(response: httpx.Response) -> str | None:
    for name in LOG_ID_HEADERS:
        value: str | None = response.headers.get(name)
        if value:
            return value
    return None


def error_from_response(response: httpx.Response) -> CozeAPIError:
    """The typed error for an HTTP error response whose body has been read."""
    code, msg = response.status_code, response.reason_phrase or "error"
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        if isinstance(body.get("code"), int) and body["code"] != 0:
            code = body["code"]
        if isinstance(body.get("msg"), str) and body["msg"]:
            msg = body["msg"]
    elif response.text:
        msg = response.text[:500]
    return api_error(
        code,
        msg,
        http_status=response.status_code,
        log_id=log_id_of(response),
        retry_after=parse_retry_after(response.headers),
    )


def read_envelope(response: httpx.Response) -> dict[str, Any]:
    """The `{"code", "msg", "data", ...}` body of a 2xx response; a non-zero code raises."""
    try:
        body = response.json()
    except ValueError as exc:
        raise CozeError(
            f"expected a JSON envelope from {response.request.url.path}, got "
            f"{response.headers.get('content-type')!r}: {response.text[:200]!r}"
        ) from exc
    if not isinstance(body, dict) or "code" not in body:
        raise CozeError(f"expected a JSON envelope, got {json.dumps(body)[:200]}")
    if body["code"] != 0:
        raise api_error(
            int(body["code"]),
            str(body.get("msg") or "error"),
            http_status=response.status_code,
            log_id=log_id_of(response),
        )
    return body


def transport_error(exc: httpx.HTTPError, request: Request) -> CozeError:
    where = f"{request.method} {request.path}"
    if isinstance(exc, httpx.TimeoutException):
        return CozeTimeoutError(f"{where} timed out ({type(exc).__name__})")
    return CozeConnectionError(f"{where} failed: {exc or type(exc).__name__}")


@dataclass(frozen=True)
class Options:
    api_key: str
    base_url: str
    timeout: httpx.Timeout
    retry: RetryPolicy

    def url(self, path: str) -> str:
        return self.base_url + path

    def headers(self, stream: bool) -> dict[str, str]:
        # Sent per request rather than set on the httpx client, so a caller's own client
        # (`http_client=`) can be shared between several API keys.
        return {
            "Authorization": f"Bearer {self.api_key}",
            "User-Agent": USER_AGENT,
            "Accept": "text/event-stream" if stream else "application/json",
        }


def make_options(
    api_key: str | None,
    base_url: str | None,
    timeout: float | httpx.Timeout | None,
    max_retries: int,
) -> Options:
    key = api_key if api_key is not None else os.environ.get("COZE_API_KEY")
    if not key:
        raise CozeError("an API key is needed: pass api_key= or set COZE_API_KEY")
    url = base_url or os.environ.get("COZE_BASE_URL") or DEFAULT_BASE_URL
    if not url.startswith(("http://", "https://")):
        raise CozeError(f"base_url must start with http:// or https://, got {url!r}")
    if max_retries < 0:
        raise ValueError("max_retries must be 0 or more")
    return Options(
        api_key=key,
        # Routes are appended as absolute paths, so a trailing slash would double up.
        base_url=url.rstrip("/"),
        timeout=timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout),
        retry=RetryPolicy(max_retries=max_retries),
    )


class SyncTransport:
    def __init__(self, options: Options, http_client: httpx.Client | None) -> None:
        self.options = options
        self._owns_client = http_client is None
        self._http = http_client if http_client is not None else httpx.Client()

    def send(self, request: Request, *, stream: bool = False) -> httpx.Response:
        """The response to `request`, after retries; raises the typed error of a failure.
        With `stream=True` the body is left unread for the caller to consume and close."""
        options = self.options
        attempt = 0
        while True:
            http_request = self._http.build_request(
                request.method,
                options.url(request.path),
                params=request.params,
                json=request.json,
                headers=options.headers(stream),
                timeout=options.timeout,
            )
            try:
                response = self._http.send(http_request, stream=stream)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                delay = options.retry.after_connect_error(attempt)
                if delay is None:
                    raise transport_error(exc, request) from exc
                time.sleep(delay)
                attempt += 1
                continue
            except httpx.HTTPError as exc:
                raise transport_error(exc, request) from exc
            if response.status_code < 400:
                return response
            try:
                response.read()
            except httpx.HTTPError as exc:
                raise transport_error(exc, request) from exc
            finally:
                response.close()
            delay = options.retry.after_status(response, attempt, request.idempotent)
            if delay is None:
                raise error_from_response(response)
            time.sleep(delay)
            attempt += 1

    def close(self) -> None:
        if self._owns_client:
            self._http.close()


class AsyncTransport:
    def __init__(self, options: Options, http_client: httpx.AsyncClient | None) -> None:
        self.options = options
        self._owns_client = http_client is None
        self._http = http_client if http_client is not None else httpx.AsyncClient()

    async def send(self, request: Request, *, stream: bool = False) -> httpx.Response:
        """As `SyncTransport.send`."""
        options = self.options
        attempt = 0
        while True:
            http_request = self._http.build_request(
                request.method,
                options.url(request.path),
                params=request.params,
                json=request.json,
                headers=options.headers(stream),
                timeout=options.timeout,
            )
            try:
                response = await self._http.send(http_request, stream=stream)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                delay = options.retry.after_connect_error(attempt)
                if delay is None:
                    raise transport_error(exc, request) from exc
                await asyncio.sleep(delay)
                attempt += 1
                continue
            except httpx.HTTPError as exc:
                raise transport_error(exc, request) from exc
            if response.status_code < 400:
                return response
            try:
                await response.aread()
            except httpx.HTTPError as exc:
                raise transport_error(exc, request) from exc
            finally:
                await response.aclose()
            delay = options.retry.after_status(response, attempt, request.idempotent)
            if delay is None:
                raise error_from_response(response)
            await asyncio.sleep(delay)
            attempt += 1

    async def aclose(self) -> None:
        if self._owns_client:
            await self._http.aclose()
