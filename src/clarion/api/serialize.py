"""Domain values to JSON for answers. Secrets never pass through here."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from clarion.model.app import App
from clarion.model.consent import ConsentEvent
from clarion.model.device import Device
from clarion.model.preferences import UserPreferences
from clarion.store.apps import ApiKey


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def app_json(app: App) -> dict[str, Any]:
    return {
        "id": app.id,
        "name": app.name,
        "default_timezone": app.default_timezone,
        "quiet_hours": app.quiet_hours.as_json() if app.quiet_hours else None,
        "caps": [cap.as_json() for cap in app.caps],
        "categories": [category.as_json() for category in app.categories],
        "created_at": iso(app.created_at),
        "updated_at": iso(app.updated_at),
    }


def key_json(key: ApiKey) -> dict[str, Any]:
    return {
        "id": key.id,
        "role": key.role.value,
        "hint": key.hint,
        "created_at": iso(key.created_at),
        "revoked_at": iso(key.revoked_at),
    }


def device_json(device: Device, topics: list[str] | None = None) -> dict[str, Any]:
    token: Any = device.token
    if device.subscription is not None:
        sub = device.subscription
        token = {"endpoint": sub.endpoint, "keys": {"p256dh": sub.p256dh, "auth": sub.auth}}
    data: dict[str, Any] = {
        "id": device.id,
        "platform": device.platform.value,
        "token": token,
        "user_id": device.user_id,
        "locale": device.locale,
        "timezone": device.timezone,
        "app_version": device.app_version,
        "tags": dict(device.tags),
        "consent": device.consent,
        "active": device.active,
        "deactivated_reason": device.deactivated_reason,
        "created_at": iso(device.created_at),
        "updated_at": iso(device.updated_at),
        "last_seen": iso(device.last_seen),
    }
    if topics is not None:
        data["topics"] = topics
    return data


def consent_event_json(event: ConsentEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "device_id": event.device_id,
        "platform": event.platform,
        "subject_hash": event.subject_hash,
        "old_status": event.old_status,
        "new_status": event.new_status,
        "source": event.source,
        "text_version": event.text_version,
        "client_time": iso(event.client_time),
        "server_time": iso(event.server_time),
        "ip": event.ip,
        "user_agent": event.user_agent,
    }


def preferences_json(prefs: UserPreferences | None) -> dict[str, Any]:
    if prefs is None:
        return {"categories": {}, "quiet_hours": None, "timezone": None, "caps": None}
    return {
        "categories": dict(prefs.categories),
        "quiet_hours": prefs.quiet_hours.as_json() if prefs.quiet_hours else None,
        "timezone": prefs.timezone,
        "caps": [cap.as_json() for cap in prefs.caps] if prefs.caps is not None else None,
    }
