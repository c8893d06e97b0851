"""Edge HTTP timeouts against a real edge process and raw sockets: a slowloris client gets
408 and a closed connection, a client that stops reading is cut off, and a long SSE stream
whose client reads is never cut, though it outlasts both timeouts."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from services.cli.system import ServiceProcess, edge_process, free_port
from tests.chat.conftest import user_message
from tests.chat.sse import SUCCESS, collapse_deltas, parse_stream
from tests.conftest import Account
from tests.edge.envelope import data_of

HEADER_TIMEOUT_S = 1
WRITE_TIMEOUT_S = 1
# Generous bound for each wait below; never a measure of speed.
WAIT_S = 30


@pytest.fixture(scope="module")
def strict_edge(
    work_dir: Path,
    nats_url: str,
    registry_addr: str,
    runner: ServiceProcess,
    mock_llm: str,
    start_service: Callable[[ServiceProcess], ServiceProcess],
) -> Iterator[ServiceProcess]:
    service = start_service(
        edge_process(
            port=free_port(),
            registry_addr=registry_addr,
            nats_url=nats_url,
            log_dir=work_dir / "logs",
            name="edge-strict-timeouts",
            extra_env={
                "COZEPLUS_EDGE_HTTP_HEADER_TIMEOUT_S": str(HEADER_TIMEOUT_S),
                "COZEPLUS_EDGE_HTTP_WRITE_TIMEOUT_S": str(WRITE_TIMEOUT_S),
            },
        )
    )
    yield service
    service.stop()


def _port(edge: ServiceProcess) -> int:
    return int(edge.env["COZEPLUS_EDGE_PORT"])


def _read_until_closed(sock: socket.socket, deadline: float) -> tuple[bytes, str]:
    """Everything the server sends until it closes; how it closed ('eof', 'reset', or
    'open' if it was still open at the deadline)."""
    received = b""
    while time.monotonic() < deadline:
        sock.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            break
        except ConnectionResetError:
            return received, "reset"
        if not chunk:
            return received, "eof"
        received += chunk
    return received, "open"


def test_slowloris_headers_get_408_and_a_closed_connection(strict_edge: ServiceProcess) -> None:
    with socket.create_connection(("127.0.0.1", _port(strict_edge))) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: edge\r\n")
        deadline = time.monotonic() + WAIT_S
        closed = False
        # Trickle a header line now and then, as a slowloris client does: it never ends the
        # head, and every byte comes well within any per-read idle timeout.
        while time.monotonic() < deadline and not closed:
            try:
                sock.sendall(b"X-Slow: a\r\n")
            except (BrokenPipeError, ConnectionResetError):
                break
            sock.settimeout(0.3)
            try:
                sock.recv(1, socket.MSG_PEEK)  # an answer, or the end of the connection
            except TimeoutError:
                continue
            closed = True
        received, how = _read_until_closed(sock, time.monotonic() + WAIT_S)
    assert received.startswith(b"HTTP/1.1 408 "), received[:200]
    assert b'"code":408' in received
    assert how == "eof"


def test_an_oversized_request_head_gets_400_and_a_closed_connection(
    strict_edge: ServiceProcess,
) -> None:
    # Under the bound (16 KiB by default): served.
    with socket.create_connection(("127.0.0.1", _port(strict_edge))) as sock:
        sock.sendall(
            b"GET /healthz HTTP/1.1\r\nHost: edge\r\nConnection: close\r\nX-Big: "
            + b"a" * 12_000
            + b"\r\n\r\n"
        )
        received, how = _read_until_closed(sock, time.monotonic() + WAIT_S)
    assert received.startswith(b"HTTP/1.1 200 "), received[:200]
    # Over it, in small pieces as a client might send them: refused.
    with socket.create_connection(("127.0.0.1", _port(strict_edge))) as sock:
        head = b"GET /healthz HTTP/1.1\r\nHost: edge\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n"
        for start in range(0, len(head), 1000):
            try:
                sock.sendall(head[start : start + 1000])
            except (BrokenPipeError, ConnectionResetError):
                break
        received, how = _read_until_closed(sock, time.monotonic() + WAIT_S)
    assert received.startswith(b"HTTP/1.1 400 "), received[:200]
    assert how in ("eof", "reset")


def test_an_idle_connection_is_closed(strict_edge: ServiceProcess) -> None:
    with socket.create_connection(("127.0.0.1", _port(strict_edge))) as sock:
        received, how = _read_until_closed(sock, time.monotonic() + WAIT_S)
    assert (received, how) == (b"", "eof")


def test_a_client_that_stops_reading_is_cut_off(
    strict_edge: ServiceProcess, account: Account
) -> None:
    base = f"http://127.0.0.1:{_port(strict_edge)}"
    with httpx.Client(base_url=base, headers=account.headers, timeout=30) as http:
        conversation = data_of(http.post("/v1/conversation/create", json={}))
        conversation_id = conversation["id"]
        # ~3 MB of messages: far more than the kernel buffers between a non-reader and us.
        for index in range(30):
            data_of(
                http.post(
                    "/v1/conversation/message/create",
                    params={"conversation_id": conversation_id},
                    json={"role": "user", "content": f"{index} " + "x" * 99_000},
                )
            )
    request = (
        f"GET /v1/conversation/message/list?conversation_id={conversation_id}&limit=30 HTTP/1.1\r\n"
        f"Host: edge\r\nAuthorization: {account.headers['Authorization']}\r\n\r\n"
    ).encode()
    with socket.socket() as sock:
        # A small receive window, set before connecting, so little fits in flight.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", _port(strict_edge)))
        sock.sendall(request)
        # Read nothing until the edge has had several write timeouts' worth of time.
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline and "aborting the connection" not in (
            strict_edge.log_path.read_text(errors="replace")
        ):
            time.sleep(0.2)
        received, how = _read_until_closed(sock, time.monotonic() + WAIT_S)
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head[:200]
    length = int(
        next(
            line.split(b":", 1)[1]
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
    )
    # Cut off: the connection ended before the whole response went out.
    assert how in ("eof", "reset")
    assert len(body) < length


def test_a_long_stream_that_the_client_reads_is_not_cut(
    strict_edge: ServiceProcess, account: Account
) -> None:
    base = f"http://127.0.0.1:{_port(strict_edge)}"
    with httpx.Client(base_url=base, headers=account.headers, timeout=60) as http:
        bot = data_of(
            http.post(
                "/api/draftbot/create",
                json={"name": "slow", "prompt": "p", "model": "mock-stream-slow"},
            )
        )
        data_of(http.post("/api/draftbot/publish", json={"bot_id": bot["bot_id"]}))
        started = time.monotonic()
        response = http.post(
            "/v3/chat",
            json={
                "bot_id": str(bot["bot_id"]),
                "user_id": "u",
                "stream": True,
                "additional_messages": [user_message("tell me a long story " * 4)],
            },
        )
        elapsed = time.monotonic() - started
    events = parse_stream(response.content)
    assert collapse_deltas(events) == SUCCESS
    # Only meaningful if the stream outlasted both timeouts together (the model waits 200 ms
    # between tokens); a slower machine only makes it longer.
    assert elapsed > HEADER_TIMEOUT_S + WRITE_TIMEOUT_S, "stream too short to prove anything"
