"""The mock's HTTP surface.

OpenAI-compatible:
    POST /v1/chat/completions   stream and non-stream; SSE `data: {...}` chunks, `data: [DONE]`,
                                a usage chunk when `stream_options.include_usage` is set
    GET  /v1/models
(also served without the /v1 prefix, for base URLs configured without it).

For tests:
    GET  /mock/requests?limit=N  the bodies of the last N chat requests, oldest first (so
                                 `[-1]["messages"]` is the prompt last sent); with
                                 `&detail=true` each is {"seq", "path", "headers", "body"},
                                 headers limited to authorization and x-mock-*
    GET  /mock/stats             {"started", "finished", "aborted", "failed", "in_flight"}:
                                 chat requests begun, answered to the end, abandoned by the
                                 client disconnecting, failed on purpose (status or mid-stream)
    POST /mock/scripts           {"key": K, "rounds": [R0, R1, ...]}: scripted tool calls for
                                 every request whose system or user messages contain K. Round
                                 n of a chat (n = assistant tool-call messages after the last
                                 user message) plays R[n], the last one past the end (so a
                                 one-round script calls tools forever). Each R is
                                 {"tool_calls": [{"name", "arguments": {...}}]},
                                 {"reply": "text"}, where "{tool_output}" stands for the last
                                 tool message's content, or both: the reply's text streams
                                 first, then the calls (as a model that says what it is
                                 about to do before calling a tool).
    GET  /mock/gaps?clear=true   {"gaps_ms": [...]}: the time between one content chunk of a
                                 stream and the next, as the mock sent them, every stream
                                 since the last clear (at most the newest 250,000). A
                                 benchmark on the same machine compares what its client
                                 saw with what the model actually did under that load.
    POST /mock/reset             forget recorded requests, scripts and gaps, zero the stats
    GET  /healthz

Per-request overrides of the server settings, weakest first:

1. Directives in the model name, so a models file can define failing models for end-to-end
   tests without any header support: `mock-echo`, `mock-no-usage`, `mock-ttft-500` (ms),
   `mock-inter-token-20` or `mock-itl-20` (ms between tokens), `mock-chunk-3` (tokens per
   chunk), `mock-fail-after-3` (drop the connection after 3 tokens), `mock-error-after-3`
   (SSE error event after 3 tokens), `mock-status-500`. They combine:
   `mock-echo-ttft-200-fail-after-5`.
2. Headers: `x-mock-reply`, `x-mock-echo`, `x-mock-ttft-ms`, `x-mock-inter-token-ms`,
   `x-mock-tokens-per-chunk`, `x-mock-fail-after-tokens`, `x-mock-fail-mode` (close|error),
   `x-mock-http-status`, `x-mock-report-usage` (true|false).

"Tokens" are the reply's words (with their leading whitespace) and single CJK characters.
Reported usage: completion_tokens = tokens sent; prompt_tokens = tokens of every message's
text counted the same way, plus 3 per message and 1 per image.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from services.mock_llm.settings import FailMode, MockLLMSettings

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uff00-\uffef"
_TOKEN = re.compile(rf"\s*(?:[{_CJK}]|[^\s{_CJK}]+)|\s+$")
_NUMERIC_DIRECTIVE = re.compile(
    r"(?:^|[-_.])(ttft|itl|inter-token|chunk|fail-after|error-after|status)-(\d+)"
)
_FLAG_DIRECTIVE = re.compile(r"(?:^|[-_.])(echo|no-usage)(?=$|[-_.])")
_RECORDED_HEADERS = ("authorization",)


class _DropConnection(Exception):
    """Raised after the response started: the server then closes the connection mid-body,
    which is how a crashed or cut-off provider looks to the client."""


class _QuietDrops(logging.Filter):
    # uvicorn logs every exception escaping the app with a traceback; ours are on purpose.
    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, _DropConnection)


@dataclass(frozen=True)
class Scenario:
    reply: str
    echo: bool
    ttft_ms: int
    inter_token_ms: int
    tokens_per_chunk: int
    fail_after_tokens: int
    fail_mode: FailMode
    http_status: int
    report_usage: bool

    @classmethod
    def resolve(cls, settings: MockLLMSettings, model: str, headers: Mapping[str, str]) -> Scenario:
        s = cls(
            reply=settings.reply,
            echo=settings.echo,
            ttft_ms=settings.ttft_ms,
            inter_token_ms=settings.inter_token_ms,
            tokens_per_chunk=settings.tokens_per_chunk,
            fail_after_tokens=settings.fail_after_tokens,
            fail_mode=settings.fail_mode,
            http_status=settings.http_status,
            report_usage=settings.report_usage,
        )
        changes: dict[str, Any] = {}
        for name, raw in _NUMERIC_DIRECTIVE.findall(model):
            value = int(raw)
            if name == "ttft":
                changes["ttft_ms"] = value
            elif name in ("itl", "inter-token"):
                changes["inter_token_ms"] = value
            elif name == "chunk":
                changes["tokens_per_chunk"] = max(1, value)
            elif name == "status":
                changes["http_status"] = value
            else:
                changes["fail_after_tokens"] = value
                changes["fail_mode"] = "close" if name == "fail-after" else "error"
        for flag in _FLAG_DIRECTIVE.findall(model):
            changes["echo" if flag == "echo" else "report_usage"] = flag == "echo"
        for header, field_name, kind in (
            ("x-mock-reply", "reply", str),
            ("x-mock-echo", "echo", bool),
            ("x-mock-ttft-ms", "ttft_ms", int),
            ("x-mock-inter-token-ms", "inter_token_ms", int),
            ("x-mock-tokens-per-chunk", "tokens_per_chunk", int),
            ("x-mock-fail-after-tokens", "fail_after_tokens", int),
            ("x-mock-fail-mode", "fail_mode", str),
            ("x-mock-http-status", "http_status", int),
            ("x-mock-report-usage", "report_usage", bool),
        ):
            value_text = headers.get(header)
            if value_text is None:
                continue
            if kind is bool:
                changes[field_name] = value_text.strip().lower() in ("1", "true", "yes", "on")
            elif kind is int:
                changes[field_name] = int(value_text)
            else:
                changes[field_name] = value_text
        if changes.get("fail_mode", s.fail_mode) not in ("close", "error"):
            raise ValueError("x-mock-fail-mode must be 'close' or 'error'")
        return dataclasses.replace(s, **changes)


@dataclass(frozen=True)
class ScriptedCall:
    name: str
    arguments: str


@dataclass(frozen=True)
class ScriptRound:
    """One round's scripted answer: tool calls, a reply, or text and then tool calls."""

    tool_calls: tuple[ScriptedCall, ...] = ()
    reply: str | None = None


@dataclass
class Stats:
    started: int = 0
    finished: int = 0
    aborted: int = 0
    failed: int = 0
    in_flight: int = 0


class MockState:
    def __init__(self, settings: MockLLMSettings) -> None:
        self.settings = settings
        self.stats = Stats()
        self.requests: deque[dict[str, Any]] = deque(maxlen=settings.max_recorded_requests)
        self.scripts: dict[str, list[ScriptRound]] = {}
        self._seq = itertools.count(1)
        self._call_ids = itertools.count(1)
        self.send_gaps_ms: deque[float] = deque(maxlen=MAX_RECORDED_GAPS)

    def next_call_id(self) -> str:
        return f"call_mock_{next(self._call_ids)}"

    def scripted_round(self, messages: list[Any]) -> ScriptRound | None:
        """The script round this prompt is at, if a script's key is in the prompt."""
        texts = [
            "\n".join(_message_texts(m)[0])
            for m in messages
            if isinstance(m, dict) and m.get("role") in ("system", "user")
        ]
        for key, rounds in self.scripts.items():
            if rounds and any(key in text for text in texts):
                round_index = 0
                for message in messages:
                    if not isinstance(message, dict):
                        continue
                    if message.get("role") == "user":
                        round_index = 0
                    elif message.get("role") == "assistant" and message.get("tool_calls"):
                        round_index += 1
                return rounds[min(round_index, len(rounds) - 1)]
        return None

    def record(self, path: str, headers: Mapping[str, str], body: object) -> None:
        kept = {
            k: v for k, v in headers.items() if k in _RECORDED_HEADERS or k.startswith("x-mock-")
        }
        self.requests.append({"seq": next(self._seq), "path": path, "headers": kept, "body": body})

    def reset(self) -> None:
        self.stats = Stats()
        self.requests.clear()
        self.scripts.clear()
        self.send_gaps_ms.clear()

    def take_send_gaps(self, clear: bool) -> list[float]:
        gaps = list(self.send_gaps_ms)
        if clear:
            self.send_gaps_ms.clear()
        return gaps


# About 8 MB (a float object and its slot each, ~32 bytes): a benchmark's longest gap step
# reads them back after fewer content chunks than this.
MAX_RECORDED_GAPS = 250_000


def split_tokens(text: str) -> list[str]:
    return _TOKEN.findall(text)


def _message_texts(message: Mapping[str, Any]) -> tuple[list[str], int]:
    content = message.get("content")
    if isinstance(content, str):
        return [content], 0
    texts: list[str] = []
    images = 0
    if isinstance(content, list):
        for part in content:
            if not isinstance(part, dict):
                continue
            if part.get("type") == "text" and isinstance(part.get("text"), str):
                texts.append(part["text"])
            elif part.get("type") == "image_url":
                images += 1
    return texts, images


def _last_user_text(messages: list[Any]) -> str:
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return "\n".join(_message_texts(message)[0])
    return ""


def _last_tool_output(messages: list[Any]) -> str:
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "tool":
            return "\n".join(_message_texts(message)[0])
    return ""


def _prompt_tokens(messages: list[Any]) -> int:
    total = 0
    for message in messages:
        if isinstance(message, dict):
            texts, images = _message_texts(message)
            total += 3 + images + sum(len(split_tokens(t)) for t in texts)
    return total


def _error_body(status: int, message: str, code: str) -> dict[str, Any]:
    kind = "server_error" if status >= 500 else "invalid_request_error"
    if status == 401:
        kind = "authentication_error"
    elif status == 429:
        kind = "rate_limit_error"
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def _error_response(status: int, message: str, code: str) -> JSONResponse:
    headers = {"Retry-After": "1"} if status == 429 else None
    return JSONResponse(_error_body(status, message, code), status_code=status, headers=headers)


def _sse(payload: object) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


class ScriptedResponse(Response):
    """Plays a scenario over ASGI, watching for the client going away the whole time.

    Starlette's StreamingResponse only notices a disconnect when it next writes, and not at
    all during the time-to-first-token wait; the chat-cancel tests need to see the abort
    as soon as the client closes the connection."""

    def __init__(
        self,
        state: MockState,
        scenario: Scenario,
        body: Mapping[str, Any],
        *,
        stream: bool,
        tool_calls: tuple[ScriptedCall, ...] = (),
        preamble: str | None = None,
    ) -> None:
        super().__init__()
        self._state = state
        self._scenario = scenario
        self._body = body
        self._stream = stream
        self._tool_calls = [(state.next_call_id(), call) for call in tool_calls]
        # Text the model says before its tool calls, in the same answer.
        self._preamble = preamble or ""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        stats = self._state.stats
        stats.started += 1
        stats.in_flight += 1
        outcome = "aborted"
        play = asyncio.ensure_future(self._play(send))
        watch = asyncio.ensure_future(_wait_disconnect(receive))
        try:
            await asyncio.wait({play, watch}, return_when=asyncio.FIRST_COMPLETED)
            if play.done():
                outcome = play.result()
        except _DropConnection:
            outcome = "failed"
            raise
        except OSError:
            # The server noticed the disconnect on a write before the watcher did.
            outcome = "aborted"
        finally:
            for task in (play, watch):
                task.cancel()
            await asyncio.gather(play, watch, return_exceptions=True)
            stats.in_flight -= 1
            setattr(stats, outcome, getattr(stats, outcome) + 1)

    async def _play(self, send: Send) -> str:
        sc = self._scenario
        messages = cast(list[Any], self._body.get("messages") or [])
        reply = _last_user_text(messages) if sc.echo else sc.reply
        tokens = split_tokens(reply)
        model = str(self._body.get("model") or "mock")
        completion_id = f"chatcmpl-mock-{time.monotonic_ns()}"
        created = int(time.time())
        usage = {
            "prompt_tokens": _prompt_tokens(messages),
            "completion_tokens": 0,
            "total_tokens": 0,
        }

        def chunk(delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
            return {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }

        if self._tool_calls:
            return await self._play_tool_calls(send, chunk, usage)
        if not self._stream:
            await asyncio.sleep(sc.ttft_ms / 1000)
            if 0 <= sc.fail_after_tokens < len(tokens):
                # Nothing was sent yet, so "failing mid-answer" can only be a 500 here.
                await _send_json(send, 500, _error_body(500, "mock failure", "mock_failure"))
                return "failed"
            usage["completion_tokens"] = len(tokens)
            usage["total_tokens"] = usage["prompt_tokens"] + len(tokens)
            completion = {
                "id": completion_id,
                "object": "chat.completion",
                "created": created,
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": reply},
                        "finish_reason": "stop",
                    }
                ],
                "usage": usage if sc.report_usage else None,
            }
            await _send_json(send, 200, completion)
            return "finished"

        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/event-stream; charset=utf-8"),
                    (b"cache-control", b"no-cache"),
                ],
            }
        )

        async def body(data: bytes, more: bool = True) -> None:
            await send({"type": "http.response.body", "body": data, "more_body": more})

        await asyncio.sleep(sc.ttft_ms / 1000)
        sent = 0
        first = True
        gaps = self._state.send_gaps_ms
        last_sent = 0.0
        while sent < len(tokens):
            if sc.fail_after_tokens >= 0 and sent >= sc.fail_after_tokens:
                return await self._fail(body, sent)
            size = sc.tokens_per_chunk
            if sc.fail_after_tokens >= 0:
                size = min(size, sc.fail_after_tokens - sent)
            if not first and sc.inter_token_ms:
                await asyncio.sleep(sc.inter_token_ms / 1000)
            delta: dict[str, Any] = {"content": "".join(tokens[sent : sent + size])}
            if first:
                delta["role"] = "assistant"
                first = False
            now = time.perf_counter()
            if last_sent:
                gaps.append((now - last_sent) * 1000)
            last_sent = now
            await body(_sse(chunk(delta, None)))
            sent += size
        if first:
            await body(_sse(chunk({"role": "assistant", "content": ""}, None)))
        await body(_sse(chunk({}, "stop")))
        options = self._body.get("stream_options")
        if sc.report_usage and isinstance(options, dict) and options.get("include_usage"):
            usage["completion_tokens"] = sent
            usage["total_tokens"] = usage["prompt_tokens"] + sent
            usage_chunk = chunk({}, None)
            usage_chunk["choices"] = []
            usage_chunk["usage"] = usage
            await body(_sse(usage_chunk))
        await body(b"data: [DONE]\n\n", more=False)
        return "finished"

    async def _play_tool_calls(
        self,
        send: Send,
        chunk: Callable[[dict[str, Any], str | None], dict[str, Any]],
        usage: dict[str, int],
    ) -> str:
        """The scripted calls as a real API sends them: streamed, each call's id and name
        first, then its arguments in two fragments (so clients must join them)."""
        said = split_tokens(self._preamble)
        usage["completion_tokens"] = len(said) + sum(
            len(split_tokens(c.arguments)) for _, c in self._tool_calls
        )
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        if not self._stream:
            message = {
                "role": "assistant",
                "content": self._preamble or None,
                "tool_calls": [
                    {
                        "id": call_id,
                        "type": "function",
                        "function": {"name": c.name, "arguments": c.arguments},
                    }
                    for call_id, c in self._tool_calls
                ],
            }
            completion = chunk({}, "tool_calls")
            completion["object"] = "chat.completion"
            completion["choices"] = [
                {"index": 0, "message": message, "finish_reason": "tool_calls"}
            ]
            completion["usage"] = usage
            await _send_json(send, 200, completion)
            return "finished"
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream; charset=utf-8")],
            }
        )

        async def body(data: bytes, more: bool = True) -> None:
            await send({"type": "http.response.body", "body": data, "more_body": more})

        if said:
            await body(_sse(chunk({"role": "assistant", "content": said[0]}, None)))
            for token in said[1:]:
                await body(_sse(chunk({"content": token}, None)))
        else:
            await body(_sse(chunk({"role": "assistant", "content": None}, None)))
        for index, (call_id, call) in enumerate(self._tool_calls):
            head = {"index": index, "id": call_id, "type": "function"}
            head["function"] = {"name": call.name, "arguments": ""}
            await body(_sse(chunk({"tool_calls": [head]}, None)))
            half = len(call.arguments) // 2
            for piece in (call.arguments[:half], call.arguments[half:]):
                fragment = {"index": index, "function": {"arguments": piece}}
                await body(_sse(chunk({"tool_calls": [fragment]}, None)))
        await body(_sse(chunk({}, "tool_calls")))
        options = self._body.get("stream_options")
        if isinstance(options, dict) and options.get("include_usage"):
            usage_chunk = chunk({}, None)
            usage_chunk["choices"] = []
            usage_chunk["usage"] = usage
            await body(_sse(usage_chunk))
        await body(b"data: [DONE]\n\n", more=False)
        return "finished"

    async def _fail(self, body: Callable[[bytes, bool], Awaitable[None]], sent: int) -> str:
        if self._scenario.fail_mode == "error":
            error = _error_body(500, f"mock failure after {sent} tokens", "mock_failure")
            await body(_sse(error), True)
            await body(b"", False)
            return "failed"
        raise _DropConnection(f"mock drops the connection after {sent} tokens")


async def _wait_disconnect(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


async def _send_json(send: Send, status: int, payload: object) -> None:
    data = orjson.dumps(payload)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data, "more_body": False})


def create_app(settings: MockLLMSettings) -> FastAPI:
    logging.getLogger("uvicorn.error").addFilter(_QuietDrops())
    state = MockState(settings)
    app = FastAPI(title="cozeplus mock LLM", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.mock = state

    async def chat_completions(request: Request) -> Response:
        headers = {k.lower(): v for k, v in request.headers.items()}
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            state.record(request.url.path, headers, None)
            return _error_response(400, "request body is not JSON", "invalid_json")
        state.record(request.url.path, headers, body)
        if settings.api_key and headers.get("authorization") != f"Bearer {settings.api_key}":
            return _error_response(401, "Incorrect API key provided", "invalid_api_key")
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return _error_response(400, "'messages' must be a list", "invalid_messages")
        if not isinstance(body.get("model"), str) or not body["model"]:
            return _error_response(400, "'model' is required", "invalid_model")
        try:
            scenario = Scenario.resolve(settings, body["model"], headers)
        except ValueError as err:
            return _error_response(400, f"bad x-mock-* header: {err}", "invalid_mock_header")
        if scenario.http_status != 200:
            state.stats.started += 1
            state.stats.failed += 1
            return _error_response(
                scenario.http_status,
                f"mock answers HTTP {scenario.http_status}",
                f"mock_status_{scenario.http_status}",
            )
        scripted = state.scripted_round(body["messages"])
        preamble = None
        if scripted is not None and scripted.reply is not None:
            reply = scripted.reply.replace("{tool_output}", _last_tool_output(body["messages"]))
            if scripted.tool_calls:
                preamble = reply
            else:
                scenario = dataclasses.replace(scenario, reply=reply, echo=False)
        return ScriptedResponse(
            state,
            scenario,
            body,
            stream=body.get("stream") is True,
            tool_calls=scripted.tool_calls if scripted is not None else (),
            preamble=preamble,
        )

    async def list_models() -> dict[str, Any]:
        return {
            "object": "list",
            "data": [{"id": "mock", "object": "model", "created": 0, "owned_by": "cozeplus"}],
        }

    for prefix in ("/v1", ""):
        app.add_api_route(f"{prefix}/chat/completions", chat_completions, methods=["POST"])
        app.add_api_route(f"{prefix}/models", list_models, methods=["GET"])

    @app.get("/mock/requests")
    async def recorded_requests(limit: int = 50, detail: bool = False) -> list[Any]:
        items = list(state.requests)[-limit:] if limit > 0 else []
        return items if detail else [item["body"] for item in items]

    @app.get("/mock/stats")
    async def stats() -> dict[str, int]:
        return dataclasses.asdict(state.stats)

    @app.get("/mock/gaps")
    async def send_gaps(clear: bool = False) -> dict[str, list[float]]:
        return {"gaps_ms": state.take_send_gaps(clear)}

    @app.post("/mock/scripts")
    async def set_script(request: Request) -> JSONResponse:
        try:
            spec = orjson.loads(await request.body())
            key = spec["key"]
            rounds = [
                ScriptRound(
                    tool_calls=tuple(
                        ScriptedCall(c["name"], orjson.dumps(c.get("arguments", {})).decode())
                        for c in r.get("tool_calls", ())
                    ),
                    reply=r.get("reply"),
                )
                for r in spec["rounds"]
            ]
        except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError) as err:
            return _error_response(400, f"bad script: {err!r}", "invalid_script")
        if not isinstance(key, str) or not key or not rounds:
            return _error_response(400, "bad script: key and rounds are required", "invalid_script")
        state.scripts[key] = rounds
        return JSONResponse({"ok": True})

    @app.post("/mock/reset")
    async def reset() -> dict[str, bool]:
        state.reset()
        return {"ok": True}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
