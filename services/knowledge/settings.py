"""Every knob of a knowledge worker, read from the environment (prefix COZEPLUS_KNOWLEDGE_)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from cozeplus.service_auth import SERVICE_TOKEN_ENV


class KnowledgeSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="COZEPLUS_KNOWLEDGE_", extra="ignore")

    # Comma-separated list of NATS URLs.
    nats_url: str = "nats://127.0.0.1:4222"
    nats_replicas: int = Field(default=1, ge=1, le=5)
    registry_addr: str = "127.0.0.1:50051"
    # The service credential the registry asks of every call (libs/cozeplus/service_auth.py).
    service_token: str = Field(default="", validation_alias=SERVICE_TOKEN_ENV)
    registry_timeout_s: float = Field(default=30.0, gt=0)
    # Documents one worker processes at once (parsing runs on threads).
    concurrency: int = Field(default=4, ge=1)
    # The embedding model, if any, comes from here ([embeddings.NAME]).
    models_file: Path | None = None
    # A document larger than this fails with a reason (bytes of the raw file or page).
    max_document_bytes: int = Field(default=20 * 1024 * 1024, ge=1)
    # ... and one that yields more chunks than this.
    max_chunks: int = Field(default=10_000, ge=1)
    # JetStream redelivers a job whose worker stops acking for this long (the consumer is
    # shared: the first worker to declare it sets it).
    ack_wait_s: float = Field(default=30.0, gt=0)
    # web_url documents: outbound rules (wire contract section 7).
    web_timeout_s: float = Field(default=15.0, gt=0)
    web_max_redirects: int = Field(default=3, ge=0)
    # CIDRs a web_url may resolve into despite being private/loopback (tests, intranets).
    web_allowed_networks: str = ""
    # /healthz; 0 disables it.
    health_port: int = 0
    health_host: str = "127.0.0.1"
    log_level: str = "INFO"
