"""The registry's tables. Timestamps are integer Unix seconds; 0 means "not set".

Every id comes from `cozeplus.ids.IdGenerator`, never from the database, so ids are
time-ordered and unique across replicas and can be handed out before a row exists.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

# Our own metadata, not SQLModel's global one: migrations must see exactly these tables,
# whatever else a process happens to import.
metadata = sa.MetaData()


class RegistryTable(SQLModel, registry=registry(metadata=metadata)):
    pass


def _id_column() -> Any:
    return Field(sa_column=sa.Column(sa.BigInteger, primary_key=True, autoincrement=False))


def _time_column(*, default: int | None = None) -> Any:
    if default is None:
        return Field(sa_type=sa.BigInteger, nullable=False)
    return Field(default=default, sa_type=sa.BigInteger, nullable=False)


class UserRecord(RegistryTable, table=True):
    __tablename__ = "users"
    __table_args__ = (sa.UniqueConstraint("username_key", name="uq_users_username_key"),)

    id: int = _id_column()
    username: str = Field(sa_type=sa.String(64), nullable=False)
    # Lower-cased username: "Alice" and "alice" must not be two accounts.
    username_key: str = Field(sa_type=sa.String(64), nullable=False)
    display_name: str = Field(sa_type=sa.String(100), nullable=False)
    # argon2id, in the PHC string format (parameters and salt included).
    password_hash: str = Field(sa_type=sa.String(255), nullable=False)
    created_at: int = _time_column()
    # Set by Accounts.DeleteUser: the row stays (its username stays taken, its bots keep an
    # owner), but nothing authenticates as it any more.
    deleted_at: int = _time_column(default=0)


class SessionRecord(RegistryTable, table=True):
    __tablename__ = "sessions"
    __table_args__ = (
        sa.UniqueConstraint("token_hash", name="uq_sessions_token_hash"),
        sa.Index("ix_sessions_user_id", "user_id"),
    )

    id: int = _id_column()
    user_id: int = Field(
        sa_type=sa.BigInteger,
        foreign_key="users.id",
        nullable=False,
    )
    # sha256 hex of the session key; the key itself is never stored.
    token_hash: str = Field(sa_type=sa.String(64), nullable=False)
    created_at: int = _time_column()
    expires_at: int = _time_column()
    revoked_at: int = _time_column(default=0)


class ApiKeyRecord(RegistryTable, table=True):
    __tablename__ = "api_keys"
    __table_args__ = (
        sa.UniqueConstraint("token_hash", name="uq_api_keys_token_hash"),
        sa.Index("ix_api_keys_user_id", "user_id"),
    )

    id: int = _id_column()
    user_id: int = Field(
        sa_type=sa.BigInteger,
        foreign_key="users.id",
        nullable=False,
    )
    name: str = Field(sa_type=sa.String(100), nullable=False)
    # sha256 hex of the token; the token itself is shown once and never stored.
    token_hash: str = Field(sa_type=sa.String(64), nullable=False)
    prefix: str = Field(sa_type=sa.String(16), nullable=False)
    created_at: int = _time_column()
    expires_at: int = _time_column(default=0)
    last_used_at: int = _time_column(default=0)
    revoked_at: int = _time_column(default=0)


class BotRecord(RegistryTable, table=True):
    """A bot's editable draft, plus a summary of its publishing state."""

    __tablename__ = "bots"
    __table_args__ = (
        sa.Index("ix_bots_owner_id_space_id", "owner_id", "space_id"),
        sa.Index("ix_bots_space_id_published_at", "space_id", "published_at"),
    )

    id: int = _id_column()
    # No foreign key to users: callers are trusted services passing an authenticated
    # account id, and bots must not care where accounts come from.
    owner_id: int = Field(sa_type=sa.BigInteger, nullable=False)
    space_id: int = Field(sa_type=sa.BigInteger, nullable=False)
    name: str = Field(sa_type=sa.String(100), nullable=False)
    description: str = Field(sa_type=sa.String(2000), nullable=False)
    icon_url: str = Field(sa_type=sa.String(2048), nullable=False)
    # `bots.BotConfig` as JSON.
    config: dict[str, Any] = Field(sa_column=sa.Column(sa.JSON, nullable=False))
    created_at: int = _time_column()
    updated_at: int = _time_column()
    deleted_at: int = _time_column(default=0)
    latest_version: int = Field(default=0, sa_type=sa.Integer, nullable=False)
    published_at: int = _time_column(default=0)


class BotVersionRecord(RegistryTable, table=True):
    """An immutable snapshot frozen by a publish."""

    __tablename__ = "bot_versions"

    # The composite primary key is what makes concurrent publishes safe even if a
    # caller bypassed the row lock: a second version N cannot be inserted.
    bot_id: int = Field(
        sa_column=sa.Column(
            sa.BigInteger,
            sa.ForeignKey("bots.id"),
            primary_key=True,
            autoincrement=False,
        )
    )
    version: int = Field(sa_column=sa.Column(sa.Integer, primary_key=True, autoincrement=False))
    # `bots.VersionSnapshot` as JSON: display info, config and the draft's update time.
    snapshot: dict[str, Any] = Field(sa_column=sa.Column(sa.JSON, nullable=False))
    published_at: int = _time_column()


class ConversationRecord(RegistryTable, table=True):
    __tablename__ = "conversations"
    __table_args__ = (
        # ListConversations: one owner's conversations with one bot, in id order.
        sa.Index("ix_conversations_owner_id_bot_id_id", "owner_id", "bot_id", "id"),
    )

    id: int = _id_column()
    owner_id: int = Field(sa_type=sa.BigInteger, nullable=False)
    # The end user the conversation belongs to; "" = any end user of the owner.
    user_id: str = Field(sa_type=sa.String(255), nullable=False)
    # 0 when created without a bot.
    bot_id: int = Field(sa_type=sa.BigInteger, nullable=False)
    name: str = Field(sa_type=sa.String(100), nullable=False)
    meta_data: dict[str, str] = Field(sa_column=sa.Column(sa.JSON, nullable=False))
    created_at: int = _time_column()
    updated_at: int = _time_column()
    # History only reaches back to the start of this section (see ClearConversation).
    last_section_id: int = Field(sa_type=sa.BigInteger, nullable=False)
    deleted_at: int = _time_column(default=0)


class MessageRecord(RegistryTable, table=True):
    __tablename__ = "messages"
    __table_args__ = (
        # The history window: one section's messages in id order.
        sa.Index(
            "ix_messages_conversation_id_section_id_id", "conversation_id", "section_id", "id"
        ),
        # ListMessages pages over every section.
        sa.Index("ix_messages_conversation_id_id", "conversation_id", "id"),
        sa.Index("ix_messages_chat_id", "chat_id"),
    )

    id: int = _id_column()
    # No foreign keys: conversations are soft-deleted, and messages are reached only
    # through a live conversation, so the database need not enforce the link.
    conversation_id: int = Field(sa_type=sa.BigInteger, nullable=False)
    section_id: int = Field(sa_type=sa.BigInteger, nullable=False)
    # 0 for messages created outside a chat run.
    chat_id: int = Field(sa_type=sa.BigInteger, nullable=False)
    owner_id: int = Field(sa_type=sa.BigInteger, nullable=False)
    bot_id: int = Field(sa_type=sa.BigInteger, nullable=False)
    role: str = Field(sa_type=sa.String(16), nullable=False)
    type: str = Field(sa_type=sa.String(32), nullable=False)
    content: str = Field(sa_type=sa.Text, nullable=False)
    content_type: str = Field(sa_type=sa.String(16), nullable=False)
    reasoning_content: str = Field(sa_type=sa.Text, nullable=False)
    meta_data: dict[str, str] = Field(sa_column=sa.Column(sa.JSON, nullable=False))
    created_at: int = _time_column()
    updated_at: int = _time_column()


class ChatRunRecord(RegistryTable, table=True):
    """One chat: created by the edge, started and finished by a runner."""

    __tablename__ = "chat_runs"
    __table_args__ = (
        # CancelChat without a chat id looks for the newest unfinished chat.
        sa.Index("ix_chat_runs_conversation_id_id", "conversation_id", "id"),
        # The expiry of paused (requires_action) runs looks for those past their deadline.
        sa.Index("ix_chat_runs_status_paused_until", "status", "paused_until"),
        # The run sweeper reads the few unfinished runs by status, oldest progress first.
        sa.Index("ix_chat_runs_status_progress_at", "status", "progress_at"),
    )

    id: int = _id_column()
    conversation_id: int = Field(sa_type=sa.BigInteger, nullable=False)
    section_id: int = Field(sa_type=sa.BigInteger, nullable=False)
    owner_id: int = Field(sa_type=sa.BigInteger, nullable=False)
    user_id: str = Field(sa_type=sa.String(255), nullable=False)
    bot_id: int = Field(sa_type=sa.BigInteger, nullable=False)
    # 0 = the bot's draft.
    bot_version: int = Field(sa_type=sa.Integer, nullable=False)
    model_id: str = Field(sa_type=sa.String(128), nullable=False)
    # created -> in_progress -> completed | failed | canceled; created may also go
    # straight to failed or canceled. Every transition is a conditional UPDATE on it.
    status: str = Field(sa_type=sa.String(32), nullable=False)
    created_at: int = _time_column()
    started_at: int = _time_column(default=0)
    completed_at: int = _time_column(default=0)
    failed_at: int = _time_column(default=0)
    canceled_at: int = _time_column(default=0)
    last_error_code: int = Field(default=0, sa_type=sa.Integer, nullable=False)
    last_error_msg: str = Field(default="", sa_type=sa.Text, nullable=False)
    prompt_tokens: int = Field(default=0, sa_type=sa.BigInteger, nullable=False)
    completion_tokens: int = Field(default=0, sa_type=sa.BigInteger, nullable=False)
    meta_data: dict[str, str] = Field(sa_column=sa.Column(sa.JSON, nullable=False))
    first_token_ms: int = Field(default=0, sa_type=sa.BigInteger, nullable=False)
    duration_ms: int = Field(default=0, sa_type=sa.BigInteger, nullable=False)
    auto_save_history: bool = Field(sa_type=sa.Boolean, nullable=False)
    # requires_action (migration 0005): the client-side tool calls the run waits for, as a
    # JSON list of {id, name, arguments}; when the pause expires; the caller's
    # custom_variables, so a resumed run renders the same prompt.
    pending_tool_calls: list[dict[str, str]] = Field(
        default_factory=list, sa_column=sa.Column(sa.JSON, nullable=False, server_default="[]")
    )
    paused_until: int = _time_column(default=0)
    custom_variables: dict[str, str] = Field(
        default_factory=dict, sa_column=sa.Column(sa.JSON, nullable=False, server_default="{}")
    )
    # A paused chat with auto_save_history false (migration 0009): its input messages as the
    # runner sent them (JSON), the only copy of its question; emptied when the run ends.
    unsaved_input: str = Field(
        default="", sa_column=sa.Column(sa.Text, nullable=False, server_default="")
    )
    # The answer text a paused run had streamed (migration 0009), continued when it resumes;
    # emptied when the run ends.
    paused_answer: str = Field(
        default="", sa_column=sa.Column(sa.Text, nullable=False, server_default="")
    )

    # Last sign of life: set by every status change and by the runner's heartbeats. The run
    # sweeper (services/registry/run_liveness.py) ends a run whose progress stops too long.
    progress_at: int = _time_column(default=0)


# ------------------------------------------------------- sdk surface (migration 0007)


class UserEmailRecord(RegistryTable, table=True):
    """The email an account registered with (Coze Studio registers by email); login accepts
    it in place of the username."""

    __tablename__ = "user_emails"
    __table_args__ = (sa.UniqueConstraint("email_key", name="uq_user_emails_email_key"),)

    user_id: int = Field(
        sa_column=sa.Column(
            sa.BigInteger, sa.ForeignKey("users.id"), primary_key=True, autoincrement=False
        )
    )
    email: str = Field(sa_type=sa.String(254), nullable=False)
    # Lower-cased: one mailbox, one account.
    email_key: str = Field(sa_type=sa.String(254), nullable=False)


class BotUnpublishedRecord(RegistryTable, table=True):
    """A bot taken offline: its versions stay, but none is served until the next publish,
    which deletes this row."""

    __tablename__ = "bot_unpublished"

    bot_id: int = Field(
        sa_column=sa.Column(
            sa.BigInteger, sa.ForeignKey("bots.id"), primary_key=True, autoincrement=False
        )
    )
    unpublished_at: int = _time_column()
    reason: str = Field(sa_type=sa.String(1024), nullable=False)


class MessageFeedbackRecord(RegistryTable, table=True):
    """An end user's like or unlike of one message; at most one per message."""

    __tablename__ = "message_feedback"

    message_id: int = _id_column()
    conversation_id: int = Field(sa_type=sa.BigInteger, nullable=False)
    owner_id: int = Field(sa_type=sa.BigInteger, nullable=False)
    feedback_type: str = Field(sa_type=sa.String(16), nullable=False)
    reason_types: list[str] = Field(sa_column=sa.Column(sa.JSON, nullable=False))
    comment: str = Field(sa_type=sa.Text, nullable=False)
    created_at: int = _time_column()
    updated_at: int = _time_column()


class UserVariableRecord(RegistryTable, table=True):
    """One variable value of one end user (connector_uid) of one bot or app of an account."""

    __tablename__ = "user_variables"
    __table_args__ = (
        sa.UniqueConstraint(
            "owner_id",
            "bot_id",
            "app_id",
            "connector_uid",
            "keyword",
            name="uq_user_variables_scope_keyword",
        ),
    )

    id: int = _id_column()
    owner_id: int = Field(sa_type=sa.BigInteger, nullable=False)
    # Exactly one of bot_id and app_id is non-zero.
    bot_id: int = Field(sa_type=sa.BigInteger, nullable=False)
    app_id: int = Field(sa_type=sa.BigInteger, nullable=False)
    connector_uid: str = Field(sa_type=sa.String(255), nullable=False)
    keyword: str = Field(sa_type=sa.String(128), nullable=False)
    value: str = Field(sa_type=sa.Text, nullable=False)
    created_at: int = _time_column()
    updated_at: int = _time_column()


# ------------------------------------------------------------------- knowledge (0006)


class FileRecord(RegistryTable, table=True):
    """An uploaded file's metadata; the bytes live in the JetStream object store."""

    __tablename__ = "knowledge_files"
    __table_args__ = (
        sa.Index("ix_knowledge_files_owner_id", "owner_id"),
        sa.Index("ix_knowledge_files_document_id", "document_id"),
    )

    id: int = _id_column()
    owner_id: int = Field(sa_type=sa.BigInteger, nullable=False)
    file_name: str = Field(sa_type=sa.String(255), nullable=False)
    bytes: int = Field(sa_type=sa.BigInteger, nullable=False)
    content_type: str = Field(sa_type=sa.String(255), nullable=False)
    object_name: str = Field(sa_type=sa.String(255), nullable=False)
    created_at: int = _time_column()
    # The document this file holds the content of (a document/create's base64 content): it
    # goes with that document. Uploads (/v1/files/upload) have none.
    document_id: int | None = Field(default=None, sa_type=sa.BigInteger, nullable=True)


class DatasetRecord(RegistryTable, table=True):
    __tablename__ = "knowledge_datasets"
    __table_args__ = (sa.Index("ix_knowledge_datasets_owner_id_space_id", "owner_id", "space_id"),)

    id: int = _id_column()
    owner_id: int = Field(sa_type=sa.BigInteger, nullable=False)
    space_id: int = Field(sa_type=sa.BigInteger, nullable=False)
    name: str = Field(sa_type=sa.String(100), nullable=False)
    description: str = Field(sa_type=sa.String(2000), nullable=False)
    format_type: int = Field(sa_type=sa.Integer, nullable=False)
    icon_file_id: int = Field(sa_type=sa.BigInteger, nullable=False)
    created_at: int = _time_column()
    updated_at: int = _time_column()


class LeaseRecord(RegistryTable, table=True):
    """A named lease held by one registry replica at a time (the run sweeper's leadership).

    Expiry is in milliseconds of the holder's clock: replicas are assumed NTP-synced, and
    nothing unsafe follows from two holders anyway (every sweep is a conditional UPDATE).
    """

    __tablename__ = "registry_leases"

    name: str = Field(sa_column=sa.Column(sa.String(64), primary_key=True))
    holder: str = Field(sa_type=sa.String(255), nullable=False)
    expires_at_ms: int = _time_column()


class DocumentRecord(RegistryTable, table=True):
    __tablename__ = "knowledge_documents"
    __table_args__ = (
        sa.Index("ix_knowledge_documents_dataset_id_id", "dataset_id", "id"),
        sa.Index("ix_knowledge_documents_owner_id", "owner_id"),
    )

    id: int = _id_column()
    # No foreign keys: a dataset's delete removes its documents and chunks in one transaction.
    dataset_id: int = Field(sa_type=sa.BigInteger, nullable=False)
    owner_id: int = Field(sa_type=sa.BigInteger, nullable=False)
    name: str = Field(sa_type=sa.String(255), nullable=False)
    source_type: int = Field(sa_type=sa.Integer, nullable=False)
    file_type: str = Field(sa_type=sa.String(16), nullable=False)
    source_file_id: int = Field(sa_type=sa.BigInteger, nullable=False)
    web_url: str = Field(sa_type=sa.String(2048), nullable=False)
    format_type: int = Field(sa_type=sa.Integer, nullable=False)
    # `ChunkStrategy` as JSON.
    chunk_strategy: dict[str, Any] = Field(sa_column=sa.Column(sa.JSON, nullable=False))
    size: int = Field(default=0, sa_type=sa.BigInteger, nullable=False)
    char_count: int = Field(default=0, sa_type=sa.BigInteger, nullable=False)
    slice_count: int = Field(default=0, sa_type=sa.Integer, nullable=False)
    # 0 processing, 1 completed, 9 failed (the SDKs' DocumentStatus).
    status: int = Field(sa_type=sa.Integer, nullable=False)
    progress: int = Field(default=0, sa_type=sa.Integer, nullable=False)
    status_descript: str = Field(default="", sa_type=sa.Text, nullable=False)
    attempts: int = Field(default=0, sa_type=sa.Integer, nullable=False)
    update_type: int = Field(default=0, sa_type=sa.Integer, nullable=False)
    update_interval: int = Field(default=0, sa_type=sa.Integer, nullable=False)
    embedding_model: str = Field(default="", sa_type=sa.String(128), nullable=False)
    created_at: int = _time_column()
    updated_at: int = _time_column()


class ChunkRecord(RegistryTable, table=True):
    """A retrievable piece of a document. `search_text` is `content` segmented for the
    full-text index (services/registry/knowledge_text.py); the index itself is created by
    migration 0006 per backend (FTS5 on SQLite, a GIN tsvector index on PostgreSQL)."""

    __tablename__ = "knowledge_chunks"
    __table_args__ = (
        sa.Index("ix_knowledge_chunks_document_id", "document_id"),
        sa.Index("ix_knowledge_chunks_dataset_id", "dataset_id"),
    )

    id: int = _id_column()
    document_id: int = Field(sa_type=sa.BigInteger, nullable=False)
    dataset_id: int = Field(sa_type=sa.BigInteger, nullable=False)
    owner_id: int = Field(sa_type=sa.BigInteger, nullable=False)
    seq: int = Field(sa_type=sa.Integer, nullable=False)
    content: str = Field(sa_type=sa.Text, nullable=False)
    search_text: str = Field(sa_type=sa.Text, nullable=False)
    # float32 little-endian vector, empty without an embedding model.
    embedding: bytes = Field(sa_type=sa.LargeBinary, nullable=False)


# The full-text index is made by migration 0006 by hand, per backend: SQLite's FTS5 table
# (and the shadow tables FTS5 keeps), PostgreSQL's GIN expression index. They are indexes,
# not models, so schema comparisons leave them out.
CHUNK_FTS_TABLE = "knowledge_chunks_fts"
CHUNK_TSV_INDEX = "ix_knowledge_chunks_search_tsv"
# pgvector copies of the embeddings, made at start-up only where the `vector` extension
# exists (services/registry/knowledge_vectors.py), so not part of the migrated schema.
CHUNK_VECTOR_TABLE = "knowledge_chunk_vectors"


def is_model_object(name: str | None, type_: str, _parent_names: object) -> bool:
    if name is None:
        return True
    if type_ == "table":
        return not name.startswith((CHUNK_FTS_TABLE, CHUNK_VECTOR_TABLE))
    return not (type_ == "index" and name == CHUNK_TSV_INDEX)


class PluginRecord(RegistryTable, table=True):
    """A set of tools owned by an account (wire contract section 7)."""

    __tablename__ = "plugins"
    __table_args__ = (sa.Index("ix_plugins_owner_id_id", "owner_id", "id"),)

    id: int = _id_column()
    owner_id: int = Field(sa_type=sa.BigInteger, nullable=False)
    name: str = Field(sa_type=sa.String(100), nullable=False)
    description: str = Field(sa_type=sa.String(2000), nullable=False)
    # cozeplus.vocabulary.PluginType
    type: str = Field(sa_type=sa.String(16), nullable=False)
    # openapi: the server operations are called on; mcp: the server's URL.
    url: str = Field(sa_type=sa.String(2048), nullable=False)
    # openapi: the source document, kept so an update without one can re-import it.
    document: str = Field(sa_type=sa.Text, nullable=False)
    auth_type: str = Field(sa_type=sa.String(16), nullable=False)
    auth_location: str = Field(sa_type=sa.String(16), nullable=False)
    auth_name: str = Field(sa_type=sa.String(255), nullable=False)
    # Fernet token of the JSON {"auth_value": ..., "mcp_headers": {...}}; "" when none.
    sealed_secrets: str = Field(sa_type=sa.Text, nullable=False)
    created_at: int = _time_column()
    updated_at: int = _time_column()
    deleted_at: int = _time_column(default=0)


class PluginToolRecord(RegistryTable, table=True):
    """One tool of a plugin; its id is the api_id, kept while the tool keeps its name."""

    __tablename__ = "plugin_tools"
    __table_args__ = (
        sa.UniqueConstraint("plugin_id", "name", name="uq_plugin_tools_plugin_id_name"),
    )

    id: int = _id_column()
    plugin_id: int = Field(sa_type=sa.BigInteger, foreign_key="plugins.id", nullable=False)
    name: str = Field(sa_type=sa.String(128), nullable=False)
    description: str = Field(sa_type=sa.Text, nullable=False)
    # JSON Schema of the arguments.
    parameters: dict[str, Any] = Field(sa_column=sa.Column(sa.JSON, nullable=False))
    # openapi: {method, path, parameters:[{name, location, required}], has_json_body}.
    operation: dict[str, Any] = Field(sa_column=sa.Column(sa.JSON, nullable=False))
    # Order within the plugin (document order).
    position: int = Field(sa_type=sa.Integer, nullable=False)
