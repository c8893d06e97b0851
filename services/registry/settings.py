from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from cozeplus.service_auth import SERVICE_TOKEN_ENV


class RegistrySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="COZEPLUS_REGISTRY_")

    # host:port of the gRPC server.
    listen: str = "127.0.0.1:50051"
    data_dir: Path = Path(".cozeplus")
    # Empty: a SQLite file under data_dir. postgresql://... uses psycopg 3.
    database_url: str = ""
    nats_url: str = "nats://127.0.0.1:4222"
    # None: lease a free node number from NATS so replicas never mint the same id.
    node_id: int | None = None
    models_file: Path | None = None
    # The model of a bot whose config names none.
    default_model: str = "echo"
    # How long in-flight RPCs may run on after SIGTERM.
    grace_period_s: float = 5.0
    session_ttl_s: int = 7 * 24 * 3600
    log_level: str = "INFO"
    # The service credential (libs/cozeplus/service_auth.py): required; calls without it are
    # UNAUTHENTICATED (health checks excepted). One name for every service.
    service_token: str = Field(default="", validation_alias=SERVICE_TOKEN_ENV)

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'registry.db'}"
