"""What can go wrong in the edge's core (chats, authentication, rate limits), free of any
transport. The HTTP routes turn these into `{"code","msg","data"}` envelopes with a status
(services/edge/errors.py); the gRPC API into status codes (services/edge/grpc_api/errors.py).
`msg` is written for the client."""

from __future__ import annotations


class EdgeError(Exception):
    def __init__(self, msg: str) -> None:
        super().__init__(msg)
        self.msg = msg


class InvalidInput(EdgeError):
    """The request is malformed or out of bounds (HTTP 400)."""


class TooLarge(InvalidInput):
    """The request would not fit on the message queue (HTTP 413)."""


class NotFound(EdgeError):
    """Unknown, or another tenant's (HTTP 404)."""


class Conflict(EdgeError):
    """The resource is not in a state that allows this (HTTP 409), e.g. cancelling a
    finished chat."""


class Unauthenticated(EdgeError):
    """Missing, invalid, expired or revoked credentials (HTTP 401)."""


class PermissionDenied(EdgeError):
    """Valid credentials, action not allowed (HTTP 403)."""


class RateLimited(EdgeError):
    """The account used up its requests of this class for the window (HTTP 429)."""

    def __init__(self, msg: str, retry_after_s: int) -> None:
        super().__init__(msg)
        self.retry_after_s = retry_after_s


class Unavailable(EdgeError):
    """A dependency (message queue, runners) cannot serve right now; retry later (HTTP 503)."""
