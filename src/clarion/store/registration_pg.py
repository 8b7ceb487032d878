"""A registration batch's writes on PostgreSQL: one statement, one round trip.

Every statement is a round trip to PostgreSQL, and a statement whose text
changes with the batch size (SQLAlchemy's multi-row `VALUES`) is parsed and
planned again by PostgreSQL and prepared again by asyncpg: a fifth of a
batch's time went there. Here the new devices, the updated ones, the topics
dropped by a change of user and the ledger events travel as four JSON
documents (encoded by the C JSON encoder, expanded by `json_to_recordset`)
into one data-modifying statement whose text never changes, so asyncpg
prepares it once per connection.

The statement stores what `devices.insert()`, `devices.update()` and
`consent_events.insert()` stored: timestamps converted to UTC (a naive one
is refused, as `UtcDateTime` refuses it), a missing `push_keys` as JSON
`null` (SQLAlchemy's JSON type writes Python None so), and the ledger's
events in batch order (`ORDER BY` the position: its ids keep the order).
An event of a new device whose insert lost a race with another process
(`ON CONFLICT DO NOTHING`) is left out; the caller writes that device again
as an existing one.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

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
    "seq integer, fresh boolean, app_id text, device_id text, platform text, subject_hash text,"
    " old_status text, new_status text, source text, text_version text,"
    " client_time timestamptz, server_time timestamptz, ip text, user_agent text"
)

STATEMENT = f"""
WITH ins AS (
    INSERT INTO devices (id, app_id, platform, token, token_hash, push_keys, user_id, locale,
        timezone, app_version, app_version_key, tags, consent, active, deactivated_reason,
        deactivated_at, created_at, updated_at, last_seen)
    SELECT r.id, r.app_id, r.platform, r.token, r.token_hash, coalesce(r.push_keys, 'null'),
        r.user_id, r.locale, r.timezone, r.app_version, r.app_version_key, r.tags, r.consent,
        r.active, r.deactivated_reason, r.deactivated_at, r.created_at, r.updated_at, r.last_seen
    FROM json_to_recordset($1::json) AS r({_DEVICE_COLUMNS})
    ON CONFLICT (app_id, platform, token_hash) DO NOTHING
    RETURNING id
), upd AS (
    UPDATE devices AS d SET user_id = u.user_id, locale = u.locale, timezone = u.timezone,
        app_version = u.app_version, app_version_key = u.app_version_key,
        push_keys = coalesce(u.push_keys, 'null'), tags = u.tags, consent = u.consent,
        active = u.active, deactivated_reason = u.deactivated_reason,
        deactivated_at = u.deactivated_at, last_seen = u.last_seen, updated_at = u.updated_at
    FROM json_to_recordset($2::json) AS u({_UPDATE_COLUMNS})
    WHERE d.app_id = u.b_app_id AND d.id = u.b_id
    RETURNING d.id
), moved AS (
    DELETE FROM device_topics AS t
    USING json_to_recordset($3::json) AS m(app_id text, device_id text)
    WHERE t.app_id = m.app_id AND t.device_id = m.device_id
    RETURNING t.device_id
), ev AS (
    INSERT INTO consent_events (app_id, device_id, platform, subject_hash, old_status,
        new_status, source, text_version, client_time, server_time, ip, user_agent)
    SELECT e.app_id, e.device_id, e.platform, e.subject_hash, e.old_status, e.new_status,
        e.source, e.text_version, e.client_time, e.server_time, e.ip, e.user_agent
    FROM json_to_recordset($4::json) AS e({_EVENT_COLUMNS})
    WHERE NOT e.fresh OR e.device_id IN (SELECT id FROM ins)
    ORDER BY e.seq
    RETURNING id
)
SELECT id FROM ins
"""  # noqa: S608 - fixed text; every value is a parameter


def write_batch(
    conn: sa.Connection,
    new: Sequence[Mapping[str, Any]],
    updates: Sequence[Mapping[str, Any]],
    moved: Mapping[str, Sequence[str]],
    events: Sequence[Mapping[str, Any]],
) -> set[str]:
    """Write a batch in one statement; the ids of the new devices really inserted.

    `new` are `devices` rows, `updates` the `_UPDATED` columns with `b_app_id`
    and `b_id`, `moved` the device ids per app whose topics go, `events`
    `consent_events` rows in batch order; an event is of a new device when its
    device id is one of `new`'s.
    """
    fresh = {row["id"] for row in new}
    stamped_events = [
        {**_stamped(event), "seq": seq, "fresh": event["device_id"] in fresh}
        for seq, event in enumerate(events)
    ]
    dropped = [{"app_id": app_id, "device_id": id_} for app_id, ids in moved.items() for id_ in ids]
    params = (
        _json(_stamped(row) for row in new),
        _json(_stamped(row) for row in updates),
        _json(dropped),
        _json(stamped_events),
    )
    result = conn.exec_driver_sql(STATEMENT, params)
    return {row[0] for row in result}


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
