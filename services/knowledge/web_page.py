"""Fetching a `web_url` document: the one place the worker reaches a user-chosen URL.

Outbound rules of wire contract section 7, through libs/cozeplus/outbound.py (the same
checked client as plugin calls): a timeout, a size cap, at most N redirects, and every
connection, redirects included, made only to an address that is public or inside the
allowed networks. The address checked is the one connected to, so a DNS answer that
changes between check and connect (rebinding) cannot slip through.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx2

from cozeplus.outbound import (
    IPNetwork,
    OutboundPolicy,
    RefusedAddress,
    ResponseTooLarge,
    outbound_client,
    parse_networks,
)


class WebPageError(RuntimeError):
    """Why the page could not be fetched; shown to the user as `status_descript`."""


@dataclass(frozen=True)
class WebLimits:
    timeout_s: float
    max_bytes: int
    max_redirects: int
    allowed_networks: tuple[IPNetwork, ...] = ()

    @staticmethod
    def parse_networks(text: str) -> tuple[IPNetwork, ...]:
        return parse_networks(text)

    def policy(self) -> OutboundPolicy:
        return OutboundPolicy(
            allowed_networks=self.allowed_networks,
            timeout_s=self.timeout_s,
            max_redirects=self.max_redirects,
            max_response_bytes=self.max_bytes,
        )


async def fetch_web_page(url: str, limits: WebLimits) -> bytes:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebPageError(f"{url}: only http and https URLs can be fetched")
    try:
        async with (
            outbound_client(limits.policy()) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code != 200:
                raise WebPageError(f"{response.url} answered HTTP {response.status_code}")
            return await response.aread()
    except RefusedAddress as exc:
        raise WebPageError(str(exc)) from exc
    except ResponseTooLarge as exc:
        too_large = f"the page is larger than the limit of {limits.max_bytes} bytes"
        raise WebPageError(too_large) from exc
    except httpx2.TooManyRedirects as exc:
        raise WebPageError(f"more than {limits.max_redirects} redirects") from exc
    except httpx2.TimeoutException as exc:
        raise WebPageError(f"{url}: no answer within {limits.timeout_s:g}s") from exc
    except httpx2.HTTPError as exc:
        raise WebPageError(f"{url}: {exc}") from exc
