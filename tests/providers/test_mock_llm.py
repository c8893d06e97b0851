"""The mock LLM server's own contract, which end-to-end tests rely on."""

from __future__ import annotations

import httpx
import pytest

from services.mock_llm.app import Scenario, split_tokens
from services.mock_llm.main import settings_from_args
from services.mock_llm.settings import MockLLMSettings
from tests.providers.conftest import MockServer

CHAT = "/v1/chat/completions"


def body(model: str = "mock", *, stream: bool = False, text: str = "hi") -> dict[str, object]:
    return {"model": model, "stream": stream, "messages": [{"role": "user", "content": text}]}


def sse_payloads(raw: str) -> list[str]:
    return [line[len("data: ") :] for line in raw.split("\n\n") if line.startswith("data: ")]


def test_tokens_split_and_rejoin() -> None:
    for text in ["Hello there,  world!", "你好世界 ok", " lead and trail  ", ""]:
        assert "".join(split_tokens(text)) == text
    assert split_tokens("你好 ok") == ["你", "好", " ok"]


def test_model_name_directives_and_headers_override_settings() -> None:
    settings = MockLLMSettings(ttft_ms=7)
    s = Scenario.resolve(settings, "mock-echo-ttft-200-inter-token-5-chunk-3-error-after-4", {})
    assert (s.echo, s.ttft_ms, s.inter_token_ms, s.tokens_per_chunk) == (True, 200, 5, 3)
    assert (s.fail_after_tokens, s.fail_mode) == (4, "error")
    s = Scenario.resolve(settings, "mock-no-usage-status-503", {"x-mock-ttft-ms": "9"})
    assert (s.report_usage, s.http_status, s.ttft_ms) == (False, 503, 9)
    assert Scenario.resolve(settings, "mock", {}).ttft_ms == 7
    assert Scenario.resolve(settings, "mock-fail-after-0", {}).fail_mode == "close"


def test_flags_override_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COZEPLUS_MOCK_LLM_TTFT_MS", "11")
    monkeypatch.setenv("COZEPLUS_MOCK_LLM_REPLY", "from env")
    settings = settings_from_args(["--ttft-ms", "22", "--no-usage", "--port", "0"])
    assert (settings.ttft_ms, settings.reply, settings.report_usage) == (22, "from env", False)
    assert settings_from_args([]).report_usage is True


def test_non_streaming_completion(mock_server: MockServer) -> None:
    r = httpx.post(mock_server.url + CHAT, json=body("mock-echo", text="repeat me"))
    assert r.status_code == 200
    data = r.json()
    assert data["choices"][0]["message"] == {"role": "assistant", "content": "repeat me"}
    assert data["usage"]["completion_tokens"] == 2
    assert mock_server.stats()["finished"] == 1


def test_streaming_sends_usage_only_when_asked(mock_server: MockServer) -> None:
    plain = httpx.post(mock_server.url + CHAT, json=body(stream=True)).text
    assert sse_payloads(plain)[-1] == "[DONE]"
    assert '"usage"' not in plain
    asked = {**body(stream=True), "stream_options": {"include_usage": True}}
    with_usage = httpx.post(mock_server.url + CHAT, json=asked).text
    assert '"usage"' in sse_payloads(with_usage)[-2]


def test_header_overrides(mock_server: MockServer) -> None:
    r = httpx.post(
        mock_server.url + CHAT,
        json=body(),
        headers={"x-mock-reply": "custom answer", "x-mock-report-usage": "false"},
    )
    assert r.json()["choices"][0]["message"]["content"] == "custom answer"
    assert r.json()["usage"] is None
    r = httpx.post(mock_server.url + CHAT, json=body(), headers={"x-mock-http-status": "503"})
    assert r.status_code == 503
    assert r.json()["error"]["type"] == "server_error"
    r = httpx.post(mock_server.url + CHAT, json=body(), headers={"x-mock-fail-mode": "bogus"})
    assert r.status_code == 400


def test_requests_are_recorded_newest_last(mock_server: MockServer) -> None:
    for text in ("first", "second", "third"):
        httpx.post(mock_server.url + CHAT, json=body(text=text), headers={"x-mock-echo": "1"})
    bodies = httpx.get(mock_server.url + "/mock/requests", params={"limit": 2}).json()
    assert [b["messages"][0]["content"] for b in bodies] == ["second", "third"]
    detailed = mock_server.requests(detail=True)
    assert [d["seq"] for d in detailed] == sorted(d["seq"] for d in detailed)  # type: ignore[type-var]
    assert detailed[-1]["headers"] == {"x-mock-echo": "1"}


def test_bad_requests_get_openai_style_errors(mock_server: MockServer) -> None:
    r = httpx.post(mock_server.url + CHAT, content=b"not json")
    assert r.status_code == 400 and "error" in r.json()
    r = httpx.post(mock_server.url + CHAT, json={"model": "mock"})
    assert r.status_code == 400


def test_send_gaps_are_recorded_per_stream_and_cleared_on_request(
    mock_server: MockServer,
) -> None:
    gaps_url = mock_server.url + "/mock/gaps"
    httpx.post(mock_server.url + CHAT, json=body(text="no stream, no gaps"))
    assert httpx.get(gaps_url).json() == {"gaps_ms": []}
    streamed = {**body(stream=True), "messages": [{"role": "user", "content": "one two three"}]}
    headers = {"x-mock-echo": "1", "x-mock-inter-token-ms": "30"}
    for _ in range(2):
        httpx.post(mock_server.url + CHAT, json=streamed, headers=headers).raise_for_status()
    # Three tokens, two gaps a stream; none across streams (the first chunk starts anew).
    gaps = httpx.get(gaps_url, params={"clear": "true"}).json()["gaps_ms"]
    assert len(gaps) == 4
    assert all(25 <= gap < 1000 for gap in gaps), gaps
    assert httpx.get(gaps_url).json() == {"gaps_ms": []}
    httpx.post(mock_server.url + CHAT, json=streamed, headers=headers)
    mock_server.reset()
    assert httpx.get(gaps_url).json() == {"gaps_ms": []}
