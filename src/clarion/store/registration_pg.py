"""A registration batch on PostgreSQL: one or two statements of fixed text.

Every statement is a round trip to PostgreSQL, and a statement whose text
changes with the batch size (SQLAlchemy's multi-row `VALUES`, an `IN` list)
is parsed and planned again by PostgreSQL and prepared again by asyncpg: a
fifth of a batch's time went there. Here rows travel as JSON documents
(encoded by the C JSON encoder, expanded by `json_to_recordset`) into two
statements whose text never changes, so asyncpg prepares each once per
connection:

- `CLAIM` inserts the new devices and locks and returns the stored ones;
  when every device was new it also appends their ledger events, and the
  batch is that one statement (the common case: new installs);
- otherwise `CHANGES` updates the stored devices, drops the topics of those
  that changed user and appends all the batch's events, in batch order.

They store what `devices.insert()`, `devices.update()` and
`consent_events.insert()` stored: timestamps converted to UTC (a naive one
is refused, as `UtcDateTime` refuses it), a missing `push_keys` as JSON
`null` (SQLAlchemy's JSON type writes Python None so), the ledger's ids in
batch order (`ORDER BY` the position).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from clarion.store.schema import devices

_DEVICE_COLUMNS = (
    "id text, app_id text, platform text, token text, token_hash text, push_keys jsonb,"
    " user_id text, locale text, timezone text, app_version text, app_version_key text,"
    " tags jsonb, consent text, active boolean, deactivated_reason text,"
    " deactivated_at timestamptz, created_at timestamptz, updated_at timestamptz,"
    " last_seen timestamptz"
)
_UPDATE_COLUMNS = (
    "b_app_id text, b_id text, user_id text, locale text, timezone text, app_version text,"
    " app_version_key text, push_keys jsonb, tags jsonb, consent text, active boolean,"
    " deactivated_reason text, deactivated_at timestamptz, last_seen timestamptz,"
    " updated_at timestamptz"
)
_EVENT_COLUMNS = (
    "seq integer, app_id text, device_id text, platform text, subject_hash text,"
    " old_status text, new_status text, source text, text_version text,"
    " client_time timestamptz, server_time timestamptz, ip text, user_agent text"
)

_INSERT_EVENTS = f"""
    INSERT INTO consent_events (app_id, device_id, platform, subject_hash, old_status,
        new_status, source, text_version, client_time, server_time, ip, user_agent)
    SELECT e.app_id, e.device_id, e.platform, e.subject_hash, e.old_status, e.new_status,
        e.source, e.text_version, e.client_time, e.server_time, e.ip, e.user_agent
    FROM json_to_recordset(CAST({{events}} AS json)) AS e({_EVENT_COLUMNS})"""  # noqa: S608


CLAIM = sa.text(
    f"""
WITH r AS (
    SELECT * FROM json_to_recordset(CAST(:rows AS json)) AS r({_DEVICE_COLUMNS})
), stored AS (
    INSERT INTO devices ({", ".join(column.name for column in devices.c)})
    SELECT r.id, r.app_id, r.platform, r.token, r.token_hash, coalesce(r.push_keys, 'null'),
        r.user_id, r.locale, r.timezone, r.app_version, r.app_version_key, r.tags, r.consent,
        r.active, r.deactivated_reason, r.deactivated_at, r.created_at, r.updated_at,
        r.last_seen
    FROM r
    ON CONFLICT (app_id, platform, token_hash) DO UPDATE SET token = devices.token
    RETURNING {", ".join(f"devices.{column.name}" for column in devices.c)}
), ev AS (
    {_INSERT_EVENTS.format(events=":events")}
    WHERE (SELECT count(*) FROM stored JOIN r USING (id)) = (SELECT count(*) FROM r)
    ORDER BY e.seq
    RETURNING id
)
SELECT * FROM stored
"""  # noqa: S608 - fixed text; every value is a parameter
).columns(*devices.c)
"""Insert the devices not stored yet; every device of the batch comes back as stored.

`ON CONFLICT ... DO UPDATE` with an update that changes nothing locks and returns
a stored device (as `SELECT ... FOR UPDATE` would), found through the unique index
that arbitrates the conflict: there is no plan to choose, so nothing stale
statistics can spoil. Given `token_hash = ANY(...)`, or a join, PostgreSQL with a
fresh table's statistics took the (app, platform) index and filtered every device
of the platform, per batch. A concurrent registration of the same token is waited
for, not lost. A device is new when the id returned is the one proposed.

`:events` (the ledger events of the batch if every device is new) are appended
only if every device was new: their order is the batch's then too."""

CHANGES = f"""
WITH upd AS (
    UPDATE devices AS d SET user_id = u.user_id, locale = u.locale, timezone = u.timezone,
        app_version = u.app_version, app_version_key = u.app_version_key,
        push_keys = coalesce(u.push_keys, 'null'), tags = u.tags, consent = u.consent,
        active = u.active, deactivated_reason = u.deactivated_reason,
        deactivated_at = u.deactivated_at, last_seen = u.last_seen, updated_at = u.updated_at
    FROM json_to_recordset($1::json) AS u({_UPDATE_COLUMNS})
    WHERE d.app_id = u.b_app_id AND d.id = u.b_id
    RETURNING d.id
), moved AS (
    DELETE FROM device_topics AS t
    USING json_to_recordset($2::json) AS m(app_id text, device_id text)
    WHERE t.app_id = m.app_id AND t.device_id = m.device_id
    RETURNING t.device_id
), ev AS (
    {_INSERT_EVENTS.format(events="$3")}
    ORDER BY e.seq
    RETURNING id
)
SELECT (SELECT count(*) FROM upd), (SELECT count(*) FROM moved), (SELECT count(*) FROM ev)
"""  # noqa: S608 - fixed text; every value is a parameter
"""A batch's changes to stored devices and its ledger events, one statement. The
devices are locked already (`CLAIM`); the updates probe the primary key."""


def claim(
    conn: sa.Connection,
    rows: Sequence[Mapping[str, Any]],
    events_if_all_new: Sequence[Mapping[str, Any]],
) -> dict[tuple[str, str, str], Any]:
    """Run `CLAIM` on these `devices` rows; the stored row per (app, platform, hash)."""
    params = {"rows": _json(_stamped(row) for row in rows), "events": _events(events_if_all_new)}
    stored = conn.execute(CLAIM, params)
    return {(row.app_id, row.platform, row.token_hash): row for row in stored}


def write_changes(
    conn: sa.Connection,
    updates: Sequence[Mapping[str, Any]],
    moved: Mapping[str, Sequence[str]],
    events: Sequence[Mapping[str, Any]],
) -> None:
    """Write `CHANGES`; nothing when there is nothing to write.

    `updates` are the updated columns with `b_app_id` and `b_id`, `moved` the
    device ids per app whose topics go, `events` `consent_events` rows in
    batch order.
    """
    if not (updates or moved or events):
        return
    dropped = [{"app_id": app_id, "device_id": id_} for app_id, ids in moved.items() for id_ in ids]
    params = (
        _json(_stamped(row) for row in updates),
        _json(dropped),
        _events(events),
    )
    conn.exec_driver_sql(CHANGES, params)


def _events(events: Sequence[Mapping[str, Any]]) -> str:
    """Ledger rows as JSON, with their position (the insert's order)."""
    return _json({**_stamped(event), "seq": seq} for seq, event in enumerate(events))


def _stamped(row: Mapping[str, Any]) -> dict[str, Any]:
    """The row with its datetimes as UTC ISO text (what `UtcDateTime` would bind)."""
    return {
        name: _utc(value) if isinstance(value, datetime) else value for name, value in row.items()
    }


def _utc(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("naive datetime given to the store; use aware UTC")
    return moment.astimezone(UTC).isoformat()


def _json(rows: Iterable[Mapping[str, Any]]) -> str:
    return json.dumps(list(rows), separators=(",", ":"))
