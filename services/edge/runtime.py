"""What a request handler may use, built once by the app's lifespan and reached through the
`Runtime` dependency."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, cast

from fastapi import Depends, Request

from cozeplus.published_versions import PublishedVersionCache
from cozeplus.rpc.v1 import registry_pb2 as pb
from services.edge.chat_bus import ChatBus
from services.edge.limits import RequestLimits
from services.edge.nats_link import NatsLink
from services.edge.rate_limit import RateLimiter
from services.edge.registry import RegistryClient
from services.edge.settings import EdgeSettings

if TYPE_CHECKING:
    from services.edge.auth import Authenticator


@dataclass(frozen=True, slots=True)
class EdgeRuntime:
    settings: EdgeSettings
    registry: RegistryClient
    nats: NatsLink
    authenticator: Authenticator
    chat: ChatBus
    # None when rate limiting is switched off.
    rate_limiter: RateLimiter | None
    limits: RequestLimits
    # The latest published version of a bot, by (owner_id, bot_id).
    published_versions: PublishedVersionCache[pb.BotVersion]


def get_runtime(request: Request) -> EdgeRuntime:
    return cast(EdgeRuntime, request.app.state.runtime)


Runtime = Annotated[EdgeRuntime, Depends(get_runtime)]
