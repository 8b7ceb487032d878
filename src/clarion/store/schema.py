"""The tables, as SQLAlchemy Core metadata; Alembic migrations build the same schema."""

from __future__ import annotations

import sqlalchemy as sa

from clarion.store.types import BigId, JsonType, UtcDateTime

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

apps = sa.Table(
    "apps",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("default_timezone", sa.String(64), nullable=False, server_default="UTC"),
    sa.Column("quiet_hours", JsonType, nullable=True),
    sa.Column("caps", JsonType, nullable=False),
    sa.Column("categories", JsonType, nullable=False),
    sa.Column("subject_salt", sa.LargeBinary(32), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("app_id", sa.String(40), sa.ForeignKey("apps.id"), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("hint", sa.String(32), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("revoked_at", UtcDateTime, nullable=True),
    sa.Index(None, "app_id"),
)

devices = sa.Table(
    "devices",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("app_id", sa.String(40), sa.ForeignKey("apps.id"), nullable=False),
    sa.Column("platform", sa.String(16), nullable=False),
    sa.Column("token", sa.Text, nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False),
    sa.Column("push_keys", JsonType, nullable=True),
    sa.Column("user_id", sa.String(256), nullable=True),
    sa.Column("locale", sa.String(35), nullable=True),
    sa.Column("timezone", sa.String(64), nullable=True),
    sa.Column("app_version", sa.String(64), nullable=True),
    sa.Column("app_version_key", sa.String(512), nullable=True),
    sa.Column("tags", JsonType, nullable=False),
    sa.Column("consent", sa.String(16), nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("deactivated_reason", sa.String(200), nullable=True),
    sa.Column("deactivated_at", UtcDateTime, nullable=True),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.Column("last_seen", UtcDateTime, nullable=False),
    sa.UniqueConstraint("app_id", "platform", "token_hash"),
    sa.Index(None, "app_id", "user_id"),
    sa.Index(None, "app_id", "id"),
    sa.Index(None, "app_id", "platform"),
    sa.Index(None, "app_id", "last_seen"),
)

consent_events = sa.Table(
    "consent_events",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("app_id", sa.String(40), sa.ForeignKey("apps.id"), nullable=False),
    sa.Column("device_id", sa.String(40), nullable=False),
    sa.Column("subject_hash", sa.String(64), nullable=True),
    sa.Column("platform", sa.String(16), nullable=False),
    sa.Column("old_status", sa.String(16), nullable=True),
    sa.Column("new_status", sa.String(16), nullable=False),
    sa.Column("source", sa.String(64), nullable=False),
    sa.Column("text_version", sa.String(64), nullable=True),
    sa.Column("client_time", UtcDateTime, nullable=True),
    sa.Column("server_time", UtcDateTime, nullable=False),
    sa.Column("ip", sa.String(64), nullable=True),
    sa.Column("user_agent", sa.String(512), nullable=True),
    sa.Index(None, "app_id", "device_id", "id"),
    sa.Index(None, "app_id", "id"),
)

users = sa.Table(
    "users",
    metadata,
    sa.Column("app_id", sa.String(40), sa.ForeignKey("apps.id"), primary_key=True),
    sa.Column("user_id", sa.String(256), primary_key=True),
    sa.Column("timezone", sa.String(64), nullable=True),
    sa.Column("quiet_hours", JsonType, nullable=True),
    sa.Column("caps", JsonType, nullable=True),
    sa.Column("categories", JsonType, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)

device_topics = sa.Table(
    "device_topics",
    metadata,
    sa.Column("app_id", sa.String(40), sa.ForeignKey("apps.id"), nullable=False),
    sa.Column(
        "device_id",
        sa.String(40),
        sa.ForeignKey("devices.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("topic", sa.String(128), primary_key=True),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Index(None, "app_id", "topic", "device_id"),
)

provider_credentials = sa.Table(
    "provider_credentials",
    metadata,
    sa.Column("app_id", sa.String(40), sa.ForeignKey("apps.id"), primary_key=True),
    sa.Column("provider", sa.String(16), primary_key=True),
    sa.Column("id", sa.String(40), nullable=False, unique=True),
    sa.Column("sealed", sa.LargeBinary, nullable=False),
    sa.Column("key_id", sa.String(16), nullable=False),
    sa.Column("public", JsonType, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("last_error", sa.String(500), nullable=True),
    sa.Column("last_error_at", UtcDateTime, nullable=True),
    sa.Column("expires_at", UtcDateTime, nullable=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)

segments = sa.Table(
    "segments",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("app_id", sa.String(40), sa.ForeignKey("apps.id"), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("filter", sa.Text, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.UniqueConstraint("app_id", "name"),
)
