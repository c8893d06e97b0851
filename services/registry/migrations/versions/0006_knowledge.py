"""Knowledge: files, datasets, documents, chunks and their full-text index.

The full-text index is per backend. SQLite: an FTS5 table over the chunks' pre-segmented
`search_text` (rowid = chunk id), kept in step by the registry's own writes. PostgreSQL:
a GIN index on `to_tsvector('simple', search_text)`.

Revision ID: 0006
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FTS_TABLE = "knowledge_chunks_fts"
PG_INDEX = "ix_knowledge_chunks_search_tsv"


def upgrade() -> None:
    op.create_table(
        "knowledge_files",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("owner_id", sa.BigInteger(), nullable=False),
        sa.Column("file_name", sa.String(length=255), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("content_type", sa.String(length=255), nullable=False),
        sa.Column("object_name", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_knowledge_files_owner_id", "knowledge_files", ["owner_id"])
    op.create_table(
        "knowledge_datasets",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("owner_id", sa.BigInteger(), nullable=False),
        sa.Column("space_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("description", sa.String(length=2000), nullable=False),
        sa.Column("format_type", sa.Integer(), nullable=False),
        sa.Column("icon_file_id", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_knowledge_datasets_owner_id_space_id", "knowledge_datasets", ["owner_id", "space_id"]
    )
    op.create_table(
        "knowledge_documents",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("dataset_id", sa.BigInteger(), nullable=False),
        sa.Column("owner_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("source_type", sa.Integer(), nullable=False),
        sa.Column("file_type", sa.String(length=16), nullable=False),
        sa.Column("source_file_id", sa.BigInteger(), nullable=False),
        sa.Column("web_url", sa.String(length=2048), nullable=False),
        sa.Column("format_type", sa.Integer(), nullable=False),
        sa.Column("chunk_strategy", sa.JSON(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("char_count", sa.BigInteger(), nullable=False),
        sa.Column("slice_count", sa.Integer(), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("progress", sa.Integer(), nullable=False),
        sa.Column("status_descript", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("update_type", sa.Integer(), nullable=False),
        sa.Column("update_interval", sa.Integer(), nullable=False),
        sa.Column("embedding_model", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_knowledge_documents_dataset_id_id", "knowledge_documents", ["dataset_id", "id"]
    )
    op.create_index("ix_knowledge_documents_owner_id", "knowledge_documents", ["owner_id"])
    op.create_table(
        "knowledge_chunks",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("document_id", sa.BigInteger(), nullable=False),
        sa.Column("dataset_id", sa.BigInteger(), nullable=False),
        sa.Column("owner_id", sa.BigInteger(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("search_text", sa.Text(), nullable=False),
        sa.Column("embedding", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_knowledge_chunks_document_id", "knowledge_chunks", ["document_id"])
    op.create_index("ix_knowledge_chunks_dataset_id", "knowledge_chunks", ["dataset_id"])
    if op.get_context().dialect.name == "sqlite":
        # unicode61 splits on the spaces the registry puts between CJK bigrams; no stemming,
        # so both backends match the same terms.
        op.execute(
            f"CREATE VIRTUAL TABLE {FTS_TABLE} USING fts5("
            "search_text, tokenize = 'unicode61 remove_diacritics 2')"
        )
    else:
        op.execute(
            f"CREATE INDEX {PG_INDEX} ON knowledge_chunks "
            "USING gin (to_tsvector('simple'::regconfig, search_text))"
        )


def downgrade() -> None:
    if op.get_context().dialect.name == "sqlite":
        op.execute(f"DROP TABLE IF EXISTS {FTS_TABLE}")
    else:
        op.execute(f"DROP INDEX IF EXISTS {PG_INDEX}")
        # pgvector's copies, made at start-up where the extension exists (knowledge_vectors.py);
        # they reference knowledge_chunks.
        op.execute("DROP TABLE IF EXISTS knowledge_chunk_vectors")
    op.drop_index("ix_knowledge_chunks_dataset_id", table_name="knowledge_chunks")
    op.drop_index("ix_knowledge_chunks_document_id", table_name="knowledge_chunks")
    op.drop_table("knowledge_chunks")
    op.drop_index("ix_knowledge_documents_owner_id", table_name="knowledge_documents")
    op.drop_index("ix_knowledge_documents_dataset_id_id", table_name="knowledge_documents")
    op.drop_table("knowledge_documents")
    op.drop_index("ix_knowledge_datasets_owner_id_space_id", table_name="knowledge_datasets")
    op.drop_table("knowledge_datasets")
    op.drop_index("ix_knowledge_files_owner_id", table_name="knowledge_files")
    op.drop_table("knowledge_files")
