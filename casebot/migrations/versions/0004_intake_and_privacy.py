"""Intake and privacy: messages.arrived_at (with a sender index for the acknowledgement rate limit),
messages/attachments.purged_at (retention and erasure), the outbox's bounce columns and the admin_log table.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 14:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("arrived_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("purged_at", sa.DateTime(), nullable=True))
        batch.create_index("ix_messages_sender_arrived", ["sender", "arrived_at"], unique=False)
    with op.batch_alter_table("attachments") as batch:
        batch.add_column(sa.Column("purged_at", sa.DateTime(), nullable=True))
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("bounced_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("bounce_recipient", sa.String(length=320), nullable=True))
        batch.add_column(sa.Column("bounce_diagnostic", sa.Text(), nullable=True))
        batch.add_column(sa.Column("bounce_message_pk", sa.Integer(), nullable=True))
        batch.create_foreign_key("fk_outbox_bounce_message_pk", "messages", ["bounce_message_pk"], ["id"])
    op.create_table(
        "admin_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("actor", sa.String(length=120), nullable=False),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("subject", sa.String(length=320), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_admin_log_at", "admin_log", ["at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_admin_log_at", table_name="admin_log")
    op.drop_table("admin_log")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_constraint("fk_outbox_bounce_message_pk", type_="foreignkey")
        for name in ("bounce_message_pk", "bounce_diagnostic", "bounce_recipient", "bounced_at"):
            batch.drop_column(name)
    with op.batch_alter_table("attachments") as batch:
        batch.drop_column("purged_at")
    with op.batch_alter_table("messages") as batch:
        batch.drop_index("ix_messages_sender_arrived")
        batch.drop_column("purged_at")
        batch.drop_column("arrived_at")
