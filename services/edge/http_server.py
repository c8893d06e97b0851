"""The edge's HTTP/1.1 connections: uvicorn's httptools protocol (a C parser: h11's pure-Python
one was a tenth of the edge's CPU per chat) with two timeouts and a bound it lacks.

- Request head: a client has `header_timeout_s` from the moment the edge waits for a request
  (connection opened, or the previous response done) until its request line and headers are
  in. Uvicorn has none: a client trickling header bytes (slowloris) holds its connection, and
  a task, forever. Past it the edge answers 408 and closes.
- Stalled writer: the edge keeps no write buffer of its own beyond the kernel's (high-water
  mark 0), so bytes waiting in it mean the client stopped reading. When they wait
  `write_timeout_s` with no progress the connection is aborted. A long SSE stream whose client
  reads is never cut: the timer only runs while writes are blocked.
- Request head size: a request line and headers longer than `max_head_bytes` are a 400 and a
  closed connection (what h11's bound did; llhttp has none).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger(__name__)

_TIMEOUT_BODY = b'{"code":408,"msg":"request headers not received in time","data":null}'
_REQUEST_TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
    b"content-length: %d\r\n\r\n%s" % (len(_TIMEOUT_BODY), _TIMEOUT_BODY)
)


class _HeadTooLarge(Exception):
    pass


class EdgeHttpProtocol(HttpToolsProtocol):
    header_timeout_s: float = 10.0
    write_timeout_s: float = 30.0
    max_head_bytes: int = 16_384

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timer: asyncio.TimerHandle | None = None
        self._write_timer: asyncio.TimerHandle | None = None
        self._buffered_at_check = 0
        # Bytes received since the edge started waiting for a request head.
        self._head_bytes = 0
        # Bytes of the current request's line and headers, for the size bound.
        self._head_size = 0

    # ---------------------------------------------------------------- request head

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        transport.set_write_buffer_limits(high=0)
        self._await_request_head()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._await_request_head()

    def data_received(self, data: bytes) -> None:
        if self._head_timer is not None:
            self._head_bytes += len(data)
        super().data_received(data)

    # Parser callbacks (a raise in one makes the parser fail: uvicorn answers 400 and closes).

    def on_message_begin(self) -> None:
        self._head_size = 0
        super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        self._count_head(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_head(len(name) + len(value))
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        # The request line and headers are in: the app gets the request now.
        self._cancel_head_timer()
        super().on_headers_complete()

    def _count_head(self, size: int) -> None:
        self._head_size += size
        if self._head_size > self.max_head_bytes:
            log.warning(
                "refusing a request from %s: its head exceeds %d bytes",
                _peer(self.client),
                self.max_head_bytes,
            )
            raise _HeadTooLarge

    def _await_request_head(self) -> None:
        self._cancel_head_timer()
        self._head_bytes = 0
        self._head_timer = self.loop.call_later(self.header_timeout_s, self._head_timed_out)

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            return  # a pipelined request, parsed earlier, is being served
        if self._head_bytes:
            log.warning(
                "closing a connection from %s: request headers not complete within %.0fs",
                _peer(self.client),
                self.header_timeout_s,
            )
            self.transport.write(_REQUEST_TIMEOUT_RESPONSE)
        # An idle keep-alive connection (no byte of a next request) just closes.
        self.transport.close()

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    # ---------------------------------------------------------------- stalled writer

    def pause_writing(self) -> None:
        super().pause_writing()
        if self._write_timer is None:
            self._buffered_at_check = self.transport.get_write_buffer_size()
            self._write_timer = self.loop.call_later(self.write_timeout_s, self._write_stalled)

    def resume_writing(self) -> None:
        super().resume_writing()
        self._cancel_write_timer()

    def _write_stalled(self) -> None:
        self._write_timer = None
        buffered = self.transport.get_write_buffer_size()
        if buffered == 0:
            return
        if buffered < self._buffered_at_check:
            # Slow, but the client reads: give it another period.
            self._buffered_at_check = buffered
            self._write_timer = self.loop.call_later(self.write_timeout_s, self._write_stalled)
            return
        log.warning(
            "aborting the connection to %s: the client read nothing for %.0fs (%d bytes waiting)",
            _peer(self.client),
            self.write_timeout_s,
            buffered,
        )
        self.transport.abort()

    def _cancel_write_timer(self) -> None:
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        self._cancel_write_timer()
        super().connection_lost(exc)


def edge_http_protocol(
    *, header_timeout_s: float, write_timeout_s: float, max_head_bytes: int
) -> type[HttpToolsProtocol]:
    """The protocol class for uvicorn's `http=` option, with the edge's settings."""
    return type(
        "ConfiguredEdgeHttpProtocol",
        (EdgeHttpProtocol,),
        {
            "header_timeout_s": header_timeout_s,
            "write_timeout_s": write_timeout_s,
            "max_head_bytes": max_head_bytes,
        },
    )


def _peer(client: tuple[str, int] | None) -> str:
    return f"{client[0]}:{client[1]}" if client else "?"
