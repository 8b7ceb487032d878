"""Tables of the send pipeline: notifications, deliveries, the job queue, idempotency."""

from __future__ import annotations

import sqlalchemy as sa

from clarion.store.schema import metadata
from clarion.store.types import BigId, JsonType, UtcDateTime

notifications = sa.Table(
    "notifications",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("app_id", sa.String(40), sa.ForeignKey("apps.id"), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("spec", JsonType, nullable=False),
    sa.Column("send_at", UtcDateTime, nullable=False),
    sa.Column("expires_at", UtcDateTime, nullable=False),
    sa.Column("planned_through", sa.String(40), nullable=True),
    sa.Column("plan_state", JsonType, nullable=True),
    sa.Column("targeted", sa.Integer, nullable=False, server_default="0"),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("completed_at", UtcDateTime, nullable=True),
    sa.Index(None, "app_id", "id"),
)

deliveries = sa.Table(
    "deliveries",
    metadata,
    sa.Column("notification_id", sa.String(40), primary_key=True),
    sa.Column("device_id", sa.String(40), primary_key=True),
    sa.Column("app_id", sa.String(40), nullable=False),
    sa.Column("platform", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("reason", sa.String(200), nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("provider_message_id", sa.String(200), nullable=True),
    sa.Column("due_at", UtcDateTime, nullable=True),
    sa.Column("sent_at", UtcDateTime, nullable=True),
    sa.Column("received_at", UtcDateTime, nullable=True),
    sa.Column("opened_at", UtcDateTime, nullable=True),
    sa.Column("dismissed_at", UtcDateTime, nullable=True),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.Index(None, "notification_id", "status"),
)

jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("app_id", sa.String(40), nullable=False),
    sa.Column("payload", JsonType, nullable=False),
    sa.Column("due_at", UtcDateTime, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("lease_owner", sa.String(64), nullable=True),
    sa.Column("lease_expires_at", UtcDateTime, nullable=True),
    sa.Column("last_error", sa.String(500), nullable=True),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Index(None, "due_at"),
)

idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    sa.Column("app_id", sa.String(40), primary_key=True),
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("request_hash", sa.String(64), nullable=False),
    sa.Column("notification_id", sa.String(40), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
)
