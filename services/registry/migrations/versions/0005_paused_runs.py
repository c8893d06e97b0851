"""Paused chat runs (client-side tools, requires_action): chat_runs.pending_tool_calls,
paused_until and custom_variables.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Server defaults fill the rows that exist; new rows get theirs from the model.
    op.add_column(
        "chat_runs",
        sa.Column("pending_tool_calls", sa.JSON(), nullable=False, server_default="[]"),
    )
    op.add_column(
        "chat_runs", sa.Column("paused_until", sa.BigInteger(), nullable=False, server_default="0")
    )
    op.add_column(
        "chat_runs",
        sa.Column("custom_variables", sa.JSON(), nullable=False, server_default="{}"),
    )
    # The expiry check looks for paused runs past their deadline.
    op.create_index("ix_chat_runs_status_paused_until", "chat_runs", ["status", "paused_until"])


def downgrade() -> None:
    op.drop_index("ix_chat_runs_status_paused_until", table_name="chat_runs")
    # Batch mode: SQLite rebuilds the table rather than relying on DROP COLUMN.
    with op.batch_alter_table("chat_runs") as batch:
        batch.drop_column("custom_variables")
        batch.drop_column("paused_until")
        batch.drop_column("pending_tool_calls")
