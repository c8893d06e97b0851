"""SDK surface: registration emails, unpublished bots, message feedback, user variables.

Revision ID: 0007
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "user_emails",
        sa.Column("user_id", sa.BigInteger(), sa.ForeignKey("users.id"), primary_key=True),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("email_key", sa.String(254), nullable=False),
        sa.UniqueConstraint("email_key", name="uq_user_emails_email_key"),
    )
    op.create_table(
        "bot_unpublished",
        sa.Column("bot_id", sa.BigInteger(), sa.ForeignKey("bots.id"), primary_key=True),
        sa.Column("unpublished_at", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(1024), nullable=False),
    )
    op.create_table(
        "message_feedback",
        sa.Column("message_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("conversation_id", sa.BigInteger(), nullable=False),
        sa.Column("owner_id", sa.BigInteger(), nullable=False),
        sa.Column("feedback_type", sa.String(16), nullable=False),
        sa.Column("reason_types", sa.JSON(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "user_variables",
        sa.Column("id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("owner_id", sa.BigInteger(), nullable=False),
        sa.Column("bot_id", sa.BigInteger(), nullable=False),
        sa.Column("app_id", sa.BigInteger(), nullable=False),
        sa.Column("connector_uid", sa.String(255), nullable=False),
        sa.Column("keyword", sa.String(128), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.UniqueConstraint(
            "owner_id",
            "bot_id",
            "app_id",
            "connector_uid",
            "keyword",
            name="uq_user_variables_scope_keyword",
        ),
    )


def downgrade() -> None:
    for table in ("user_variables", "message_feedback", "bot_unpublished", "user_emails"):
        op.drop_table(table)
