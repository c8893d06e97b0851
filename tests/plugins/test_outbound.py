"""Outbound safety (wire contract section 7) against real local listeners: a refused
address must receive no connection at all, which the listener bound there proves."""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
from pathlib import Path

import httpx2
import pytest

from cozeplus.outbound import (
    OutboundPolicy,
    RefusedAddress,
    ResponseTooLarge,
    outbound_client,
    parse_networks,
    read_capped,
)
from tests.plugins.listeners import http_response, listener

ALLOW_127_0_0_1 = parse_networks("127.0.0.1/32")


class FixedResolver:
    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    async def resolve(
        self, host: str, port: int
    ) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
        self.asked.append(host)
        return [ipaddress.ip_address(a) for a in self.answers[host]]


def ok(_head: bytes) -> bytes:
    return http_response(200, b'{"ok":true}', {"Content-Type": "application/json"})


async def test_allowed_network_is_reached() -> None:
    async with listener("127.0.0.1", ok) as api:
        policy = OutboundPolicy(allowed_networks=ALLOW_127_0_0_1)
        async with outbound_client(policy) as client:
            response = await client.get(api.url + "/x")
        assert response.json() == {"ok": True}
        assert api.connections == 1


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2"])
async def test_loopback_is_refused_by_default_and_never_contacted(host: str) -> None:
    async with listener(host, ok) as target:
        async with outbound_client(OutboundPolicy()) as client:
            with pytest.raises(RefusedAddress, match="loopback"):
                await client.get(target.url)
        assert target.connections == 0


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("10.1.2.3", "private"),
        ("192.168.0.1", "private"),
        ("169.254.169.254", "link-local"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("100.64.0.1", "non-public"),
        ("::1", "loopback"),
        ("fd00:ec2::254", "private"),
        ("::ffff:127.0.0.1", "loopback"),
    ],
)
def test_refusal_rules(address: str, kind: str) -> None:
    reason = OutboundPolicy().refusal(ipaddress.ip_address(address))
    assert reason is not None and kind in reason
    assert OutboundPolicy().refusal(ipaddress.ip_address("93.184.216.34")) is None
    allowed = OutboundPolicy(
        allowed_networks=parse_networks(f"{address}/32" if ":" not in address else f"{address}/128")
    )
    if not address.startswith("::ffff"):
        assert allowed.refusal(ipaddress.ip_address(address)) is None


async def test_redirect_to_refused_address_is_not_followed() -> None:
    async with listener("127.0.0.2", ok) as forbidden:

        def redirect(_head: bytes) -> bytes:
            return http_response(302, headers={"Location": forbidden.url + "/secret"})

        async with listener("127.0.0.1", redirect) as api:
            policy = OutboundPolicy(allowed_networks=ALLOW_127_0_0_1)
            async with outbound_client(policy) as client:
                with pytest.raises(RefusedAddress):
                    await client.get(api.url)
            assert api.connections == 1
        assert forbidden.connections == 0


async def test_redirects_are_bounded() -> None:
    async with listener(
        "127.0.0.1", lambda h: http_response(302, headers={"Location": "/again"})
    ) as api:
        policy = OutboundPolicy(allowed_networks=ALLOW_127_0_0_1, max_redirects=3)
        async with outbound_client(policy) as client:
            with pytest.raises(httpx2.TooManyRedirects):
                await client.get(api.url)
        assert len(api.heads) == 4


async def test_connects_to_the_checked_address_and_keeps_the_host_name() -> None:
    """The name is resolved once; the socket goes to that address; Host stays the name."""
    async with listener("127.0.0.1", ok) as api:
        resolver = FixedResolver({"api.example.test": ["127.0.0.1"]})
        policy = OutboundPolicy(allowed_networks=ALLOW_127_0_0_1, resolver=resolver)  # type: ignore[arg-type]
        async with outbound_client(policy) as client:
            response = await client.get(f"http://api.example.test:{api.port}/p")
        assert response.status_code == 200
        assert resolver.asked == ["api.example.test"]
        assert f"host: api.example.test:{api.port}".encode() in api.heads[0].lower()


async def test_a_name_resolving_to_a_refused_address_is_refused() -> None:
    async with listener("127.0.0.2", ok) as forbidden:
        resolver = FixedResolver({"rebind.example.test": ["127.0.0.2"]})
        policy = OutboundPolicy(allowed_networks=ALLOW_127_0_0_1, resolver=resolver)  # type: ignore[arg-type]
        async with outbound_client(policy) as client:
            with pytest.raises(RefusedAddress, match=r"rebind\.example\.test"):
                await client.get(f"http://rebind.example.test:{forbidden.port}/")
        assert forbidden.connections == 0


async def test_response_size_cap() -> None:
    big = b"x" * 3_000_000
    async with listener("127.0.0.1", lambda h: http_response(200, big)) as api:
        policy = OutboundPolicy(allowed_networks=ALLOW_127_0_0_1, max_response_bytes=100_000)
        async with outbound_client(policy) as client:
            with pytest.raises(ResponseTooLarge):
                await client.get(api.url)
        async with (
            outbound_client(policy, cap_responses=False) as client,
            client.stream("GET", api.url) as response,
        ):
            body = await read_capped(response, 100_000)
        assert body.truncated and len(body.content) == 100_000


async def test_timeout() -> None:
    async with listener("127.0.0.1", lambda h: None) as api:
        policy = OutboundPolicy(allowed_networks=ALLOW_127_0_0_1, timeout_s=0.3)
        async with outbound_client(policy) as client:
            with pytest.raises(httpx2.ReadTimeout):
                await client.get(api.url)


def test_parse_networks() -> None:
    assert parse_networks(" 127.0.0.1/32, 10.0.0.0/8 ,") == (
        ipaddress.ip_network("127.0.0.1/32"),
        ipaddress.ip_network("10.0.0.0/8"),
    )
    assert parse_networks("::1") == (ipaddress.ip_network("::1/128"),)
    with pytest.raises(ValueError, match="not-a-net"):
        parse_networks("not-a-net")


def _certificate_for(name: str) -> tuple[bytes, bytes]:
    """A self-signed certificate for `name` (PEM) and its key (PEM)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return (
        certificate.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )


async def test_tls_keeps_the_host_name_for_sni_and_verification(tmp_path: Path) -> None:
    """The socket goes to the checked address, yet TLS sends and verifies the URL's name: a
    certificate for api.example.test is accepted, and SNI carried that name."""
    cert_pem, key_pem = _certificate_for("api.example.test")
    (tmp_path / "cert.pem").write_bytes(cert_pem)
    (tmp_path / "key.pem").write_bytes(key_pem)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    seen_names: list[str | None] = []

    def record_sni(_sock: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
        seen_names.append(name)

    server_context.sni_callback = record_sni
    client_context = ssl.create_default_context(cafile=tmp_path / "cert.pem")

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(http_response(200, b"secure"))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=server_context)
    port = server.sockets[0].getsockname()[1]
    try:
        resolver = FixedResolver({"api.example.test": ["127.0.0.1"]})
        policy = OutboundPolicy(
            allowed_networks=ALLOW_127_0_0_1,
            resolver=resolver,  # type: ignore[arg-type]
            tls_context=client_context,
        )
        async with outbound_client(policy) as client:
            response = await client.get(f"https://api.example.test:{port}/")
            assert response.text == "secure"
            # The same certificate is wrong for the bare address: verification uses the name.
            with pytest.raises(httpx2.ConnectError):
                await client.get(f"https://127.0.0.1:{port}/")
        assert seen_names[0] == "api.example.test"
    finally:
        server.close()
        await server.wait_closed()
