"""Models behind any OpenAI-compatible chat completions API (OpenAI, DeepSeek, Qwen/DashScope,
Moonshot, vLLM, Ollama, LM Studio, ...).

Decisions worth knowing:

- The request goes out through aiohttp, not the `openai` SDK: the SDK's request path
  (parameter transformation, request building, httpx's connection pool checking every idle
  connection's socket on each request) was a third of the runner's CPU, and its streaming
  read twice aiohttp's per chunk (docs/performance.md). The body is the same JSON the SDK
  sent (its param types still check it), the URL is `{base_url}/chat/completions`, the key a
  Bearer header, and HTTP errors map to the provider errors below as the SDK's exceptions
  did (the `error` object of a JSON body, or the body's text).

- Always streams, with `stream_options.include_usage`, so usage comes from the provider
  when it supports it; otherwise the adapter counts tokens (token_count.py) and marks the
  Completion `usage_estimated`.
- Messages with only text are sent as a plain string: several compatible servers reject
  the content-array form for text-only models. Images become `image_url` parts only in user
  messages of a vision model (the only place the API accepts them); elsewhere they become
  `[image: URL]` notes so the model still knows an image was there.
- The API key is read from the environment at each call, so rotating it needs no restart,
  and it travels in a per-request header rather than living on the shared client.
- No retries: the runner decides about retrying, and a retry would double the time to the
  first token the user waits for.
- Tools use the API's native tool calling: the request's tools become `tools` function
  definitions; streamed `tool_calls` fragments are joined per index and yielded as whole
  `ToolCall`s once the stream ends; assistant messages carry their `tool_calls` and tool
  outputs go back as `tool` messages.
- Errors are mapped to ProviderTimeout / ProviderUnavailable / ProviderRejected with a
  short message safe for end users: the provider's own message, with anything that looks
  like a key removed, and never the base URL (it can reveal internal hosts).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from collections.abc import AsyncGenerator, Iterable
from contextlib import aclosing
from typing import TYPE_CHECKING, Any, cast

import aiohttp
import httpx2
import orjson
from aiohttp.helpers import get_env_proxy_for_url
from yarl import URL

from cozeplus.model_catalog import ModelSpec
from services.runner.providers.base import (
    Completion,
    CompletionRequest,
    FinishReason,
    ImagePart,
    PromptMessage,
    ProviderError,
    ProviderRejected,
    ProviderTimeout,
    ProviderUnavailable,
    StreamItem,
    TextDelta,
    TextPart,
    Usage,
    part_as_text,
)
from services.runner.providers.token_count import count_prompt_tokens, count_text_tokens
from services.runner.tools.base import ToolCall, ToolDefinition

if TYPE_CHECKING:
    # Only the SDK's param types, to check the bodies: importing the SDK itself would load
    # thousands of pydantic models every collection of the garbage collector walks.
    from openai.types.chat import (
        ChatCompletionContentPartParam,
        ChatCompletionMessageParam,
        ChatCompletionMessageToolCallParam,
        ChatCompletionToolParam,
    )

# Local servers (Ollama, vLLM without --api-key) need no key and ignore this one; it is sent
# anyway, as the SDK did, so every server sees the request it saw before.
NO_KEY_PLACEHOLDER = "cozeplus-no-key"
# Upstream messages are shown to end users: keep them short.
MAX_UPSTREAM_MESSAGE = 200
_KEY_LIKE = re.compile(r"\b(?:sk|pk|rk|key|api[-_]?key)[-_][A-Za-z0-9*._\-]{6,}", re.IGNORECASE)
_BEARER = re.compile(r"Bearer\s+\S+", re.IGNORECASE)

# How long the rest of a response after `[DONE]` may take to arrive before the connection is
# dropped instead of reused (the SDK's own stream waited as long).
_DRAIN_S = 0.1
# How long an idle connection to a model is kept for reuse (httpx's default, which the SDK used).
_KEEPALIVE_S = 5.0

_FINISH_REASONS: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "content_filter": "content_filter",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
}


def to_openai_messages(
    messages: Iterable[PromptMessage], *, vision: bool
) -> list[ChatCompletionMessageParam]:
    out: list[ChatCompletionMessageParam] = []
    for message in messages:
        native_images = vision and message.role == "user"
        if native_images and any(isinstance(p, ImagePart) for p in message.parts):
            content: list[ChatCompletionContentPartParam] = []
            for part in message.parts:
                if isinstance(part, ImagePart):
                    content.append({"type": "image_url", "image_url": {"url": part.url}})
                else:
                    content.append({"type": "text", "text": part_as_text(part)})
            out.append({"role": "user", "content": content})
            continue
        text = "\n".join(
            p.text if isinstance(p, TextPart) else part_as_text(p) for p in message.parts
        )
        if message.role == "system":
            out.append({"role": "system", "content": text})
        elif message.role == "tool":
            out.append({"role": "tool", "tool_call_id": message.tool_call_id, "content": text})
        elif message.role == "assistant" and message.tool_calls:
            calls: list[ChatCompletionMessageToolCallParam] = [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments},
                }
                for call in message.tool_calls
            ]
            out.append({"role": "assistant", "content": text or None, "tool_calls": calls})
        elif message.role == "assistant":
            out.append({"role": "assistant", "content": text})
        else:
            out.append({"role": "user", "content": text})
    return out


def to_openai_tools(tools: Iterable[ToolDefinition]) -> list[ChatCompletionToolParam]:
    return [
        {
            "type": "function",
            "function": {
                "name": tool.name,
                "description": tool.description,
                "parameters": dict(tool.parameters),
            },
        }
        for tool in tools
    ]


class _ToolCallFragments:
    """Joins the streamed pieces of each tool call (keyed by index) into whole calls."""

    def __init__(self) -> None:
        self._calls: dict[int, list[str]] = {}

    def add(self, index: int, call_id: str | None, name: str | None, arguments: str | None) -> None:
        entry = self._calls.setdefault(index, ["", "", ""])
        if call_id:
            entry[0] = call_id
        if name:
            entry[1] += name
        if arguments:
            entry[2] += arguments

    def calls(self) -> list[ToolCall]:
        return [
            ToolCall(id=cid or f"call_{index}", name=name, arguments=arguments or "{}")
            for index, (cid, name, arguments) in sorted(self._calls.items())
        ]


class OpenAICompatProvider:
    def __init__(self, spec: ModelSpec) -> None:
        if not spec.base_url:
            raise ValueError(f"model {spec.id!r}: base_url is required for provider 'openai'")
        self._spec = spec
        self._url = spec.base_url.rstrip("/") + "/chat/completions"
        # Made on first use, in the event loop that uses it (aiohttp binds a session to one).
        self._session: aiohttp.ClientSession | None = None
        self._session_loop: asyncio.AbstractEventLoop | None = None
        # HTTP(S)_PROXY / NO_PROXY, as the SDK's client honoured them, read once: aiohttp's
        # trust_env reads them, and ~/.netrc, on a thread for every request (profiled: two
        # thread hand-offs before each model request, 6 % of the runner's CPU).
        self._proxy, self._proxy_auth = _env_proxy(self._url)

    @property
    def spec(self) -> ModelSpec:
        return self._spec

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None and self._session_loop is asyncio.get_running_loop():
            await session.close()

    def _http(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        session = self._session
        if session is None or session.closed or self._session_loop is not loop:
            session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    # No cap: the runner's own intake bounds the streams to one model, and a
                    # capped pool would queue (or time out) streams behind it.
                    limit=0,
                    keepalive_timeout=_KEEPALIVE_S,
                    # The trust store the SDK's httpx client used (certifi, or SSL_CERT_FILE).
                    ssl=httpx2.create_ssl_context(),
                ),
                # The environment's proxy is passed with each request instead (_env_proxy).
                trust_env=False,
                timeout=aiohttp.ClientTimeout(total=None),
            )
            self._session, self._session_loop = session, loop
        return session

    def _api_key(self) -> str:
        env = self._spec.api_key_env
        if not env:
            return NO_KEY_PLACEHOLDER
        key = os.environ.get(env, "").strip()
        if not key:
            raise ProviderRejected(
                f"model {self._spec.id!r} needs an API key: set the environment variable "
                f"{env} for the runner"
            )
        return key

    def _body(self, request: CompletionRequest) -> bytes:
        spec = self._spec
        defaults = spec.defaults
        body: dict[str, Any] = {
            "messages": to_openai_messages(request.messages, vision=spec.vision),
            "model": spec.model or spec.id,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        temperature = (
            request.temperature if request.temperature is not None else defaults.temperature
        )
        max_tokens = request.max_tokens if request.max_tokens is not None else defaults.max_tokens
        top_p = request.top_p if request.top_p is not None else defaults.top_p
        if temperature is not None:
            body["temperature"] = temperature
        if max_tokens is not None:
            body["max_tokens"] = max_tokens
        if top_p is not None:
            body["top_p"] = top_p
        if request.tools:
            body["tools"] = to_openai_tools(request.tools)
        return orjson.dumps(body)

    async def stream(self, request: CompletionRequest) -> AsyncGenerator[StreamItem, None]:
        spec = self._spec
        key = self._api_key()
        timeout_s = request.timeout_s
        headers = {
            "Authorization": f"Bearer {key}",
            "Content-Type": "application/json",
            "Accept": "text/event-stream",
        }
        loop = asyncio.get_running_loop()
        # One deadline covers connecting, the response headers and the first chunk; it is
        # pushed back by every chunk after that.
        deadline = loop.time() + timeout_s
        parts: list[str] = []
        fragments = _ToolCallFragments()
        usage: Usage | None = None
        finish: FinishReason | None = None
        # Past the response headers: a broken connection now is a failure mid-answer.
        answering = False
        try:
            async with contextlib.AsyncExitStack() as stack:
                async with asyncio.timeout_at(deadline):
                    response = await stack.enter_async_context(
                        self._http().post(
                            self._url,
                            data=self._body(request),
                            headers=headers,
                            proxy=self._proxy,
                            proxy_auth=self._proxy_auth,
                            # Backstop only: the deadlines above and below are what fire.
                            # No sock_read: it re-arms a timer per packet, and every read
                            # of the body has its deadline (_ReadDeadline).
                            timeout=aiohttp.ClientTimeout(total=None, sock_connect=timeout_s + 5.0),
                        )
                    )
                    if response.status >= 400:
                        raise _status_error(spec.id, response.status, await response.read(), key)
                answering = True
                # Closing the response mid-body drops the connection: that is what tells
                # the provider to stop generating when the chat is cancelled.
                blocks = await stack.enter_async_context(
                    aclosing(_iter_chunk_blocks(response.content, deadline, timeout_s))
                )
                async for block in blocks:
                    # The text of every chunk that came in one read goes on as one delta: a
                    # model that outpaces the pipeline is caught up with, not queued behind,
                    # and a model sending one chunk at a time is passed on as it sends.
                    texts: list[str] = []
                    for chunk in block:
                        error = chunk.get("error")
                        if error:
                            if texts:
                                yield TextDelta("".join(texts))
                            # An error event inside a 200 stream: the provider failed
                            # mid-answer.
                            detail = _upstream_detail(error, key)
                            suffix = f": {detail}" if detail else ""
                            raise ProviderUnavailable(
                                f"model {spec.id!r} failed while answering{suffix}"
                            )
                        chunk_usage = chunk.get("usage")
                        if isinstance(chunk_usage, dict):
                            usage = Usage(
                                prompt_tokens=chunk_usage.get("prompt_tokens") or 0,
                                completion_tokens=chunk_usage.get("completion_tokens") or 0,
                            )
                        for choice in chunk.get("choices") or ():
                            if choice.get("index", 0) != 0:
                                continue
                            reason = choice.get("finish_reason")
                            if reason is not None:
                                finish = _FINISH_REASONS.get(reason, "other")
                            delta = choice.get("delta") or {}
                            text = delta.get("content")
                            if text:
                                parts.append(text)
                                texts.append(text)
                            for fragment in delta.get("tool_calls") or ():
                                function = fragment.get("function") or {}
                                fragments.add(
                                    fragment.get("index", 0),
                                    fragment.get("id"),
                                    function.get("name"),
                                    function.get("arguments"),
                                )
                    if texts:
                        yield TextDelta("".join(texts))
        except aiohttp.ServerTimeoutError as err:
            # The socket backstop (before the TimeoutError below: it is one too).
            raise ProviderTimeout(f"model {spec.id!r} timed out") from err
        except TimeoutError as err:
            what = "stopped streaming" if parts else "did not start answering"
            raise ProviderTimeout(f"model {spec.id!r} {what} within {timeout_s:g}s") from err
        except (aiohttp.ClientError, OSError) as err:
            raise ProviderUnavailable(
                f"model {spec.id!r} broke off its answer (connection lost)"
                if answering
                else f"model {spec.id!r} is unreachable (connection failed)"
            ) from err
        except orjson.JSONDecodeError as err:
            raise ProviderUnavailable(f"model {spec.id!r} sent a malformed chunk") from err
        if finish is None:
            # A clean end of stream without a finish reason means the provider (or a proxy
            # between us) cut the answer short: report it rather than pass a truncated
            # answer off as complete.
            raise ProviderUnavailable(f"model {spec.id!r} ended its answer prematurely")
        calls = fragments.calls()
        for call in calls:
            yield call
        estimated = usage is None
        if usage is None:
            usage = Usage(
                prompt_tokens=count_prompt_tokens(request.messages, vision=spec.vision),
                completion_tokens=count_text_tokens("".join(parts))
                + sum(count_text_tokens(c.name + c.arguments) for c in calls),
            )
        yield Completion(usage=usage, finish_reason=finish, usage_estimated=estimated)


def _env_proxy(url: str) -> tuple[URL | None, aiohttp.BasicAuth | None]:
    """The proxy the environment names for `url` (None: none, or NO_PROXY exempts it)."""
    try:
        return get_env_proxy_for_url(URL(url))
    except LookupError:
        return None, None


def _status_error(model: str, status: int, raw: bytes, key: str) -> ProviderError:
    """An HTTP error answer, mapped as the SDK's status errors were: the detail is the
    message of the body's `error` object (or of the body), or the body's text."""
    body: object
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        body = raw.decode(errors="replace").strip()
    if isinstance(body, dict):
        body = body.get("error", body)
    detail = _upstream_detail(body, key)
    suffix = f": {detail}" if detail else ""
    if status == 408:
        return ProviderTimeout(
            f"model {model!r} timed out (HTTP {status}){suffix}", upstream_status=status
        )
    if status == 429:
        return ProviderUnavailable(
            f"model {model!r} is rate limited or out of quota (HTTP 429){suffix}",
            upstream_status=status,
        )
    if status >= 500:
        return ProviderUnavailable(
            f"model {model!r} failed (HTTP {status}){suffix}", upstream_status=status
        )
    if status in (401, 403):
        return ProviderRejected(
            f"model {model!r} rejected the API key (HTTP {status}){suffix}",
            upstream_status=status,
        )
    return ProviderRejected(
        f"model {model!r} rejected the request (HTTP {status}){suffix}",
        upstream_status=status,
    )


class _ReadDeadline:
    """When a stream's next block is due. A model sending a token every few milliseconds
    pushes it back hundreds of times a second: an asyncio timeout per read (a timer armed
    and cancelled each time) was ~8 % of the runner's CPU per paced token. Here a block only
    moves `deadline`; the one timer, when it fires early, re-arms itself at the moved
    deadline, and once it is due, fails the body's pending or next read with TimeoutError
    (no task is cancelled, so the consumer's own awaits are never hit)."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, body: aiohttp.StreamReader, deadline: float
    ) -> None:
        self.deadline = deadline
        self._loop = loop
        self._body = body
        self._timer = loop.call_at(deadline, self._due)

    def _due(self) -> None:
        if self._loop.time() < self.deadline:
            self._timer = self._loop.call_at(self.deadline, self._due)
            return
        self._body.set_exception(TimeoutError("no block from the model in time"))

    def cancel(self) -> None:
        self._timer.cancel()


async def _iter_chunk_blocks(
    body: aiohttp.StreamReader, deadline: float, timeout_s: float
) -> AsyncGenerator[list[dict[str, Any]], None]:
    """The stream's server-sent events as parsed JSON objects, up to `[DONE]`: a list per
    read of the socket (the events that read completed; none is held for a later one).

    Splits the body on newlines itself (no text decoding of the whole stream): an event's
    `data:` lines are joined, other fields (`event:`, `id:`, comments) are ignored, as the
    chat completions stream only carries data.

    A read that waits past `deadline` raises TimeoutError; each block received pushes it
    `timeout_s` back (`_ReadDeadline`: one timer per stream, not one per read).
    """
    loop = asyncio.get_running_loop()
    watch = _ReadDeadline(loop, body, deadline)
    try:
        buffer = b""
        data: list[bytes] = []
        while True:
            block = await body.readany()
            if not block:
                return
            watch.deadline = loop.time() + timeout_s
            buffer += block
            *lines, buffer = buffer.split(b"\n")
            events: list[dict[str, Any]] = []
            for line in lines:
                if line.endswith(b"\r"):
                    line = line[:-1]
                if line:
                    if line.startswith(b"data:"):
                        data.append(line[6:] if line[5:6] == b" " else line[5:])
                    continue
                if not data:
                    continue
                payload = data[0] if len(data) == 1 else b"\n".join(data)
                data = []
                if payload.startswith(b"[DONE]"):
                    if events:
                        yield events
                    # Read the body to its end (briefly) so the connection goes back to the pool:
                    # closing a response with unread bytes drops it, and the next chat would
                    # pay a new TCP (and TLS) connection (seen in profiles as connect_tcp).
                    with contextlib.suppress(TimeoutError, aiohttp.ClientError):
                        async with asyncio.timeout(_DRAIN_S):
                            async for _ in body.iter_any():
                                pass
                    return
                try:
                    parsed = orjson.loads(payload)
                except orjson.JSONDecodeError:
                    if events:  # what came before it in the read is answer too
                        yield events
                    raise
                if isinstance(parsed, dict):
                    events.append(cast(dict[str, Any], parsed))
            if events:
                yield events
    finally:
        watch.cancel()


def _upstream_detail(body: object, key: str) -> str:
    message: object = body
    if isinstance(body, dict):
        message = cast(dict[str, Any], body).get("message")
    if not isinstance(message, str):
        return ""
    if key and key != NO_KEY_PLACEHOLDER:
        message = message.replace(key, "[redacted]")
    message = _BEARER.sub("Bearer [redacted]", message)
    message = _KEY_LIKE.sub("[redacted]", message)
    message = " ".join(message.split())
    if len(message) > MAX_UPSTREAM_MESSAGE:
        message = message[: MAX_UPSTREAM_MESSAGE - 1] + "…"
    return message
