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
