"""Run liveness: chat_runs.progress_at (+ index by status) and the registry_leases table.

Revision ID: 0008
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "chat_runs", sa.Column("progress_at", sa.BigInteger(), nullable=False, server_default="0")
    )
    # Existing runs: their last known progress is when they were created or started.
    op.execute(
        "UPDATE chat_runs SET progress_at = "
        "CASE WHEN started_at > created_at THEN started_at ELSE created_at END"
    )
    op.create_index("ix_chat_runs_status_progress_at", "chat_runs", ["status", "progress_at"])
    op.create_table(
        "registry_leases",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("holder", sa.String(255), nullable=False),
        sa.Column("expires_at_ms", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("registry_leases")
    op.drop_index("ix_chat_runs_status_progress_at", table_name="chat_runs")
    with op.batch_alter_table("chat_runs") as batch:
        batch.drop_column("progress_at")
