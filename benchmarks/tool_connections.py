"""What a chat run's shared HTTP client saves an OpenAPI tool call.

    .venv/bin/python benchmarks/tool_connections.py          # 60 calls per case, 3 runs

One process: a small JSON API served by uvicorn on 127.0.0.1, over HTTP and over HTTPS (a
certificate made here, trusted through the outbound policy's TLS context), and the runner's
`OpenApiTool` calling it through the outbound rules, either with a client of its own per call
(a new TCP connection, and TLS handshake, each time: how calls went before) or with the
run's shared client (`RunHttpClient`, the connection kept alive between calls). Prints the
median and p90 latency and the process's CPU per call (client and server together). On
loopback a handshake costs only CPU; over a network each reused call also saves its round
trips (one for TCP, one or two for TLS).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import ipaddress
import os
import socket
import ssl
import statistics
import tempfile
import threading
import time
from pathlib import Path

import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from cozeplus.outbound import OutboundPolicy, parse_networks
from cozeplus.rpc.v1 import plugins_pb2 as ppb
from services.runner.tools.openapi import OpenApiTool, RunHttpClient


def self_signed(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def serve(tls: tuple[Path, Path] | None) -> int:
    """The API in a thread; its port."""

    async def weather(request: Request) -> JSONResponse:
        return JSONResponse({"city": request.path_params["city"], "temp_c": 21})

    app = Starlette(routes=[Route("/weather/{city}", weather)])
    # IPPROTO_TCP named, so asyncio sets TCP_NODELAY on accepted connections (without it a
    # kept-alive connection's response body waits 40 ms for a delayed ACK).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        app,
        log_level="warning",
        ssl_certfile=str(tls[0]) if tls else None,
        ssl_keyfile=str(tls[1]) if tls else None,
    )
    server = uvicorn.Server(config)
    threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True).start()
    while not server.started:
        time.sleep(0.02)
    port: int = sock.getsockname()[1]
    return port


def weather_tool(server_url: str) -> ppb.ResolvedTool:
    resolved = ppb.ResolvedTool(name="get_weather", plugin_type="openapi")
    resolved.http.method = "GET"
    resolved.http.path = "/weather/{city}"
    resolved.http.server_url = server_url
    city = resolved.http.parameters.add()
    city.name, city.location, city.required = "city", "path", True
    return resolved


async def measure(
    resolved: ppb.ResolvedTool, policy: OutboundPolicy, shared: bool, calls: int
) -> tuple[list[float], float]:
    run_client = RunHttpClient(policy)
    latencies: list[float] = []
    cpu_before = time.process_time()
    for _ in range(calls):
        http = run_client if shared else RunHttpClient(policy)
        tool = OpenApiTool(resolved, policy, http)
        began = time.perf_counter()
        output = await tool.call({"city": "Paris"})
        latencies.append((time.perf_counter() - began) * 1000)
        if output.is_error:
            raise RuntimeError(output.content)
        if not shared:
            await http.aclose()
    cpu_ms = (time.process_time() - cpu_before) / calls * 1000
    await run_client.aclose()
    return latencies, cpu_ms


async def main(calls: int, runs: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        cert, key = self_signed(Path(folder))
        trust = ssl.create_default_context(cafile=str(cert))
        policy = OutboundPolicy(
            allowed_networks=parse_networks("127.0.0.1/32"),
            timeout_s=5.0,
            max_response_bytes=64_000,
            tls_context=trust,
        )
        servers = {
            "http": f"http://localhost:{serve(None)}",
            "https": f"https://localhost:{serve((cert, key))}",
        }
        print("| scheme | client | latency median / p90 (ms) | CPU per call (ms) |")
        print("|---|---|---|---|")
        for scheme, url in servers.items():
            resolved = weather_tool(url)
            for shared in (False, True):
                rows = [await measure(resolved, policy, shared, calls) for _ in range(runs)]
                medians = [statistics.median(lat) for lat, _ in rows]
                p90s = [statistics.quantiles(lat, n=10)[-1] for lat, _ in rows]
                cpus = [cpu for _, cpu in rows]
                print(
                    f"| {scheme} | {'the run’s, kept alive' if shared else 'one per call'} | "
                    f"{min(medians):.2f}–{max(medians):.2f} / {min(p90s):.2f}–{max(p90s):.2f} | "
                    f"{min(cpus):.2f}–{max(cpus):.2f} |"
                )
    print(f"\n{calls} calls per case, {runs} runs, one process on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=60)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.calls, args.runs))
