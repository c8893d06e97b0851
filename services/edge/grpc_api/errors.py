"""The core's errors and the registry's statuses as this API's status codes."""

from __future__ import annotations

import logging

import grpc

from services.edge.core import errors as core

log = logging.getLogger(__name__)

INTERNAL_MSG = "internal error"
UNAVAILABLE_MSG = "service temporarily unavailable, retry later"

_CODE_BY_CORE_ERROR: tuple[tuple[type[core.EdgeError], grpc.StatusCode], ...] = (
    (core.InvalidInput, grpc.StatusCode.INVALID_ARGUMENT),  # TooLarge included
    (core.Unauthenticated, grpc.StatusCode.UNAUTHENTICATED),
    (core.PermissionDenied, grpc.StatusCode.PERMISSION_DENIED),
    (core.NotFound, grpc.StatusCode.NOT_FOUND),
    (core.Conflict, grpc.StatusCode.FAILED_PRECONDITION),
    (core.RateLimited, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (core.Unavailable, grpc.StatusCode.UNAVAILABLE),
)

# Registry statuses whose details are written for clients (see registry.proto); the rest are
# faults whose details stay in our logs.
_PASSED_ON = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.OUT_OF_RANGE,
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    }
)


def status_of_core_error(error: core.EdgeError) -> grpc.StatusCode:
    for error_class, code in _CODE_BY_CORE_ERROR:
        if isinstance(error, error_class):
            return code
    return grpc.StatusCode.INTERNAL


def status_of_registry_error(error: grpc.aio.AioRpcError) -> tuple[grpc.StatusCode, str]:
    code = error.code()
    if code in _PASSED_ON:
        return code, error.details() or code.name.lower()
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        log.warning("registry unavailable: %s %s", code, error.details())
        return grpc.StatusCode.UNAVAILABLE, UNAVAILABLE_MSG
    log.error("registry call failed: %s %s", code, error.details())
    return grpc.StatusCode.INTERNAL, INTERNAL_MSG
