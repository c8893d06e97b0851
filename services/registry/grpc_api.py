"""Moved: the servicers are in services/registry/servicers/ (one module per service) and
errors are translated by one interceptor (servicers/errors.py). Kept importable for code
written before the split; new code imports from services.registry.servicers."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from services.registry.servicers.accounts import (
    AccountsServicer,
    api_key_to_proto,
    user_to_proto,
)
from services.registry.servicers.bots import (
    BotRegistryServicer,
    config_from_proto,
    config_to_proto,
    draft_to_proto,
    version_to_proto,
)
from services.registry.servicers.errors import STATUS_BY_ERROR, status_for

__all__ = [
    "STATUS_BY_ERROR",
    "AccountsServicer",
    "BotRegistryServicer",
    "api_key_to_proto",
    "config_from_proto",
    "config_to_proto",
    "draft_to_proto",
    "status_for",
    "translate_errors",
    "user_to_proto",
    "version_to_proto",
]

Handler = TypeVar("Handler", bound=Callable[..., object])


def translate_errors(handler: Handler) -> Handler:
    """No longer needed (the ErrorInterceptor does it for every method); a no-op so servicers
    written with it keep working."""
    return handler
