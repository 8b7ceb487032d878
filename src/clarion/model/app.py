"""An app (tenant) and its defaults."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from clarion.model.errors import FieldError
from clarion.model.preferences import FrequencyCap, QuietHours, check_category_name


@dataclass(frozen=True, slots=True)
class Category:
    """A kind of notification an app sends, with how the recipient treats it by default."""

    name: str
    description: str = ""
    default_opt_in: bool = True
    time_sensitive: bool = False
    counts_toward_caps: bool = True

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "default_opt_in": self.default_opt_in,
            "time_sensitive": self.time_sensitive,
            "counts_toward_caps": self.counts_toward_caps,
        }


def parse_categories(value: Any, field: str = "categories") -> tuple[Category, ...]:
    """A list of category objects; names must be unique."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise FieldError(field, "must be a list of category objects")
    seen: set[str] = set()
    result = []
    for index, item in enumerate(value):
        where = f"{field}.{index}"
        if not isinstance(item, Mapping):
            raise FieldError(where, "must be an object with at least a name")
        name = check_category_name(item.get("name"), f"{where}.name")
        if name in seen:
            raise FieldError(f"{where}.name", f"category {name!r} appears twice")
        seen.add(name)
        flags = {}
        for flag in ("default_opt_in", "time_sensitive", "counts_toward_caps"):
            if flag in item:
                if not isinstance(item[flag], bool):
                    raise FieldError(f"{where}.{flag}", "must be true or false")
                flags[flag] = item[flag]
        description = item.get("description", "")
        if not isinstance(description, str) or len(description) > 500:
            raise FieldError(f"{where}.description", "must be a string of at most 500")
        result.append(Category(name=name, description=description, **flags))
    return tuple(result)


@dataclass(frozen=True, slots=True)
class App:
    """A tenant: one publisher's app."""

    id: str
    name: str
    default_timezone: str
    quiet_hours: QuietHours | None
    caps: tuple[FrequencyCap, ...]
    categories: tuple[Category, ...]
    subject_salt: bytes
    created_at: datetime
    updated_at: datetime
