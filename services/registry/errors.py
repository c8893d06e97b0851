"""Domain errors of the registry. The gRPC layer maps each class to one status code.

The logic modules raise only these for anything a caller did wrong, so a user error
never surfaces as UNKNOWN or INTERNAL.
"""

from __future__ import annotations


class RegistryError(Exception):
    """A failure the caller can act on; `message` is safe to show to them."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(RegistryError):
    pass


class NotFound(RegistryError):
    pass


class AlreadyExists(RegistryError):
    pass


class PermissionDenied(RegistryError):
    pass


class FailedPrecondition(RegistryError):
    pass


class Unauthenticated(RegistryError):
    pass


class Unavailable(RegistryError):
    """A dependency (NATS) failed; the caller may retry the same request."""
