"""SLA clocks: cases.plan, cases.next_alert_at (indexed, for the reminder scan) and the pauses table.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03 13:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("plan", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("next_alert_at", sa.DateTime(), nullable=True))
        batch.create_index("ix_cases_next_alert_at", ["next_alert_at"], unique=False)
    op.create_table(
        "pauses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("ended_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_pauses_case_id", "pauses", ["case_id"], unique=False)
    # Open cases opened before this revision get their first scan at once; it computes their next alert.
    op.execute("UPDATE cases SET next_alert_at = created_at WHERE status IN ('new', 'open')")


def downgrade() -> None:
    op.drop_index("ix_pauses_case_id", table_name="pauses")
    op.drop_table("pauses")
    with op.batch_alter_table("cases") as batch:
        batch.drop_index("ix_cases_next_alert_at")
        batch.drop_column("next_alert_at")
        batch.drop_column("plan")
