"""knowledge_files.document_id: a base64 document's file belongs to its document and is
deleted with it (freeing the account's file quota).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("knowledge_files", sa.Column("document_id", sa.BigInteger(), nullable=True))
    op.create_index("ix_knowledge_files_document_id", "knowledge_files", ["document_id"])
    # Files the edge stored for base64 documents before: a local-file document's source file
    # was made for it (a file named by id makes a source_type 5 document). UPDATE … FROM:
    # PostgreSQL, and SQLite since 3.33.
    op.execute(
        "UPDATE knowledge_files SET document_id = d.id FROM knowledge_documents AS d "
        "WHERE d.source_file_id = knowledge_files.id AND d.source_type = 0 "
        "AND d.owner_id = knowledge_files.owner_id"
    )


def downgrade() -> None:
    op.drop_index("ix_knowledge_files_document_id", table_name="knowledge_files")
    with op.batch_alter_table("knowledge_files") as batch:
        batch.drop_column("document_id")
