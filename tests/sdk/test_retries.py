"""Retries, backoff and stream failures, against a small scripted HTTP server on a real socket
(the real edge has no rate limits yet, and cannot be told to drop a stream on cue)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from coze import (
    AsyncCozeClient,
    CozeClient,
    CozeConnectionError,
    CozeStreamError,
    DoneEvent,
    RateLimitError,
    ServerError,
)
from services.cli.system import free_port

LOG_ID = "20261123000000ABCDEF0123456789"
BOT = {"bot_id": "7", "name": "scripted", "version": "1", "status": "online"}


def envelope(data: Any = None, code: int = 0, msg: str = "success") -> bytes:
    return json.dumps({"code": code, "msg": msg, "data": data}).encode()


def sse(name: str, data: Any) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


CHAT = {"id": "2", "conversation_id": "1", "bot_id": "7", "status": "created"}
CREATED = sse("conversation.chat.created", {"event": "conversation.chat.created", **CHAT})
SUCCESS_STREAM = (
    CREATED
    + sse(
        "conversation.message.delta",
        {
            "id": "3",
            "conversation_id": "1",
            "chat_id": "2",
            "role": "assistant",
            "type": "answer",
            "content": "hi",
        },
    )
    + sse(
        "conversation.chat.completed",
        {**CHAT, "status": "completed", "usage": {"token_count": 3, "total_tokens": 3}},
    )
    + sse("conversation.stream.done", {"event": "conversation.stream.done"})
    + b'event: done\ndata: {"event":"done"}\n\n'
)


@dataclass
class Reply:
    status: int = 200
    body: bytes = field(default_factory=lambda: envelope(BOT))
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"
    # "truncated": promise more bytes than sent, then close (a cut chunked/length body);
    # "eof": no length at all, the body ends when the connection closes.
    framing: str = "length"


def too_many(retry_after: str | None = "0") -> Reply:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    return Reply(429, envelope(None, 429, "too many requests"), headers)


class ScriptedServer:
    """Answers the n-th request with replies[n] (the last reply repeats)."""

    def __init__(self, replies: list[Reply], port: int = 0) -> None:
        self.replies = replies
        self.requests: list[tuple[str, str]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                server.requests.append((self.command, self.path))
                reply = server.replies[min(len(server.requests), len(server.replies)) - 1]
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("x-tt-logid", LOG_ID)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                if reply.framing == "length":
                    self.send_header("Content-Length", str(len(reply.body)))
                elif reply.framing == "truncated":
                    self.send_header("Content-Length", str(len(reply.body) + 1000))
                    self.close_connection = True
                else:
                    self.send_header("Connection", "close")
                    self.close_connection = True
                self.end_headers()
                self.wfile.write(reply.body)
                self.wfile.flush()

            do_GET = do_POST = do_PUT = do_DELETE = _serve

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve() -> Iterator[Callable[..., ScriptedServer]]:
    servers: list[ScriptedServer] = []

    def start(*replies: Reply, port: int = 0) -> ScriptedServer:
        server = ScriptedServer(list(replies), port)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def sdk(url: str, max_retries: int = 3, timeout: float = 10) -> CozeClient:
    return CozeClient(api_key="pat_test", base_url=url, max_retries=max_retries, timeout=timeout)


def test_429_waits_for_retry_after_then_succeeds(serve: Callable[..., ScriptedServer]) -> None:
    server = serve(too_many("1"), Reply())
    with sdk(server.url) as client:
        started = time.monotonic()
        bot = client.bots.online_info(7)
        elapsed = time.monotonic() - started
    assert bot.name == "scripted"
    assert server.requests == [("GET", "/v1/bot/get_online_info?bot_id=7")] * 2
    assert 1.0 <= elapsed < 3.0


def test_429_without_retry_after_backs_off_exponentially(
    serve: Callable[..., ScriptedServer],
) -> None:
    server = serve(too_many(None), too_many(None), Reply())
    with sdk(server.url) as client:
        started = time.monotonic()
        client.bots.get(7)
        elapsed = time.monotonic() - started
    assert len(server.requests) == 3
    # Equal jitter: at least half of 0.5 s, then half of 1 s.
    assert 0.75 <= elapsed < 3.0


def test_429_after_the_last_retry_raises_rate_limit_error(
    serve: Callable[..., ScriptedServer],
) -> None:
    server = serve(too_many("0"))
    with sdk(server.url, max_retries=2) as client, pytest.raises(RateLimitError) as caught:
        client.bots.get(7)
    error = caught.value
    assert len(server.requests) == 3
    assert (error.code, error.http_status, error.msg) == (429, 429, "too many requests")
    assert error.retry_after == 0 and error.log_id == LOG_ID


def test_a_retry_after_beyond_the_cap_is_reported_not_waited(
    serve: Callable[..., ScriptedServer],
) -> None:
    server = serve(too_many("3600"))
    with sdk(server.url) as client, pytest.raises(RateLimitError) as caught:
        client.bots.get(7)
    assert len(server.requests) == 1 and caught.value.retry_after == 3600


def test_chat_is_retried_on_429_before_its_stream(serve: Callable[..., ScriptedServer]) -> None:
    server = serve(too_many("0"), Reply(body=SUCCESS_STREAM, content_type="text/event-stream"))
    with sdk(server.url) as client:
        events = list(client.chat(bot_id=7, query="hi", stream=True))
    assert [e.type for e in events] == ["created", "message", "done"]
    assert isinstance(events[-1], DoneEvent) and events[-1].usage.token_count == 3
    assert [r[0] for r in server.requests] == ["POST", "POST"]


def test_unavailable_is_retried_only_for_idempotent_methods(
    serve: Callable[..., ScriptedServer],
) -> None:
    unavailable = Reply(503, envelope(None, 503, "service temporarily unavailable"))
    server = serve(unavailable, Reply())
    with sdk(server.url) as client:
        assert client.bots.get(7).name == "scripted"
    assert len(server.requests) == 2

    # A POST may have been acted on: a second chat or publish must not happen behind the
    # caller's back.
    server = serve(unavailable)
    with sdk(server.url) as client, pytest.raises(ServerError) as caught:
        client.bots.publish(7)
    assert len(server.requests) == 1 and caught.value.code == 503

    server = serve(Reply(500, envelope(None, 500, "internal server error")))
    with sdk(server.url) as client, pytest.raises(ServerError):
        client.bots.get(7)
    assert len(server.requests) == 1


def test_connection_refused_is_retried_then_raised() -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with sdk(url, max_retries=2) as client:
        started = time.monotonic()
        with pytest.raises(CozeConnectionError):
            client.bots.get(7)
        assert time.monotonic() - started >= 0.75
    with sdk(url, max_retries=0) as client:
        started = time.monotonic()
        with pytest.raises(CozeConnectionError):
            client.chat(bot_id=7, query="x", stream=True)
        assert time.monotonic() - started < 0.5


def test_a_server_that_comes_up_during_the_backoff_is_reached(
    serve: Callable[..., ScriptedServer],
) -> None:
    port = free_port()
    timer = threading.Timer(0.4, lambda: serve(Reply(), port=port))
    timer.start()
    try:
        with sdk(f"http://127.0.0.1:{port}", max_retries=5) as client:
            assert client.bots.get(7).name == "scripted"
    finally:
        timer.join()


def test_a_stream_cut_mid_body_raises_and_is_never_retried(
    serve: Callable[..., ScriptedServer],
) -> None:
    server = serve(Reply(body=CREATED, content_type="text/event-stream", framing="truncated"))
    with sdk(server.url) as client:
        stream = client.chat(bot_id=7, query="hi", stream=True)
        assert next(stream).type == "created"
        with pytest.raises(CozeConnectionError):
            next(stream)
    assert len(server.requests) == 1


def test_a_stream_ending_without_done_is_a_stream_error(
    serve: Callable[..., ScriptedServer],
) -> None:
    server = serve(Reply(body=CREATED, content_type="text/event-stream", framing="eof"))
    with sdk(server.url) as client:
        stream = client.chat(bot_id=7, query="hi", stream=True)
        assert next(stream).type == "created"
        with pytest.raises(CozeStreamError, match="before its done event"):
            next(stream)
    assert len(server.requests) == 1


def test_a_stream_breaking_the_framing_is_rejected(serve: Callable[..., ScriptedServer]) -> None:
    server = serve(Reply(body=CREATED + b": ping\n\n", content_type="text/event-stream"))
    with sdk(server.url) as client:
        stream = client.chat(bot_id=7, query="hi", stream=True)
        with pytest.raises(CozeStreamError, match="expected an `event: ` line"):
            list(stream)


def test_a_callers_http_client_is_used_and_left_open(
    serve: Callable[..., ScriptedServer],
) -> None:
    server = serve(Reply())
    with httpx.Client() as http:
        with CozeClient(api_key="pat_test", base_url=server.url + "/", http_client=http) as c:
            assert c.bots.get(7).bot_id == "7"
        assert not http.is_closed
        assert http.get(server.url).status_code == 200


async def test_async_retries(serve: Callable[..., ScriptedServer]) -> None:
    server = serve(too_many("0"), Reply(body=SUCCESS_STREAM, content_type="text/event-stream"))
    async with AsyncCozeClient(api_key="pat_test", base_url=server.url) as client:
        stream = await client.chat(bot_id=7, query="hi", stream=True)
        assert [e.type async for e in stream] == ["created", "message", "done"]
    assert len(server.requests) == 2

    refused = f"http://127.0.0.1:{free_port()}"
    async with AsyncCozeClient(api_key="pat_test", base_url=refused, max_retries=1) as client:
        with pytest.raises(CozeConnectionError):
            await client.bots.get(7)

    server = serve(too_many("0"))
    async with AsyncCozeClient(api_key="pat_test", base_url=server.url, max_retries=1) as c:
        with pytest.raises(RateLimitError):
            await c.conversations.retrieve(1)
    assert len(server.requests) == 2
