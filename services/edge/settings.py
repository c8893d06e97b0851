"""Every knob of the HTTP edge, read from the environment (prefix COZEPLUS_EDGE_)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from cozeplus.service_auth import SERVICE_TOKEN_ENV

# The rate-limit counts stream keeps windows this long (services/edge/rate_limit.py); a
# longer window would lose its count half way through.
MAX_RATE_LIMIT_WINDOW_S = 3600


class EdgeSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="COZEPLUS_EDGE_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    registry_addr: str = "127.0.0.1:50051"
    # The service credential the registry asks of every call (libs/cozeplus/service_auth.py).
    service_token: str = Field(default="", validation_alias=SERVICE_TOKEN_ENV)
    # One URL or a comma-separated list (the servers of a NATS cluster).
    nats_url: str = "nats://127.0.0.1:4222"
    # Replicas of the JetStream streams and buckets this service declares (3 on a cluster).
    nats_replicas: int = Field(default=1, ge=1, le=5)
    # Per-call deadline for registry RPCs, so a hung registry turns into a 503, not a hung client.
    registry_timeout_s: float = Field(default=10.0, gt=0)
    auth_cache_ttl_s: float = Field(default=30.0, ge=0)
    # How long a bot's published version is cached for chats; publish, unpublish and delete
    # evict it at once (BOT_CHANGED). 0 looks it up for every chat.
    bot_cache_ttl_s: float = Field(default=30.0, ge=0)
    cookie_secure: bool = False
    # Origins besides the edge's own that may make cookie-authenticated state changes
    # (e.g. a web console served from another host), as scheme://host[:port].
    allowed_origins: list[str] = Field(default_factory=list)
    # A chat that no runner starts within this long fails with last_error 503.
    chat_queue_timeout_s: float = Field(default=30.0, gt=0)
    # A started chat whose runner sends neither an event nor a heartbeat for this long fails
    # with last_error 500 (runners heartbeat every few seconds while the model is quiet).
    chat_runner_lost_s: float = Field(default=15.0, gt=0)
    # How long queueing a chat is retried while the work queue has no leader (a NATS node
    # failover) before the chat fails with 503.
    chat_publish_retry_s: float = Field(default=10.0, ge=0)
    # A chat that starts a new conversation is queued while the registry records it (one
    # registry round trip less before the first token). Runners of the previous release
    # would take such a chat for an ended one: upgrade runners first, or set this false
    # until they are.
    chat_queue_while_recording: bool = True
    # How long /v3/chat/cancel waits for the runner to confirm it stopped a running chat.
    chat_cancel_wait_s: float = Field(default=5.0, ge=0)
    # Node number for chat ids (0..63); None leases a free one from NATS.
    node_id: int | None = Field(default=None, ge=0, le=63)
    log_level: str = "INFO"

    # --- HTTP connections (services/edge/http_server.py). A request's line and headers must
    # arrive within this long (slowloris); 408 and close past it.
    http_header_timeout_s: float = Field(default=10.0, gt=0)
    # A response the client reads none of for this long is aborted (a stalled reader). It
    # never cuts a long SSE stream whose client keeps reading.
    http_write_timeout_s: float = Field(default=30.0, gt=0)
    # An idle keep-alive connection is closed after this long.
    http_keep_alive_s: int = Field(default=5, ge=1)
    # Largest request line plus headers; a bigger head is a 400.
    http_max_header_bytes: int = Field(default=16_384, ge=1024)
    # --- the public gRPC API (wire contract section 9), beside HTTP. None: not served.
    grpc_port: int | None = Field(default=None, ge=0, le=65535)
    # Empty: the HTTP host.
    grpc_host: str = ""
    # Both set: TLS (PEM files); otherwise plaintext (put it behind a TLS proxy, or on a
    # private network).
    grpc_tls_cert_file: str = ""
    grpc_tls_key_file: str = ""
    # Pings on idle connections, so a long, quiet chat stream is not cut by a proxy and a
    # vanished client is noticed.
    grpc_keepalive_time_s: float = Field(default=30.0, gt=0)
    grpc_keepalive_timeout_s: float = Field(default=10.0, gt=0)
    # In-flight calls get this long to finish at shutdown.
    grpc_grace_s: float = Field(default=5.0, ge=0)

    # --- rate limits (wire contract section 6): requests per account per window, counted
    # in NATS so every replica shares one count. Without NATS the edge serves unlimited
    # (fails open) and counts each such request in /metrics.
    rate_limit_enabled: bool = True
    rate_limit_window_s: int = Field(default=60, ge=1, le=MAX_RATE_LIMIT_WINDOW_S)
    rate_limit_chat: int = Field(default=60, ge=1)
    rate_limit_bot_management: int = Field(default=30, ge=1)
    rate_limit_bot_info: int = Field(default=100, ge=1)
    rate_limit_other: int = Field(default=600, ge=1)

    # --- request limits. Each refusal is a 400 naming the field (413 for the body). The
    # registry enforces the same ceilings on what it stores, so raising one of these above
    # its default only moves the refusal there.
    max_body_bytes: int = Field(default=1_048_576, ge=0)
    # Uploaded files (/v1/files/upload) and base64 documents: bytes of the decoded file.
    max_file_bytes: int = Field(default=20 * 1024 * 1024, ge=1)
    # Messages in one chat request (additional_messages, plus the `query` shorthand).
    max_chat_messages: int = Field(default=100, ge=1)
    # Characters of one message's content (also `query` and modified content).
    max_content_chars: int = Field(default=100_000, ge=1)
    max_custom_variables: int = Field(default=64, ge=0)
    # UTF-8 bytes of every custom variable's name and value together.
    max_custom_variables_bytes: int = Field(default=16_384, ge=0)
    # meta_data as Coze documents it: 16 pairs, keys up to 64 and values up to 512 characters.
    max_meta_data_pairs: int = Field(default=16, ge=0)
    max_meta_data_key_chars: int = Field(default=64, ge=1)
    max_meta_data_value_chars: int = Field(default=512, ge=0)
