"""Domain errors to gRPC status codes, for every servicer, in one interceptor.

A RegistryError becomes its status code with its message (written for clients); anything
else is a fault of ours and becomes INTERNAL with a generic message (the details go to the
log, with the caller's log id, not to the caller). A handler that aborted itself keeps its
status.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from services.registry.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    RegistryError,
    Unauthenticated,
    Unavailable,
)

log = logging.getLogger(__name__)

STATUS_BY_ERROR: dict[type[RegistryError], grpc.StatusCode] = {
    InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    NotFound: grpc.StatusCode.NOT_FOUND,
    AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    Unavailable: grpc.StatusCode.UNAVAILABLE,
}


def status_for(error: RegistryError) -> grpc.StatusCode:
    for error_class, code in STATUS_BY_ERROR.items():
        if isinstance(error, error_class):
            return code
    return grpc.StatusCode.INTERNAL


def caller_log_id(context: Any) -> str:
    """The caller's request id (the edge sends `x-log-id`), to join its logs with ours."""
    for key, value in context.invocation_metadata() or ():
        if key == "x-log-id":
            return str(value)
    return "-"


UnaryBehavior = Callable[[Any, Any], Awaitable[Any]]


class ErrorInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self) -> None:
        # The translating handler of each served method, made once: a server's handlers
        # never change, and a new one per call was a measurable share of a call's cost.
        self._translated: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        # Only unary methods here (the registry has no streams); others pass untouched.
        if handler is None or handler.unary_unary is None:
            return handler
        method = handler_call_details.method
        translated = self._translated.get(method)
        if translated is None:
            translated = self._translated[method] = grpc.unary_unary_rpc_method_handler(
                _translating(method, handler.unary_unary),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return translated


def _translating(method: str, behavior: UnaryBehavior) -> UnaryBehavior:
    name = method.rsplit("/", 1)[-1]

    async def translated(request: Any, context: Any) -> Any:
        try:
            return await behavior(request, context)
        except grpc.aio.AbortError:
            raise  # the handler chose its status itself
        except RegistryError as exc:
            code = status_for(exc)
            log.debug("%s -> %s: %s [log id %s]", name, code.name, exc, caller_log_id(context))
            await context.abort(code, exc.message)
        except Exception:
            log.exception("%s failed [log id %s]", name, caller_log_id(context))
            await context.abort(grpc.StatusCode.INTERNAL, "internal error")

    return translated
