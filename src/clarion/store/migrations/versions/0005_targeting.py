"""targeting: saved segments, a sortable app version key, indexes for filter counts

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from clarion.model.version import version_key
from clarion.store.types import UtcDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "segments",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("app_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("filter", sa.Text(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["app_id"], ["apps.id"], name=op.f("fk_segments_app_id_apps")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_segments")),
        sa.UniqueConstraint("app_id", "name", name=op.f("uq_segments_app_id_name")),
    )
    op.add_column("devices", sa.Column("app_version_key", sa.String(length=512), nullable=True))
    op.create_index(
        op.f("ix_devices_app_id_platform"), "devices", ["app_id", "platform"], unique=False
    )
    op.create_index(
        op.f("ix_devices_app_id_last_seen"), "devices", ["app_id", "last_seen"], unique=False
    )
    _backfill_version_keys()


def _backfill_version_keys() -> None:
    """Existing devices get the key their version would get on registration."""
    devices = sa.table(
        "devices",
        sa.column("id", sa.String),
        sa.column("app_version", sa.String),
        sa.column("app_version_key", sa.String),
    )
    bind = op.get_bind()
    versions = bind.execute(
        sa.select(devices.c.app_version).where(devices.c.app_version.is_not(None)).distinct()
    ).scalars()
    for version in list(versions):
        bind.execute(
            devices.update()
            .where(devices.c.app_version == version)
            .values(app_version_key=version_key(version))
        )


def downgrade() -> None:
    op.drop_index(op.f("ix_devices_app_id_last_seen"), table_name="devices")
    op.drop_index(op.f("ix_devices_app_id_platform"), table_name="devices")
    with op.batch_alter_table("devices") as batch:
        batch.drop_column("app_version_key")
    op.drop_table("segments")
