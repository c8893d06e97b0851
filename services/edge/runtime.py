"""What a request handler (HTTP route or gRPC method) may use, built once at start-up. The
FastAPI dependency that hands it to routes is in services/edge/deps.py."""

from __future__ import annotations

from dataclasses import dataclass

from services.edge.core.auth import Authenticator
from services.edge.core.bus import ChatBus
from services.edge.core.chats import ChatCore
from services.edge.limits import RequestLimits
from services.edge.nats_link import NatsLink
from services.edge.rate_limit import RateLimiter
from services.edge.registry import RegistryClient
from services.edge.settings import EdgeSettings


@dataclass(frozen=True, slots=True)
class EdgeRuntime:
    settings: EdgeSettings
    registry: RegistryClient
    nats: NatsLink
    authenticator: Authenticator
    chat: ChatBus
    chats: ChatCore
    # None when rate limiting is switched off.
    rate_limiter: RateLimiter | None
    limits: RequestLimits
