"""Tables that make the respect rules hold under concurrency.

`cap_ledger` records, per recipient ("subject": the user, or the device when
it has no user), each notification actually sent to them, so rolling-window
caps are counted on what went out. `cap_locks` holds one row per subject that
a sender locks (`FOR UPDATE` on PostgreSQL; SQLite serializes writers) while
it checks and reserves a slot, so two workers cannot both take the last one.
"""

from __future__ import annotations

import sqlalchemy as sa

from clarion.store.schema import metadata
from clarion.store.types import BigId, UtcDateTime

cap_ledger = sa.Table(
    "cap_ledger",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("app_id", sa.String(40), nullable=False),
    sa.Column("subject", sa.String(300), nullable=False),
    sa.Column("notification_id", sa.String(40), nullable=False),
    sa.Column("category", sa.String(64), nullable=True),
    sa.Column("sent_at", UtcDateTime, nullable=False),
    sa.UniqueConstraint("app_id", "subject", "notification_id"),
    sa.Index(None, "app_id", "subject", "sent_at"),
)

cap_locks = sa.Table(
    "cap_locks",
    metadata,
    sa.Column("app_id", sa.String(40), primary_key=True),
    sa.Column("subject", sa.String(300), primary_key=True),
)
