"""The gRPC API over TLS when a certificate and key are configured."""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from grpc_health.v1 import health_pb2, health_pb2_grpc

from cozeplus.api.v1 import bots_pb2, bots_pb2_grpc
from services.cli.system import ServiceProcess, edge_process, free_port
from tests.conftest import Account


def self_signed(directory: Path) -> tuple[Path, Path, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_pem = certificate.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    cert_file, key_file = directory / "grpc.crt", directory / "grpc.key"
    cert_file.write_bytes(cert_pem)
    key_file.write_bytes(key_pem)
    return cert_file, key_file, cert_pem


def test_tls_when_certificate_and_key_are_given(
    work_dir: Path,
    nats_url: str,
    registry_addr: str,
    account: Account,
    start_service: Callable[[ServiceProcess], ServiceProcess],
) -> None:
    cert_file, key_file, cert_pem = self_signed(work_dir)
    grpc_port = free_port()
    start_service(
        edge_process(
            port=free_port(),
            registry_addr=registry_addr,
            nats_url=nats_url,
            log_dir=work_dir / "logs",
            name="edge-grpc-tls",
            extra_env={
                "COZEPLUS_EDGE_GRPC_PORT": str(grpc_port),
                "COZEPLUS_EDGE_GRPC_TLS_CERT_FILE": str(cert_file),
                "COZEPLUS_EDGE_GRPC_TLS_KEY_FILE": str(key_file),
            },
        )
    )
    addr = f"127.0.0.1:{grpc_port}"
    credentials = grpc.ssl_channel_credentials(root_certificates=cert_pem)
    with grpc.secure_channel(addr, credentials) as channel:
        health: Any = health_pb2_grpc.HealthStub(channel)
        reply = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        listed = bots_pb2_grpc.BotServiceStub(channel).ListBots(
            bots_pb2.ListBotsRequest(),
            metadata=[("authorization", f"Bearer {account.token}")],
            timeout=10,
        )
        assert listed.total == 0
    # Plaintext is not spoken on a TLS port.
    with grpc.insecure_channel(addr) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        with pytest.raises(grpc.RpcError) as raised:
            health.Check(health_pb2.HealthCheckRequest(service=""), timeout=3)
        assert raised.value.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]
