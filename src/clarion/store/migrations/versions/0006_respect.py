"""respect: frequency-cap ledger and locks, planner state

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from clarion.store.types import BigId, JsonType, UtcDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cap_ledger",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("app_id", sa.String(length=40), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("notification_id", sa.String(length=40), nullable=False),
        sa.Column("category", sa.String(length=64), nullable=True),
        sa.Column("sent_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cap_ledger")),
        sa.UniqueConstraint(
            "app_id",
            "subject",
            "notification_id",
            name=op.f("uq_cap_ledger_app_id_subject_notification_id"),
        ),
    )
    op.create_index(
        op.f("ix_cap_ledger_app_id_subject_sent_at"),
        "cap_ledger",
        ["app_id", "subject", "sent_at"],
        unique=False,
    )
    op.create_table(
        "cap_locks",
        sa.Column("app_id", sa.String(length=40), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.PrimaryKeyConstraint("app_id", "subject", name=op.f("pk_cap_locks")),
    )
    op.add_column("notifications", sa.Column("plan_state", JsonType, nullable=True))


def downgrade() -> None:
    op.drop_column("notifications", "plan_state")
    op.drop_table("cap_locks")
    op.drop_index(op.f("ix_cap_ledger_app_id_subject_sent_at"), table_name="cap_ledger")
    op.drop_table("cap_ledger")
