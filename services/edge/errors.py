"""One error model for the edge: every failure leaves as `{"code": N, "msg": ..., "data": null}`
with HTTP status N, whatever raised it (our code, FastAPI validation, Starlette routing, the
registry over gRPC, NATS). Anything else is a bug: RequestContextMiddleware logs it with its
stack and answers a generic 500."""

from __future__ import annotations

import http
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import grpc
import nats.errors
import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from services.edge.core import errors as core

log = logging.getLogger(__name__)

INTERNAL_ERROR_MSG = "internal server error"
UNAVAILABLE_MSG = "service temporarily unavailable, retry later"
TOO_MANY_REQUESTS_MSG = "too many requests"

# Registry status codes whose details are written for clients (see registry.proto); any other
# code is a fault whose details stay in our logs.
_GRPC_STATUS_TO_HTTP: dict[Any, int] = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.FAILED_PRECONDITION: 409,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 503,
}

_STATUS_MESSAGES = {
    400: "bad request",
    401: "unauthorized",
    403: "forbidden",
    404: "not found",
    405: "method not allowed",
    409: "conflict",
    413: "request body too large",
    429: TOO_MANY_REQUESTS_MSG,
    500: INTERNAL_ERROR_MSG,
    503: UNAVAILABLE_MSG,
}


_LOCATIONS = frozenset({"body", "query", "path", "header", "cookie"})


class ApiError(Exception):
    """A failure the client should see as-is: HTTP status and a human-readable message."""

    def __init__(self, status: int, msg: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(msg)
        self.status = status
        self.msg = msg
        self.headers = dict(headers or {})


# The core's errors as HTTP statuses (the gRPC API has its own table).
_STATUS_BY_CORE_ERROR: tuple[tuple[type[core.EdgeError], int], ...] = (
    (core.TooLarge, 413),  # before InvalidInput, its base
    (core.InvalidInput, 400),
    (core.Unauthenticated, 401),
    (core.PermissionDenied, 403),
    (core.NotFound, 404),
    (core.Conflict, 409),
    (core.RateLimited, 429),
    (core.Unavailable, 503),
)


def core_error_status(exc: core.EdgeError) -> int:
    for error_class, status in _STATUS_BY_CORE_ERROR:
        if isinstance(exc, error_class):
            return status
    return 500


def error_response(status: int, msg: str, headers: Mapping[str, str] | None = None) -> Response:
    body = orjson.dumps({"code": status, "msg": msg, "data": None})
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def grpc_error_to_api_error(exc: grpc.aio.AioRpcError) -> ApiError:
    status = _GRPC_STATUS_TO_HTTP.get(exc.code(), 500)
    if status == 500:
        log.error("registry call failed: %s %s", exc.code(), exc.details(), exc_info=exc)
        return ApiError(500, INTERNAL_ERROR_MSG)
    if status == 503:
        log.warning("registry unavailable: %s %s", exc.code(), exc.details())
        return ApiError(503, UNAVAILABLE_MSG)
    return ApiError(status, exc.details() or _STATUS_MESSAGES[status])


def validation_message(errors: Sequence[Any]) -> str:
    """The first validation error as one sentence that names the offending field."""
    if not errors:
        return "invalid request"
    error = errors[0]
    kind = error.get("type", "")
    loc = list(error.get("loc", ()))
    # The first part says where the field was (body, query, ...); only that one is dropped, as
    # a field may be called `query` too.
    if loc and loc[0] in _LOCATIONS:
        loc = loc[1:]
    if kind == "json_invalid":
        detail = (error.get("ctx") or {}).get("error", "")
        return f"malformed JSON body: {detail}" if detail else "malformed JSON body"
    if not loc:
        if kind == "missing":
            return "request body is required: send a JSON object"
        if kind in ("model_attributes_type", "dict_type", "model_type"):
            return "request body must be a JSON object (Content-Type: application/json)"
        return f"invalid request body: {error.get('msg', '')}"
    field = _field_path(loc)
    if kind == "missing":
        return f"{field} is required"
    return f"invalid {field}: {error.get('msg', 'invalid value')}"


def _field_path(loc: Sequence[Any]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


async def _api_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.msg, exc.headers)


# FastAPI's answer when reading the JSON body fails other than by a syntax error; the cause
# says more, in words a client can act on.
_FASTAPI_BODY_ERROR = "There was an error parsing the body"


def _body_error_message(cause: BaseException | None) -> str:
    if isinstance(cause, UnicodeError):
        return "malformed JSON body: it is not valid UTF-8"
    if isinstance(cause, RecursionError):
        return "malformed JSON body: nested too deeply"
    return "malformed JSON body"


async def _core_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, core.EdgeError)
    headers: dict[str, str] = {}
    if isinstance(exc, core.Unauthenticated):
        headers["WWW-Authenticate"] = "Bearer"
    elif isinstance(exc, core.RateLimited):
        headers["Retry-After"] = str(exc.retry_after_s)
    return error_response(core_error_status(exc), exc.msg, headers)


async def _http_exception_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    detail = exc.detail if isinstance(exc.detail, str) else ""
    if status == 400 and detail == _FASTAPI_BODY_ERROR:
        return error_response(400, _body_error_message(exc.__cause__))
    # Starlette's own details are bare reason phrases ("Not Found"); ours read better.
    if not detail or detail == _reason_phrase(status):
        detail = _STATUS_MESSAGES.get(status) or detail or "error"
    return error_response(status, detail, exc.headers)


def _reason_phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return ""


async def _validation_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return error_response(400, validation_message(exc.errors()))


async def _grpc_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, grpc.aio.AioRpcError)
    error = grpc_error_to_api_error(exc)
    return error_response(error.status, error.msg)


async def _nats_error_handler(request: Request, exc: Exception) -> Response:
    # A NATS call that failed during a request (connection lost mid-call, a publish that
    # timed out): the message queue is unavailable, not the request wrong.
    log.warning("NATS call failed: %r", exc)
    return error_response(503, UNAVAILABLE_MSG)


def install_error_handlers(app: FastAPI) -> None:
    # Unhandled exceptions are turned into 500 envelopes by RequestContextMiddleware, which
    # sits outside these handlers so the response still carries the log id.
    app.add_exception_handler(ApiError, _api_error_handler)
    app.add_exception_handler(core.EdgeError, _core_error_handler)
    app.add_exception_handler(StarletteHTTPException, _http_exception_handler)
    app.add_exception_handler(RequestValidationError, _validation_error_handler)
    app.add_exception_handler(grpc.aio.AioRpcError, _grpc_error_handler)
    app.add_exception_handler(nats.errors.Error, _nats_error_handler)
