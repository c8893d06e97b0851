"""The exceptions the SDK raises.

Everything derives from `CozeError`, so one `except CozeError` catches all of them:

- `CozeAPIError`: the server answered with an error envelope (`{"code", "msg", "data"}`), either
  with an HTTP error status or with HTTP 200 and a non-zero code. One subclass per HTTP class, so
  callers can catch `NotFoundError` rather than compare numbers.
- `CozeConnectionError`: no usable answer (refused, reset, cut mid-stream).
- `CozeTimeoutError`: the configured timeout passed while connecting or waiting for bytes.
- `CozeStreamError`: the server broke the SSE framing the wire contract promises.

A chat that *fails* while streaming is not an exception: the stream yields one `error` event, as
the product document's sample expects. A non-streaming chat that ends failed raises
`ChatFailedError`, because there the return value would otherwise look like an empty answer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from coze.models import ChatAnswer


class CozeError(Exception):
    """Base class of every error the SDK raises."""


class CozeAPIError(CozeError):
    """The server refused or failed the request; `code`/`msg` come from its error envelope."""

    def __init__(
        self, code: int, msg: str, *, log_id: str | None = None, http_status: int | None = None
    ) -> None:
        self.code = code
        self.msg = msg
        self.log_id = log_id
        self.http_status = http_status
        super().__init__(self._describe())

    def _describe(self) -> str:
        text = f"code={self.code} msg={self.msg!r}"
        if self.http_status is not None:
            text += f" http_status={self.http_status}"
        if self.log_id:
            # The log id is what an operator needs to find the request in the server's logs.
            text += f" log_id={self.log_id}"
        return text


class BadRequestError(CozeAPIError):
    """400: the request was invalid; `msg` names the field."""


class AuthenticationError(CozeAPIError):
    """401: missing, invalid, expired or revoked API key."""


class PermissionDeniedError(CozeAPIError):
    """403: authenticated, but the action is not allowed."""


class NotFoundError(CozeAPIError):
    """404: no such resource (or another tenant's, which the server does not reveal)."""


class ConflictError(CozeAPIError):
    """409: the resource is not in a state that allows this (e.g. cancelling a finished chat)."""


class RateLimitError(CozeAPIError):
    """429: too many requests, after the client's own retries were used up."""

    def __init__(
        self,
        code: int,
        msg: str,
        *,
        log_id: str | None = None,
        http_status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.retry_after = retry_after
        super().__init__(code, msg, log_id=log_id, http_status=http_status)


class ServerError(CozeAPIError):
    """5xx: the server failed; the request may be retried later."""


class ChatFailedError(CozeAPIError):
    """A non-streaming chat ended with status `failed`; `code`/`msg` are its `last_error`."""

    def __init__(
        self,
        code: int,
        msg: str,
        *,
        answer: ChatAnswer,
        log_id: str | None = None,
        http_status: int | None = None,
    ) -> None:
        self.answer = answer
        super().__init__(code, msg, log_id=log_id, http_status=http_status)


class CozeConnectionError(CozeError):
    """The server could not be reached, or the connection broke before the answer was complete."""


class CozeTimeoutError(CozeError):
    """The configured timeout passed while connecting, sending, or waiting for the next bytes."""


class CozeStreamError(CozeError):
    """The event stream broke the wire contract's framing, or ended before its `done` event."""


_BY_STATUS: dict[int, type[CozeAPIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    429: RateLimitError,
}


def api_error(
    code: int,
    msg: str,
    *,
    http_status: int | None,
    log_id: str | None,
    retry_after: float | None = None,
) -> CozeAPIError:
    """The most specific error for a response: by HTTP status, or by the envelope's code when
    the HTTP status is 200 (the code then follows the same numbering)."""
    status = http_status if http_status is not None and http_status >= 400 else code
    if status == 429:
        return RateLimitError(
            code, msg, log_id=log_id, http_status=http_status, retry_after=retry_after
        )
    if status >= 500:
        return ServerError(code, msg, log_id=log_id, http_status=http_status)
    cls = _BY_STATUS.get(status, CozeAPIError)
    return cls(code, msg, log_id=log_id, http_status=http_status)
