"""messages.raw_sha256: the SHA-256 of a message's bytes, for the re-delivery fast path.

A mailbox delivered again (processed flags lost, a folder restored) brings the same bytes: their hash finds the
stored message with one indexed look-up per batch, before any parsing. Rows stored earlier keep NULL and are
found by their dedupe key, as before.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 19:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("raw_sha256", sa.String(64), nullable=True))
        batch.create_index("ix_messages_raw_sha256", ["raw_sha256"])


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_index("ix_messages_raw_sha256")
        batch.drop_column("raw_sha256")
