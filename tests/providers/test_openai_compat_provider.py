"""The OpenAI-compatible provider against the mock LLM over real HTTP."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from contextlib import aclosing
from typing import Any

import httpx
import orjson
import pytest

from cozeplus.model_catalog import ModelDefaults, ModelSpec
from services.cli.system import free_port
from services.mock_llm.app import split_tokens
from services.runner.providers import (
    Completion,
    CompletionRequest,
    ImagePart,
    PromptMessage,
    ProviderError,
    ProviderRejected,
    ProviderTimeout,
    ProviderUnavailable,
    TextDelta,
    TextPart,
    collect,
)
from services.runner.providers.openai_compat import OpenAICompatProvider, _upstream_detail
from services.runner.providers.token_count import count_prompt_tokens, count_text_tokens
from tests.providers.conftest import MockServer

DEFAULT_REPLY = "Hello! I am the cozeplus mock model. This answer is streamed token by token."
ABORT_WAIT_S = 10.0


def provider(
    server_v1: str, model: str = "mock", *, vision: bool = False, **spec: object
) -> OpenAICompatProvider:
    return OpenAICompatProvider(
        ModelSpec.model_validate(
            {
                "id": f"test-{model}",
                "provider": "openai",
                "base_url": server_v1,
                "model": model,
                "vision": vision,
                **spec,
            }
        )
    )


def ask(text: str = "hi there", **kwargs: object) -> CompletionRequest:
    return CompletionRequest(
        messages=[PromptMessage.text("system", "be brief"), PromptMessage.text("user", text)],
        **kwargs,  # type: ignore[arg-type]
    )


async def run(p: OpenAICompatProvider, request: CompletionRequest) -> list[TextDelta | Completion]:
    items: list[TextDelta | Completion] = []
    try:
        async with aclosing(p.stream(request)) as stream:
            async for item in stream:
                items.append(item)
    finally:
        await p.aclose()
    return items


async def wait_for(predicate: Callable[[], bool], what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + ABORT_WAIT_S
    while not predicate():
        if loop.time() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def test_streamed_deltas_reassemble_the_reply_and_usage_is_reported(
    mock_server: MockServer,
) -> None:
    items = await run(provider(mock_server.v1), ask())
    *deltas, last = items
    assert all(isinstance(d, TextDelta) for d in deltas)
    # Chunks that arrive in one read are one delta: at most one per token.
    assert 1 <= len(deltas) <= len(split_tokens(DEFAULT_REPLY))
    assert "".join(d.text for d in deltas if isinstance(d, TextDelta)) == DEFAULT_REPLY
    assert isinstance(last, Completion)
    assert last.finish_reason == "stop"
    assert not last.usage_estimated
    # The mock's own counting (words), distinct from the adapter's approximation.
    assert last.usage.completion_tokens == len(split_tokens(DEFAULT_REPLY))
    assert last.usage.prompt_tokens == 3 + 2 + 3 + 2
    assert mock_server.stats()["finished"] == 1
    assert mock_server.last_body()["stream_options"] == {"include_usage": True}


async def test_usage_is_counted_when_the_provider_reports_none(mock_server: MockServer) -> None:
    request = ask("count these words 你好")
    items = await run(provider(mock_server.v1, "mock-echo-no-usage"), request)
    completion = items[-1]
    assert isinstance(completion, Completion)
    assert completion.usage_estimated
    assert completion.usage.prompt_tokens == count_prompt_tokens(request.messages)
    assert completion.usage.completion_tokens == count_text_tokens("count these words 你好")


async def test_text_only_messages_are_sent_as_plain_strings(mock_server: MockServer) -> None:
    request = CompletionRequest(
        messages=[
            PromptMessage.text("system", "sys"),
            PromptMessage.text("user", "q1"),
            PromptMessage.text("assistant", "a1"),
            PromptMessage(role="user", parts=[TextPart("line 1"), TextPart("line 2")]),
        ]
    )
    await run(provider(mock_server.v1), request)
    assert mock_server.last_body()["messages"] == [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "q1"},
        {"role": "assistant", "content": "a1"},
        {"role": "user", "content": "line 1\nline 2"},
    ]
    assert mock_server.last_body()["model"] == "mock"


async def test_vision_model_gets_image_parts(mock_server: MockServer) -> None:
    url = "https://example.com/cat.png"
    request = CompletionRequest(
        messages=[PromptMessage(role="user", parts=[TextPart("what is this?"), ImagePart(url)])]
    )
    await run(provider(mock_server.v1, vision=True), request)
    assert mock_server.last_body()["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "what is this?"},
                {"type": "image_url", "image_url": {"url": url}},
            ],
        }
    ]


async def test_text_model_gets_image_notes(mock_server: MockServer) -> None:
    url = "https://example.com/cat.png"
    request = CompletionRequest(
        messages=[PromptMessage(role="user", parts=[TextPart("what is this?"), ImagePart(url)])]
    )
    await run(provider(mock_server.v1, vision=False), request)
    assert mock_server.last_body()["messages"] == [
        {"role": "user", "content": f"what is this?\n[image: {url}]"}
    ]


async def test_sampling_parameters_are_passed_through(mock_server: MockServer) -> None:
    await run(provider(mock_server.v1), ask(temperature=0.3, max_tokens=77, top_p=0.9))
    body = mock_server.last_body()
    assert (body["temperature"], body["max_tokens"], body["top_p"]) == (0.3, 77, 0.9)


async def test_model_defaults_fill_in_and_unset_parameters_are_omitted(
    mock_server: MockServer,
) -> None:
    defaults = ModelDefaults(temperature=0.5, max_tokens=None, top_p=None)
    await run(provider(mock_server.v1, defaults=defaults), ask(top_p=0.2))
    body = mock_server.last_body()
    assert body["temperature"] == 0.5
    assert body["top_p"] == 0.2
    assert "max_tokens" not in body


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (500, ProviderUnavailable),
        (503, ProviderUnavailable),
        (429, ProviderUnavailable),
        (401, ProviderRejected),
        (400, ProviderRejected),
        (404, ProviderRejected),
    ],
)
async def test_http_errors_are_mapped(
    mock_server: MockServer, status: int, error: type[ProviderError]
) -> None:
    with pytest.raises(error) as caught:
        await run(provider(mock_server.v1, f"mock-status-{status}"), ask())
    assert caught.value.upstream_status == status
    assert f"HTTP {status}" in caught.value.msg
    assert "mock answers" in caught.value.msg  # the provider's own message, for the operator
    assert mock_server.v1 not in caught.value.msg


async def test_connection_refused_is_unavailable() -> None:
    with pytest.raises(ProviderUnavailable) as caught:
        await run(provider(f"http://127.0.0.1:{free_port()}/v1"), ask())
    assert "unreachable" in caught.value.msg
    assert caught.value.code == 503


async def test_dropped_connection_mid_stream_fails_after_the_partial_answer(
    mock_server: MockServer,
) -> None:
    received: list[str] = []
    p = provider(mock_server.v1, "mock-fail-after-3")
    with pytest.raises(ProviderUnavailable, match="broke off its answer"):
        async with aclosing(p.stream(ask())) as stream:
            async for item in stream:
                assert isinstance(item, TextDelta)
                received.append(item.text)
    await p.aclose()
    assert "".join(received) == "".join(split_tokens(DEFAULT_REPLY)[:3])
    assert mock_server.stats()["failed"] == 1


async def test_error_event_mid_stream_fails_after_the_partial_answer(
    mock_server: MockServer,
) -> None:
    received: list[str] = []
    p = provider(mock_server.v1, "mock-error-after-2")
    with pytest.raises(ProviderUnavailable) as caught:
        async with aclosing(p.stream(ask())) as stream:
            async for item in stream:
                assert isinstance(item, TextDelta)
                received.append(item.text)
    await p.aclose()
    assert "".join(received) == "".join(split_tokens(DEFAULT_REPLY)[:2])
    assert "mock failure after 2 tokens" in caught.value.msg


async def test_no_first_token_within_the_timeout_is_a_timeout(mock_server: MockServer) -> None:
    with pytest.raises(ProviderTimeout) as caught:
        await run(provider(mock_server.v1, "mock-ttft-60000"), ask(timeout_s=0.5))
    assert "did not start answering" in caught.value.msg
    assert caught.value.code == 504
    # Giving up must also hang up, or the provider keeps generating (and billing).
    await wait_for(lambda: mock_server.stats()["aborted"] == 1, "the mock to see the abort")


async def test_a_stalled_stream_is_a_timeout(mock_server: MockServer) -> None:
    received: list[str] = []
    p = provider(mock_server.v1, "mock-inter-token-60000")
    with pytest.raises(ProviderTimeout) as caught:
        # The deadline covers connecting and the first chunk too: roomy enough for a busy
        # machine, far below the mock's 60 s silence.
        async with aclosing(p.stream(ask(timeout_s=2.0))) as stream:
            async for item in stream:
                assert isinstance(item, TextDelta)
                received.append(item.text)
    await p.aclose()
    assert len(received) == 1
    assert "stopped streaming" in caught.value.msg


async def test_a_stream_that_keeps_coming_outlasts_its_timeout(mock_server: MockServer) -> None:
    # Each chunk pushes the deadline back: 16 chunks 0.3 s apart take 5 times the timeout.
    items = await run(provider(mock_server.v1, "mock-inter-token-300"), ask(timeout_s=1.5))
    text = "".join(i.text for i in items if isinstance(i, TextDelta))
    assert text == DEFAULT_REPLY
    assert isinstance(items[-1], Completion) and items[-1].finish_reason == "stop"


async def test_cancelling_the_consumer_aborts_the_http_request(mock_server: MockServer) -> None:
    p = provider(mock_server.v1, "mock-inter-token-200")
    first_delta = asyncio.Event()
    received: list[str] = []

    async def consume() -> None:
        async with aclosing(p.stream(ask())) as stream:
            async for item in stream:
                if isinstance(item, TextDelta):
                    received.append(item.text)
                    first_delta.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first_delta.wait(), ABORT_WAIT_S)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await wait_for(lambda: mock_server.stats()["aborted"] == 1, "the mock to see the abort")
    stats = mock_server.stats()
    assert (stats["finished"], stats["in_flight"]) == (0, 0)
    assert len(received) < len(split_tokens(DEFAULT_REPLY))
    await p.aclose()


async def test_closing_the_stream_between_items_aborts_the_http_request(
    mock_server: MockServer,
) -> None:
    p = provider(mock_server.v1, "mock-inter-token-200")
    async with aclosing(p.stream(ask())) as stream:
        async for item in stream:
            assert isinstance(item, TextDelta)
            break
    await wait_for(lambda: mock_server.stats()["aborted"] == 1, "the mock to see the abort")
    await p.aclose()


async def test_api_key_comes_from_the_environment_at_call_time(
    mock_server: MockServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = provider(mock_server.v1, api_key_env="COZEPLUS_TEST_LLM_KEY")
    monkeypatch.delenv("COZEPLUS_TEST_LLM_KEY", raising=False)
    with pytest.raises(ProviderRejected) as caught:
        await collect(p, ask())
    assert "COZEPLUS_TEST_LLM_KEY" in caught.value.msg
    assert mock_server.requests() == []

    monkeypatch.setenv("COZEPLUS_TEST_LLM_KEY", "sk-first-key-123456")
    await collect(p, ask())
    monkeypatch.setenv("COZEPLUS_TEST_LLM_KEY", "sk-rotated-key-654321")
    await collect(p, ask())
    await p.aclose()
    sent = [r["headers"] for r in mock_server.requests(detail=True)]
    assert sent == [
        {"authorization": "Bearer sk-first-key-123456"},
        {"authorization": "Bearer sk-rotated-key-654321"},
    ]


async def test_no_key_configured_sends_a_placeholder(mock_server: MockServer) -> None:
    await run(provider(mock_server.v1), ask())
    headers = mock_server.requests(detail=True)[-1]["headers"]
    assert headers == {"authorization": "Bearer cozeplus-no-key"}


async def test_a_wrong_key_is_rejected_by_a_key_checking_server(
    start_mock: Callable[..., MockServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = start_mock("--api-key", "sk-right-key-0000")
    p = provider(server.v1, api_key_env="COZEPLUS_TEST_LLM_KEY")
    monkeypatch.setenv("COZEPLUS_TEST_LLM_KEY", "sk-wrong-key-1111")
    with pytest.raises(ProviderRejected) as caught:
        await collect(p, ask())
    assert caught.value.upstream_status == 401
    assert "sk-wrong-key-1111" not in caught.value.msg
    monkeypatch.setenv("COZEPLUS_TEST_LLM_KEY", "sk-right-key-0000")
    answer, completion = await collect(p, ask())
    await p.aclose()
    assert answer == DEFAULT_REPLY
    assert completion.finish_reason == "stop"


def test_upstream_messages_are_scrubbed_and_shortened() -> None:
    key = "my-secret-value"
    message = f"Incorrect API key provided: {key}. Bearer abc.def sk-proj-AbCdEf123456 " + "x" * 500
    detail = _upstream_detail({"message": message}, key)
    assert key not in detail
    assert "abc.def" not in detail
    assert "sk-proj-AbCdEf123456" not in detail
    assert len(detail) <= 200
    assert _upstream_detail({"no": "message"}, key) == ""
    assert _upstream_detail("plain text body", key) == "plain text body"


async def test_a_healthy_provider_serves_concurrent_requests(mock_server: MockServer) -> None:
    p = provider(mock_server.v1, "mock-echo")
    answers = await asyncio.gather(*(collect(p, ask(f"question {i}")) for i in range(8)))
    await p.aclose()
    assert [a for a, _ in answers] == [f"question {i}" for i in range(8)]


async def test_mock_server_is_a_real_http_server(mock_server: MockServer) -> None:
    async with httpx.AsyncClient(base_url=mock_server.url) as client:
        models = (await client.get("/v1/models")).json()
        assert models["data"][0]["id"] == "mock"


async def test_sequential_streams_reuse_one_connection(mock_server: MockServer) -> None:
    """A finished stream must hand its connection back to the pool: closing it with unread
    bytes (after `[DONE]`) would cost every chat a new TCP (and TLS) connection."""
    upstream = httpx.URL(mock_server.url)
    accepted = 0

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def relay(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        nonlocal accepted
        accepted += 1
        server_r, server_w = await asyncio.open_connection(upstream.host, upstream.port)
        await asyncio.gather(pipe(client_r, server_w), pipe(server_r, client_w))

    proxy = await asyncio.start_server(relay, "127.0.0.1", 0)
    port = proxy.sockets[0].getsockname()[1]
    p = provider(f"http://127.0.0.1:{port}/v1")
    try:
        for _ in range(4):
            async with aclosing(p.stream(ask())) as stream:
                items = [item async for item in stream]
            assert isinstance(items[-1], Completion)
    finally:
        await p.aclose()
        proxy.close()
    assert accepted == 1


async def test_no_proxy_exempts_the_model_host(
    mock_server: MockServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    for name in ("ALL_PROXY", "all_proxy", "http_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", dead)
    with pytest.raises(ProviderUnavailable):
        await run(provider(mock_server.v1), ask())
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    items = await run(provider(mock_server.v1), ask())
    assert isinstance(items[-1], Completion)


def _sse(chunks: list[dict[str, object]]) -> bytes:
    return b"".join(b"data: " + orjson.dumps(c) + b"\n\n" for c in chunks)


def _text_chunk(text: str) -> dict[str, object]:
    return {"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}


STOP_CHUNK = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}


class ScriptedModel:
    def __init__(self, server: asyncio.Server) -> None:
        self.server = server
        # Each request's first line, as it arrived.
        self.request_lines: list[bytes] = []

    def close(self) -> None:
        self.server.close()


async def _scripted_model(
    script: Callable[[asyncio.StreamWriter], Any],
) -> tuple[ScriptedModel, str]:
    """A model server that reads each request and answers with `script(writer)`."""
    model: ScriptedModel

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        model.request_lines.append(head.split(b"\r\n", 1)[0])
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        await reader.readexactly(length)
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n"
        )
        await script(writer)
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    model = ScriptedModel(server)
    return model, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1"


async def test_chunks_that_arrive_together_are_one_delta() -> None:
    async def burst(writer: asyncio.StreamWriter) -> None:
        chunks = [_text_chunk(t) for t in ("a", "b", "c", "d")]
        writer.write(_sse([*chunks, STOP_CHUNK]) + b"data: [DONE]\n\n")
        await writer.drain()

    server, url = await _scripted_model(burst)
    try:
        items = await run(provider(url), ask())
    finally:
        server.close()
    assert [i.text for i in items if isinstance(i, TextDelta)] == ["abcd"]
    assert isinstance(items[-1], Completion) and items[-1].finish_reason == "stop"


async def test_chunks_that_arrive_apart_stay_apart() -> None:
    read = [asyncio.Event() for _ in range(3)]

    async def paced(writer: asyncio.StreamWriter) -> None:
        for index, text in enumerate(("one", " two", " three")):
            writer.write(_sse([_text_chunk(text)]))
            await writer.drain()
            await read[index].wait()  # the client has passed it on: the next is a new read
        writer.write(_sse([STOP_CHUNK]) + b"data: [DONE]\n\n")
        await writer.drain()

    server, url = await _scripted_model(paced)
    deltas: list[str] = []
    p = provider(url)
    try:
        async with aclosing(p.stream(ask())) as stream:
            async for item in stream:
                if isinstance(item, TextDelta):
                    read[len(deltas)].set()
                    deltas.append(item.text)
    finally:
        await p.aclose()
        server.close()
    assert deltas == ["one", " two", " three"]


@pytest.mark.parametrize(
    ("failure", "message"),
    [
        (b"data: " + orjson.dumps({"error": {"message": "overloaded"}}) + b"\n\n", "overloaded"),
        (b"data: {not json\n\n", "malformed"),
    ],
    ids=["error event", "malformed chunk"],
)
async def test_text_before_a_failure_in_the_same_read_is_passed_on(
    failure: bytes, message: str
) -> None:
    async def failing(writer: asyncio.StreamWriter) -> None:
        writer.write(_sse([_text_chunk("partial")]) + failure)
        await writer.drain()

    server, url = await _scripted_model(failing)
    deltas: list[str] = []
    p = provider(url)
    try:
        with pytest.raises(ProviderUnavailable, match=message):
            async with aclosing(p.stream(ask())) as stream:
                async for item in stream:
                    if isinstance(item, TextDelta):
                        deltas.append(item.text)
    finally:
        await p.aclose()
        server.close()
    assert deltas == ["partial"]


async def test_the_environment_proxy_carries_the_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    async def answer(writer: asyncio.StreamWriter) -> None:
        writer.write(_sse([_text_chunk("via the proxy"), STOP_CHUNK]) + b"data: [DONE]\n\n")
        await writer.drain()

    # The scripted model stands in for the proxy: the request names the model's host in full.
    proxy, proxy_url = await _scripted_model(answer)
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", proxy_url.removesuffix("/v1"))
    try:
        items = await run(provider("http://model.invalid/v1"), ask())
    finally:
        proxy.close()
    assert proxy.request_lines == [b"POST http://model.invalid/v1/chat/completions HTTP/1.1"]
    assert [i.text for i in items if isinstance(i, TextDelta)] == ["via the proxy"]
