"""The webhooks table: where an app wants to hear about events, and the sealed signing secret."""

from __future__ import annotations

import sqlalchemy as sa

from clarion.store.schema import metadata
from clarion.store.types import JsonType, UtcDateTime

webhooks = sa.Table(
    "webhooks",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("app_id", sa.String(40), sa.ForeignKey("apps.id"), nullable=False),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("events", JsonType, nullable=False),
    sa.Column("sealed_secret", sa.LargeBinary, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Index(None, "app_id"),
)
