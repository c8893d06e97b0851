"""What a paused chat needs back when it resumes: chat_runs.unsaved_input (the input of a
chat that does not save it) and chat_runs.paused_answer (the answer text streamed so far).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "chat_runs", sa.Column("unsaved_input", sa.Text(), nullable=False, server_default="")
    )
    op.add_column(
        "chat_runs", sa.Column("paused_answer", sa.Text(), nullable=False, server_default="")
    )


def downgrade() -> None:
    # Batch mode: SQLite rebuilds the table rather than relying on DROP COLUMN.
    with op.batch_alter_table("chat_runs") as batch:
        batch.drop_column("paused_answer")
        batch.drop_column("unsaved_input")
