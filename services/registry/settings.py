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
    # One URL or a comma-separated list (the servers of a NATS cluster).
    nats_url: str = "nats://127.0.0.1:4222"
    # Replicas of the JetStream streams and buckets this service declares (3 on a cluster).
    nats_replicas: int = Field(default=1, ge=1, le=5)
    # None: lease a free node number from NATS so replicas never mint the same id.
    node_id: int | None = None
    models_file: Path | None = None
    # The model of a bot whose config names none.
    default_model: str = "echo"
    # How long in-flight RPCs may run on after SIGTERM.
    grace_period_s: float = 5.0
    session_ttl_s: int = 7 * 24 * 3600
    # How long a chat paused in requires_action waits for the client's tool outputs before
    # the run sweeper fails it (408); set as the run's paused_until when it pauses.
    tool_outputs_timeout_s: int = Field(default=600, gt=0)
    log_level: str = "INFO"
    # The service credential (libs/cozeplus/service_auth.py): required; calls without it are
    # UNAUTHENTICATED (health checks excepted). One name for every service.
    service_token: str = Field(default="", validation_alias=SERVICE_TOKEN_ENV)
    # Fernet key sealing plugin secrets at rest. Empty: generated once into
    # <data_dir>/secret.key. Replicas sharing a database must be given the same key.
    secret_key: str = ""
    # Comma-separated CIDRs MCP discovery may reach although they are not public (loopback,
    # private, ...); empty: public addresses only (wire contract section 7).
    plugin_allowed_networks: str = ""
    # MCP discovery: the whole exchange, and the largest response accepted.
    plugin_timeout_s: float = 15.0
    plugin_max_response_bytes: int = 4_000_000
    # The bytes of uploaded files (/v1/files/upload, base64 documents) one account may keep;
    # an upload past it is refused with 403. 0: no quota.
    file_quota_bytes: int = Field(default=1 << 30, ge=0)

    # --- run liveness (services/registry/run_liveness.py, docs/operations.md). A run that
    # shows no progress for this long in a status is ended as failed by the run sweeper.
    # created: longer than the edge's chat_queue_timeout_s, which normally fails it first.
    run_created_s: float = Field(default=60.0, gt=0)
    # in_progress: runners heartbeat every few seconds; also how long cancel trusts a silent
    # runner to still hold the run.
    run_silence_s: float = Field(default=30.0, gt=0)
    run_sweep_interval_s: float = Field(default=5.0, gt=0)
    # A document processing this long without progress (created, or claimed by a worker)
    # is failed with a reason; longer than the longest expected ingestion backlog. Checked
    # every `document_sweep_interval_s`.
    document_stalled_s: float = Field(default=3600.0, gt=0)
    document_sweep_interval_s: float = Field(default=60.0, gt=0)

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'registry.db'}"
