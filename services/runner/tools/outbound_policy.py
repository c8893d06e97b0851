"""The runner's outbound policy for plugin calls, from its settings (one place, so the
OpenAPI and MCP executors cannot disagree)."""

from __future__ import annotations

from cozeplus.outbound import OutboundPolicy, parse_networks
from services.runner.settings import RunnerSettings


def plugin_policy(settings: RunnerSettings) -> OutboundPolicy:
    return OutboundPolicy(
        allowed_networks=parse_networks(settings.plugin_allowed_networks),
        timeout_s=settings.plugin_timeout_s,
        max_redirects=settings.plugin_max_redirects,
        max_response_bytes=settings.plugin_max_response_bytes,
    )
