"""Checks for the locale and time-zone strings devices and users send."""

from __future__ import annotations

import re
import zoneinfo
from functools import lru_cache

from clarion.model.errors import FieldError

_BCP47 = re.compile(
    r"^[A-Za-z]{2,3}"  # language
    r"(-[A-Za-z]{3}){0,3}"  # extlang
    r"(-[A-Za-z]{4})?"  # script
    r"(-(?:[A-Za-z]{2}|\d{3}))?"  # region
    r"(-(?:[A-Za-z0-9]{5,8}|\d[A-Za-z0-9]{3}))*"  # variants
    r"(-[0-9A-WY-Za-wy-z](-[A-Za-z0-9]{2,8})+)*"  # extensions
    r"(-x(-[A-Za-z0-9]{1,8})+)?$"  # private use
)


def check_locale(value: str, field: str = "locale") -> str:
    """A BCP 47 language tag (`fr`, `fr-CA`, `zh-Hant-TW`); `_` is accepted as `-`."""
    tag = value.replace("_", "-")
    if len(tag) > 35 or not _BCP47.match(tag):
        raise FieldError(field, f"{value!r} is not a BCP 47 language tag such as 'fr-CA'")
    return tag


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def check_timezone(value: str, field: str = "timezone") -> str:
    """An IANA time-zone name such as `Europe/Paris`."""
    if value not in _zones():
        raise FieldError(field, f"{value!r} is not an IANA time zone such as 'Europe/Paris'")
    return value
