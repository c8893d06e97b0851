from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class RunnerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="COZEPLUS_RUNNER_")

    nats_url: str = "nats://127.0.0.1:4222"
    registry_addr: str = "127.0.0.1:50051"
    # /healthz and /metrics; 0 disables the endpoint.
    health_port: int = 9100
    health_host: str = "127.0.0.1"
    # Chats one runner process runs at once.
    concurrency: int = 64
    models_file: Path | None = None
    log_level: str = "INFO"
