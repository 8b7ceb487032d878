"""Reading the preference center's main form into validated choices.

Why apart from the routes: the form is plain HTML (it must work without
JavaScript), so every field arrives as text and is checked here, with an
error key per field for the page to show next to it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from clarion.model.app import App
from clarion.model.errors import FieldError
from clarion.model.preferences import QuietHours, parse_hhmm

QUIET_MODES = ("default", "custom", "none")


@dataclass(slots=True)
class FormChoices:
    """What the person chose, the raw values (to show again) and errors by field."""

    categories: dict[str, bool]
    quiet_hours: QuietHours | None
    quiet_hours_set: bool
    timezone: str | None
    values: dict[str, Any]
    errors: dict[str, str] = field(default_factory=dict)


def parse_form(app: App, fields: Mapping[str, str], zones: set[str]) -> FormChoices:
    """Categories are checkboxes named `category.<name>` (absent = off)."""
    categories = {c.name: f"category.{c.name}" in fields for c in app.categories}
    mode = fields.get("quiet_mode", "default")
    start_text = fields.get("quiet_start", "").strip()[:5]
    end_text = fields.get("quiet_end", "").strip()[:5]
    timezone = fields.get("timezone", "").strip()
    values: dict[str, Any] = {
        "categories": categories,
        "quiet_mode": mode if mode in QUIET_MODES else "default",
        "quiet_start": start_text,
        "quiet_end": end_text,
        "timezone": timezone,
    }
    choices = FormChoices(categories, None, mode in ("custom", "none"), None, values)
    if mode == "custom":
        times = []
        for name, text in (("quiet_start", start_text), ("quiet_end", end_text)):
            try:
                times.append(parse_hhmm(text, name))
            except FieldError:
                choices.errors[name] = "bad_time"
        if len(times) == 2:
            if times[0] == times[1]:
                choices.errors["quiet_end"] = "same_time"
            else:
                choices.quiet_hours = QuietHours(times[0], times[1])
    if timezone and timezone not in zones:
        choices.errors["timezone"] = "bad_zone"
    choices.timezone = timezone or None
    return choices
