"""Fetching a `web_url` document: the one place the worker reaches a user-chosen URL.

Outbound rules of wire contract section 7: a timeout, a size cap, at most N redirects each
re-checked, and no loopback, private, link-local or metadata address unless it is inside
the allowed networks. This module checks the address the host name resolves to before each
request; libs/cozeplus/outbound.py (the plugins engineer's) checks the address of the very
connection, which also closes the DNS-rebinding window. `fetch_web_page` is the only entry
point, so switching to it is a one-function change.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import httpx


class WebPageError(RuntimeError):
    """Why the page could not be fetched; shown to the user as `status_descript`."""


@dataclass(frozen=True)
class WebLimits:
    timeout_s: float
    max_bytes: int
    max_redirects: int
    allowed_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()

    @staticmethod
    def parse_networks(
        text: str,
    ) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        return tuple(ipaddress.ip_network(n.strip()) for n in text.split(",") if n.strip())


async def fetch_web_page(url: str, limits: WebLimits) -> bytes:
    async with httpx.AsyncClient(timeout=limits.timeout_s, follow_redirects=False) as client:
        for _ in range(limits.max_redirects + 1):
            await _check_destination(url, limits)
            try:
                async with client.stream("GET", url) as response:
                    if response.is_redirect:
                        location = response.headers.get("location", "")
                        if not location:
                            raise WebPageError(f"{url}: redirect without a Location")
                        url = urljoin(url, location)
                        continue
                    if response.status_code != 200:
                        raise WebPageError(f"{url} answered HTTP {response.status_code}")
                    body = bytearray()
                    async for part in response.aiter_bytes():
                        body.extend(part)
                        if len(body) > limits.max_bytes:
                            raise WebPageError(
                                f"the page is larger than the limit of {limits.max_bytes} bytes"
                            )
                    return bytes(body)
            except httpx.TimeoutException as exc:
                raise WebPageError(f"{url}: no answer within {limits.timeout_s:g}s") from exc
            except httpx.HTTPError as exc:
                raise WebPageError(f"{url}: {exc}") from exc
    raise WebPageError(f"more than {limits.max_redirects} redirects")


async def _check_destination(url: str, limits: WebLimits) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebPageError(f"{url}: only http and https URLs can be fetched")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            parts.hostname, port, type=socket.SOCK_STREAM
        )
    except OSError as exc:
        raise WebPageError(f"{parts.hostname}: cannot resolve ({exc})") from exc
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if _is_public(address) or any(address in n for n in limits.allowed_networks):
            continue
        raise WebPageError(f"{parts.hostname} resolves to {address}, which is not allowed")


def _is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )
