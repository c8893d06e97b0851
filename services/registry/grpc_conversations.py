"""Moved to services/registry/servicers/conversations.py; kept importable for older code."""

from services.registry.servicers.conversations import *  # noqa: F403
from services.registry.servicers.conversations import ConversationsServicer

__all__ = ["ConversationsServicer"]
