"""Outbound calls to user-chosen URLs (wire contract section 7): plugin APIs, MCP servers,
and later web documents.

Every TCP connection a client from `outbound_client` opens goes through `CheckedBackend`:
the host is resolved once, each resolved address is checked, and the socket connects to
the checked address itself, so a DNS answer that changes between check and connect
(rebinding) cannot slip through. TLS still verifies and sends the URL's host name (SNI),
and the Host header is the URL's, because only the connect step is replaced. Redirects
open connections through the same backend, so each hop is checked; their number is
bounded. Proxies from the environment are ignored: a proxy would make the checked address
the proxy's, not the target's.

The clients are `httpx2` clients, the HTTP library of the `mcp` SDK (and of openai), so
one factory serves MCP sessions and plain plugin calls alike.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import socket
import ssl
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field

import anyio
import httpcore2
import httpx2

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# httpx2 logs every request line at INFO, query string included, and plugin API keys may
# travel in the query (auth location "query"): those lines must never reach a log.
logging.getLogger("httpx2").setLevel(logging.WARNING)

DEFAULT_TIMEOUT_S = 30.0
DEFAULT_MAX_REDIRECTS = 5
DEFAULT_MAX_RESPONSE_BYTES = 1_000_000


class RefusedAddress(httpx2.ConnectError):
    """The destination resolved to an address outbound calls may not reach. A ConnectError,
    so code that handles "could not connect" handles this too; callers that want to say
    which rule refused it catch this class first."""


class ResponseTooLarge(httpx2.ReadError):
    """A response body went past the client's size cap while being read."""


def parse_networks(text: str | Iterable[str]) -> tuple[IPNetwork, ...]:
    """A comma-separated CIDR list (a setting) or an iterable of CIDRs; a bare address is
    a /32 (/128). Raises ValueError naming the bad entry."""
    items = text.split(",") if isinstance(text, str) else list(text)
    networks: list[IPNetwork] = []
    for raw in items:
        item = raw.strip()
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError as exc:
            raise ValueError(f"not a CIDR network: {item!r}") from exc
    return tuple(networks)


@dataclass(frozen=True)
class OutboundPolicy:
    """Where outbound calls may go and how much they may take."""

    # Networks reachable even though they are not public (loopback, private, ...).
    allowed_networks: tuple[IPNetwork, ...] = ()
    timeout_s: float = DEFAULT_TIMEOUT_S
    max_redirects: int = DEFAULT_MAX_REDIRECTS
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    # Tests swap the resolver to map names to addresses without a DNS server, and the TLS
    # context to trust their own certificate authority.
    resolver: Resolver | None = field(default=None, compare=False)
    tls_context: ssl.SSLContext | None = field(default=None, compare=False)

    def refusal(self, address: IPAddress) -> str | None:
        """Why `address` may not be reached, or None when it may."""
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if any(address in network for network in self.allowed_networks):
            return None
        # is_global is False for loopback, private, link-local (cloud metadata lives at
        # 169.254.169.254 and fd00:ec2::254), unspecified, reserved, shared (100.64/10)
        # and documentation ranges; multicast must be refused on its own.
        if address.is_multicast:
            return f"{address} is a multicast address"
        if not address.is_global:
            kind = (
                "loopback"
                if address.is_loopback
                else "link-local (cloud metadata)"
                if address.is_link_local
                else "unspecified"
                if address.is_unspecified
                else "private"
                if address.is_private
                else "non-public"
            )
            return f"{address} is a {kind} address"
        return None


class Resolver:
    """Host name to addresses; the system resolver, off the event loop."""

    async def resolve(self, host: str, port: int) -> list[IPAddress]:
        infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        seen: dict[str, IPAddress] = {}
        for _family, _type, _proto, _name, sockaddr in infos:
            text = str(sockaddr[0]).split("%", 1)[0]
            seen.setdefault(text, ipaddress.ip_address(text))
        return list(seen.values())


class CheckedBackend(httpcore2.AsyncNetworkBackend):
    """Connects only to addresses the policy allows, and to exactly the address checked."""

    def __init__(self, policy: OutboundPolicy) -> None:
        self._policy = policy
        self._resolver = policy.resolver or Resolver()
        self._inner = httpcore2.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore2 interface)
        local_address: str | None = None,
        socket_options: Iterable[httpcore2.SOCKET_OPTION] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        addresses = await self._addresses(host, port)
        refusals: list[str] = []
        allowed: list[IPAddress] = []
        for address in addresses:
            reason = self._policy.refusal(address)
            if reason is None:
                allowed.append(address)
            else:
                refusals.append(reason)
        if not allowed:
            raise RefusedAddress(
                f"refused to connect to {host}: {'; '.join(refusals) or 'no address'}"
                " (not in the allowed networks)"
            )
        last_error: Exception | None = None
        for address in allowed:
            try:
                return await self._inner.connect_tcp(
                    str(address),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore2.ConnectError, httpcore2.ConnectTimeout) as exc:
                last_error = exc
        assert last_error is not None
        raise last_error

    async def _addresses(self, host: str, port: int) -> Sequence[IPAddress]:
        literal = host.strip("[]")
        try:
            return [ipaddress.ip_address(literal)]
        except ValueError:
            pass
        try:
            return await self._resolver.resolve(host, port)
        except OSError as exc:
            raise httpcore2.ConnectError(f"cannot resolve {host}: {exc}") from exc

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore2 interface)
        socket_options: Iterable[httpcore2.SOCKET_OPTION] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        raise RefusedAddress("unix sockets are not reachable by outbound calls")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _CappedStream(httpx2.AsyncByteStream):
    def __init__(self, inner: httpx2.AsyncByteStream, cap: int) -> None:
        self._inner = inner
        self._cap = cap

    async def __aiter__(self) -> AsyncIterator[bytes]:
        seen = 0
        async for chunk in self._inner:
            seen += len(chunk)
            if seen > self._cap:
                raise ResponseTooLarge(f"response body larger than {self._cap} bytes")
            yield chunk

    async def aclose(self) -> None:
        await self._inner.aclose()


class CappedTransport(httpx2.AsyncBaseTransport):
    """Fails a response whose (undecoded) body passes the cap, while it streams in."""

    def __init__(self, inner: httpx2.AsyncHTTPTransport, cap: int) -> None:
        self._inner = inner
        self._cap = cap

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        response = await self._inner.handle_async_request(request)
        stream = response.stream
        assert isinstance(stream, httpx2.AsyncByteStream)
        response.stream = _CappedStream(stream, self._cap)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """Built once: loading the CA store costs ~20 ms of CPU, which every tool call would
    otherwise pay for a fresh client."""
    return httpx2.create_ssl_context(trust_env=False)


def checked_transport(policy: OutboundPolicy, *, cap: int | None) -> httpx2.AsyncBaseTransport:
    transport = httpx2.AsyncHTTPTransport(
        verify=policy.tls_context or _tls_context(), trust_env=False
    )
    # httpx2 offers no constructor argument for the network backend; the pool it built has
    # the same settings otherwise, so rebuild just that piece.
    pool = transport._pool
    assert isinstance(pool, httpcore2.AsyncConnectionPool)
    transport._pool = httpcore2.AsyncConnectionPool(
        ssl_context=pool._ssl_context,
        max_connections=pool._max_connections,
        max_keepalive_connections=pool._max_keepalive_connections,
        keepalive_expiry=pool._keepalive_expiry,
        http1=pool._http1,
        http2=pool._http2,
        network_backend=CheckedBackend(policy),
    )
    return transport if cap is None else CappedTransport(transport, cap)


def outbound_client(
    policy: OutboundPolicy,
    *,
    headers: dict[str, str] | None = None,
    timeout: httpx2.Timeout | None = None,
    auth: httpx2.Auth | None = None,
    cap_responses: bool = True,
) -> httpx2.AsyncClient:
    """An AsyncClient whose every connection obeys `policy`. With `cap_responses`, reading
    a body past `policy.max_response_bytes` raises ResponseTooLarge; callers that prefer to
    cut the body (see `read_capped`) turn it off.

    Its signature matches the mcp SDK's `McpHttpClientFactory` once `policy` is bound."""
    return httpx2.AsyncClient(
        transport=checked_transport(
            policy, cap=policy.max_response_bytes if cap_responses else None
        ),
        headers=headers,
        timeout=timeout or httpx2.Timeout(policy.timeout_s),
        auth=auth,
        follow_redirects=True,
        max_redirects=policy.max_redirects,
        trust_env=False,
    )


@dataclass(frozen=True)
class CappedBody:
    content: bytes
    truncated: bool


async def read_capped(response: httpx2.Response, cap: int) -> CappedBody:
    """Reads at most `cap` bytes of a streamed response, then stops reading (the rest is
    never downloaded)."""
    chunks: list[bytes] = []
    size = 0
    truncated = False
    async for chunk in response.aiter_bytes():
        room = cap - size
        if len(chunk) > room:
            chunks.append(chunk[:room])
            truncated = True
            break
        chunks.append(chunk)
        size += len(chunk)
    return CappedBody(b"".join(chunks), truncated)
