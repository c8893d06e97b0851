from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from cozeplus.service_auth import SERVICE_TOKEN_ENV


class RunnerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="COZEPLUS_RUNNER_")

    # One URL or a comma-separated list (the servers of a NATS cluster).
    nats_url: str = "nats://127.0.0.1:4222"
    # Replicas of the JetStream streams and buckets this service declares (3 on a cluster).
    nats_replicas: int = Field(default=1, ge=1, le=5)
    registry_addr: str = "127.0.0.1:50051"
    # Where the Plugins service (tool resolution) is served; empty: the registry.
    plugins_addr: str = ""
    # The service credential the registry asks of every call (libs/cozeplus/service_auth.py).
    service_token: str = Field(default="", validation_alias=SERVICE_TOKEN_ENV)
    # /healthz and /metrics; 0 disables the endpoint.
    health_port: int = 9100
    health_host: str = "127.0.0.1"
    # Chats one runner process runs at once. A chat mostly waits on the model and the
    # network, so the bound is memory, not CPU: see memory_limit_mib and the per-chat
    # memory measured in docs/performance.md.
    concurrency: int = Field(default=4000, ge=1)
    # Take no new chats while this process's resident memory is above this many MiB
    # (they stay queued for other runners); 0 turns the check off.
    memory_limit_mib: int = Field(default=0, ge=0)
    # Chats taken from the queue per fetch, at most (and never more than free slots).
    fetch_batch: int = Field(default=16, ge=1, le=256)
    models_file: Path | None = None
    # Longest wait for the model's next token (the first included) before the chat fails.
    model_timeout_s: float = 60.0
    # Longest a server-side tool call may take before the model is told it timed out.
    tool_timeout_s: float = 30.0
    # Longest wait for the knowledge search before a chat answers without its chunks.
    knowledge_timeout_s: float = 10.0
    # Larger images named by file id are not inlined for vision models (they get the note).
    max_image_bytes: int = Field(default=10 * 1024 * 1024, ge=1)
    # How often a running chat tells JetStream and the edge that its runner is alive.
    heartbeat_s: float = 2.0
    # How often the runner tells the registry which runs it holds (RunLiveness.Heartbeat);
    # keep it well below the registry's RUN_SILENCE_S, past which a silent run is swept.
    registry_heartbeat_s: float = Field(default=5.0, gt=0)
    # How long a run retries a registry call that fails transiently (UNAVAILABLE,
    # DEADLINE_EXCEEDED: a registry restart) before it gives up; FinishRun has no limit.
    registry_retry_s: float = Field(default=30.0, gt=0)
    # On SIGTERM, how long running chats may take to finish; those still running then are
    # ended failed (503, their streams told).
    shutdown_grace_s: float = 30.0
    # None leases a free id node from NATS; set it only to pin one.
    node_id: int | None = None
    log_level: str = "INFO"
    # Plugin calls (OpenAPI and MCP tools) leave the runner under wire contract section 7:
    # comma-separated CIDRs reachable although not public (loopback, private, ...); empty:
    # public addresses only, so by default a plugin reaches neither the registry, NATS,
    # loopback nor cloud metadata.
    plugin_allowed_networks: str = ""
    # One plugin call, connect to last byte. Below tool_timeout_s (the loop's own bound), so
    # the model reads the executor's precise message ("GET /x timed out after 25s").
    plugin_timeout_s: float = 25.0
    # Larger tool outputs are cut to this many bytes, with a note saying so. Below the
    # registry's 100,000-character limit on a stored message, and a fair share of a
    # model's context.
    plugin_max_response_bytes: int = 64_000
    plugin_max_redirects: int = 5
