"""Deleted accounts: users.deleted_at.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The server default fills the rows that exist; new rows get 0 from the model.
    op.add_column(
        "users", sa.Column("deleted_at", sa.BigInteger(), nullable=False, server_default="0")
    )


def downgrade() -> None:
    # Batch mode: SQLite rebuilds the table rather than relying on DROP COLUMN.
    with op.batch_alter_table("users") as batch:
        batch.drop_column("deleted_at")
