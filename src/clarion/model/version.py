"""App versions as sortable keys, so `app_version >= '2.10'` compares versions, not text.

The store keeps `version_key(app_version)` beside each device's version and
filters compare keys with a plain byte-order string comparison, which works
the same on SQLite and PostgreSQL and can use an index. The key orders:

- by the dotted numeric parts (`2.9.1 < 2.10.0`), trailing zero parts ignored
  (`2.3 == 2.3.0`), each part clamped to 10 digits;
- a pre-release suffix (`2.3.0-beta`, `2.3.0rc1`) before its release, pre-releases
  among themselves by their text; build metadata (`2.3.0+42`) is ignored;
- a version with no leading number (`beta`) before every numbered one.
"""

from __future__ import annotations

import re

_VERSION = re.compile(r"^v?(\d+(?:\.\d+)*)(.*)$", re.DOTALL)
PART_DIGITS = 10
_PRERELEASE = "!"  # sorts before _RELEASE, which sorts before "." (a longer version)
_RELEASE = "#"


def version_key(version: str | None) -> str | None:
    """The sortable key of `version`; None for None."""
    if version is None:
        return None
    match = _VERSION.match(version.strip())
    if match is None:
        return _PRERELEASE + version
    parts = [min(int(part), 10**PART_DIGITS - 1) for part in match.group(1).split(".")]
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()
    numbers = ".".join(f"{part:0{PART_DIGITS}d}" for part in parts)
    suffix = match.group(2).split("+", 1)[0].lstrip("-.")
    if not suffix:
        return numbers + _RELEASE
    return numbers + _PRERELEASE + suffix
