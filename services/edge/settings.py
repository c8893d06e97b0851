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
    log_level: str = "INFO"
