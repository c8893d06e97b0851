from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

FailMode = Literal["close", "error"]


class MockLLMSettings(BaseSettings):
    """Server-wide defaults. Each request can override them through its model name or
    `x-mock-*` headers (see app.py), so one server serves many test scenarios."""

    model_config = SettingsConfigDict(env_prefix="COZEPLUS_MOCK_LLM_")

    host: str = "127.0.0.1"
    # 0 picks a free port; the ready line printed at startup says which.
    port: int = Field(default=8090, ge=0, le=65535)
    reply: str = "Hello! I am the cozeplus mock model. This answer is streamed token by token."
    # Answer with the last user message's text instead of `reply`.
    echo: bool = False
    # Delay before the first token (after the response headers, as real providers do).
    ttft_ms: int = Field(default=0, ge=0)
    inter_token_ms: int = Field(default=0, ge=0)
    tokens_per_chunk: int = Field(default=1, ge=1)
    # Fail once this many tokens were sent; -1 never.
    fail_after_tokens: int = Field(default=-1, ge=-1)
    # "close": drop the connection mid-body; "error": send an SSE error event and end.
    fail_mode: FailMode = "close"
    # Anything but 200 answers every request with this status and an OpenAI-style error.
    http_status: int = Field(default=200, ge=100, le=599)
    # Send a usage chunk when the client asks for one (stream_options.include_usage).
    report_usage: bool = True
    # When set, requests must carry `Authorization: Bearer <api_key>` (else 401).
    api_key: str = ""
    # How many received requests GET /mock/requests can return.
    max_recorded_requests: int = Field(default=200, ge=1)
    log_level: str = "warning"
    access_log: bool = False
