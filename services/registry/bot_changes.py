"""Tells edges and runners that a bot's published state changed (BOT_CHANGED), so they drop
what they cached of it. Best effort: their caches also expire (TTL), so a lost message only
delays the change by that much, and a publish must not fail because NATS is away."""

from __future__ import annotations

import logging

from nats.aio.client import Client as NATS

from cozeplus.published_versions import bot_changed_payload
from cozeplus.subjects import BOT_CHANGED

log = logging.getLogger(__name__)


class NatsBotChanges:
    def __init__(self, nc: NATS) -> None:
        self._nc = nc

    async def __call__(self, bot_id: int) -> None:
        try:
            await self._nc.publish(BOT_CHANGED, bot_changed_payload(bot_id))
        except Exception:
            log.exception("could not announce a change of bot %d", bot_id)
