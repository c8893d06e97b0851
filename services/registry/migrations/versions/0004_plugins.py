"""Plugins and their tools.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "plugins",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("owner_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("description", sa.String(2000), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("auth_type", sa.String(16), nullable=False),
        sa.Column("auth_location", sa.String(16), nullable=False),
        sa.Column("auth_name", sa.String(255), nullable=False),
        sa.Column("sealed_secrets", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.Column("deleted_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_plugins_owner_id_id", "plugins", ["owner_id", "id"])
    op.create_table(
        "plugin_tools",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("plugin_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("operation", sa.JSON(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["plugin_id"], ["plugins.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("plugin_id", "name", name="uq_plugin_tools_plugin_id_name"),
    )


def downgrade() -> None:
    op.drop_table("plugin_tools")
    op.drop_index("ix_plugins_owner_id_id", table_name="plugins")
    op.drop_table("plugins")
