"""What a notification says, independent of any platform, and its localized variants."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any


@dataclass(frozen=True, slots=True)
class Action:
    """A button on the notification; `url` opens when it is tapped."""

    id: str
    title: str
    url: str | None = None


@dataclass(frozen=True, slots=True)
class LocalizedText:
    """The translatable parts of `Content` for one language tag."""

    title: str | None = None
    subtitle: str | None = None
    body: str | None = None


@dataclass(frozen=True, slots=True)
class Content:
    """The common content every provider renders into its native payload.

    `data` is delivered to the app untouched (FCM turns values into strings);
    `localized` maps BCP 47 tags to variants chosen per device by `for_locale`.
    """

    title: str | None = None
    subtitle: str | None = None
    body: str | None = None
    image: str | None = None
    badge: int | None = None
    sound: str | None = None
    url: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)
    actions: tuple[Action, ...] = ()
    localized: Mapping[str, LocalizedText] = field(default_factory=dict)

    @property
    def is_silent(self) -> bool:
        """A push with nothing to show: delivered in the background."""
        return not (self.title or self.body or self.subtitle or self.sound)

    def for_locale(self, locale: str | None) -> Content:
        """The content as the device's locale should see it (no `localized` left)."""
        tag = best_locale(self.localized.keys(), locale)
        base = replace(self, localized={})
        if tag is None:
            return base
        text = self.localized[tag]
        return replace(
            base,
            title=text.title if text.title is not None else self.title,
            subtitle=text.subtitle if text.subtitle is not None else self.subtitle,
            body=text.body if text.body is not None else self.body,
        )


def locale_chain(locale: str) -> list[str]:
    """Fallback order for a BCP 47 tag: `zh-Hant-TW` -> `zh-Hant-TW`, `zh-Hant`, `zh`."""
    parts = locale.replace("_", "-").split("-")
    return ["-".join(parts[:n]) for n in range(len(parts), 0, -1)]


def best_locale(available: Any, locale: str | None) -> str | None:
    """The best of the `available` tags for `locale`, or None for the default content.

    Matching is case-insensitive and walks the fallback chain (`fr-CA` -> `fr`).
    """
    if not locale:
        return None
    by_lower = {str(tag).lower(): str(tag) for tag in available}
    for candidate in locale_chain(locale.lower()):
        if candidate in by_lower:
            return by_lower[candidate]
    return None
