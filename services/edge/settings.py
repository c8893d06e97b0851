"""Every knob of the HTTP edge, read from the environment (prefix COZEPLUS_EDGE_)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class EdgeSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="COZEPLUS_EDGE_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    registry_addr: str = "127.0.0.1:50051"
    nats_url: str = "nats://127.0.0.1:4222"
    # Per-call deadline for registry RPCs, so a hung registry turns into a 503, not a hung client.
    registry_timeout_s: float = Field(default=10.0, gt=0)
    max_body_bytes: int = Field(default=1_048_576, ge=0)
    auth_cache_ttl_s: float = Field(default=30.0, ge=0)
    cookie_secure: bool = False
    # Origins besides the edge's own that may make cookie-authenticated state changes
    # (e.g. a web console served from another host), as scheme://host[:port].
    allowed_origins: list[str] = Field(default_factory=list)
    # A chat that no runner starts within this long fails with last_error 503.
    chat_queue_timeout_s: float = Field(default=30.0, gt=0)
    # A started chat whose runner sends neither an event nor a heartbeat for this long fails
    # with last_error 500 (runners heartbeat every few seconds while the model is quiet).
    chat_runner_lost_s: float = Field(default=15.0, gt=0)
    # How long /v3/chat/cancel waits for the runner to confirm it stopped a running chat.
    chat_cancel_wait_s: float = Field(default=5.0, ge=0)
    # Node number for chat ids (0..63); None leases a free one from NATS.
    node_id: int | None = Field(default=None, ge=0, le=63)
    log_level: str = "INFO"
