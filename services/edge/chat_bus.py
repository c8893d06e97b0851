"""Moved to services/edge/core/bus.py; kept importable for code written before the move."""

from services.edge.core.bus import CHAT_UNAVAILABLE_MSG, ChatBus

__all__ = ["CHAT_UNAVAILABLE_MSG", "ChatBus"]
