"""Personalization: placeholders in a notification's title, subtitle and body, filled per device.

```
Hi {{ tag.first_name | default: "there" }}, your {{ platform }} app has news
```

A placeholder is `{{ name }}` or `{{ name | default: "text" }}`, where `name`
is `tag.<tag name>`, `user_id`, `locale` or `platform`; `{{ "{{" }}` writes a
literal text (use it for braces). That is the whole language: no attribute
access, no filters but `default`, no code — the parser is a regular
expression and rendering is a dictionary lookup, so a template cannot reach
anything but these four names.

A name the device may lack (any tag, `locale`, `user_id` unless the audience
is a list of users) needs a default: `check_content` reports it when the
notification is accepted, so a push never goes out with a hole in it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import lru_cache

from clarion.model.content import Content
from clarion.model.errors import FieldError

NAMES = ("user_id", "locale", "platform")
ALWAYS_PRESENT = frozenset({"platform"})
_STRING = r""""(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'"""
_PLACEHOLDER = re.compile(r"\{\{((?:" + _STRING + r"""|[^"'}]|\}(?!\}))*)\}\}""", re.DOTALL)
_INNER = re.compile(
    r"\s*(?:(?P<name>tag\.[A-Za-z0-9_.:-]{1,64}|[A-Za-z_][A-Za-z0-9_]*)|(?P<literal>"
    + _STRING
    + r"))\s*(?:\|\s*default\s*:\s*(?P<default>"
    + _STRING
    + r"))?\s*",
    re.DOTALL,
)
_ESCAPE = re.compile(r"\\(.)", re.DOTALL)
_USAGE = 'a name (tag.<name>, user_id, locale, platform) with an optional | default: "text"'


class TemplateError(ValueError):
    """A template that does not parse; `position` is the 0-based offset of the placeholder."""

    def __init__(self, position: int, message: str) -> None:
        super().__init__(f"at position {position}: {message}")
        self.position = position


@dataclass(frozen=True, slots=True)
class Placeholder:
    name: str
    default: str | None
    position: int


Part = str | Placeholder


def _unquote(text: str) -> str:
    return _ESCAPE.sub(r"\1", text[1:-1])


@lru_cache(maxsize=1024)
def parse_template(text: str) -> tuple[Part, ...]:
    """The literal text and placeholders of `text`; raises `TemplateError`."""
    parts: list[Part] = []
    pos = 0
    while (start := text.find("{{", pos)) != -1:
        if start > pos:
            parts.append(text[pos:start])
        match = _PLACEHOLDER.match(text, start)
        if match is None:
            raise TemplateError(start, "'{{' is not closed by '}}'")
        inner = _INNER.fullmatch(match.group(1))
        if inner is None:
            raise TemplateError(start, f"expected {_USAGE} inside {{{{ }}}}")
        if inner.group("literal") is not None:
            if inner.group("default") is not None:
                raise TemplateError(start, "a quoted text needs no default")
            parts.append(_unquote(inner.group("literal")))
        else:
            name = inner.group("name")
            if name not in NAMES and not name.startswith("tag."):
                raise TemplateError(start, f"unknown name {name!r}; expected {_USAGE}")
            default = inner.group("default")
            parts.append(Placeholder(name, _unquote(default) if default else None, start))
        pos = match.end()
    if pos < len(text):
        parts.append(text[pos:])
    return tuple(parts)


def render(text: str, values: Mapping[str, str | None]) -> str:
    """`text` with its placeholders filled from `values` (`tag.<name>`, `user_id`, ...)."""
    if "{{" not in text:
        return text
    out = []
    for part in parse_template(text):
        if isinstance(part, str):
            out.append(part)
        else:
            value = values.get(part.name)
            out.append(value if value is not None else (part.default or ""))
    return "".join(out)


def device_values(
    platform: str, user_id: str | None, locale: str | None, tags: Mapping[str, str] | None
) -> dict[str, str | None]:
    """The names a template may use, for one device."""
    values: dict[str, str | None] = {"platform": platform, "user_id": user_id, "locale": locale}
    values.update({f"tag.{name}": value for name, value in (tags or {}).items()})
    return values


def personalize(content: Content, values: Mapping[str, str | None]) -> Content:
    """The (already localized) content with title, subtitle and body rendered for one device."""
    return replace(
        content,
        title=render(content.title, values) if content.title else content.title,
        subtitle=render(content.subtitle, values) if content.subtitle else content.subtitle,
        body=render(content.body, values) if content.body else content.body,
    )


def check_template(text: str | None, where: str, present: frozenset[str]) -> None:
    """Raise `FieldError` on `where` if `text` does not parse or may leave a hole."""
    if not text:
        return
    try:
        parts = parse_template(text)
    except TemplateError as error:
        raise FieldError(where, str(error)) from error
    for part in parts:
        if isinstance(part, Placeholder) and part.default is None and part.name not in present:
            raise FieldError(
                where,
                f"at position {part.position}: {{{{ {part.name} }}}} may be missing on some "
                f'devices; give it a default: {{{{ {part.name} | default: "..." }}}}',
            )


def check_content(content: Content, present: frozenset[str] = ALWAYS_PRESENT) -> list[FieldError]:
    """Every templating problem of a notification's texts, each naming its field."""
    texts = [(f"content.{name}", getattr(content, name)) for name in ("title", "subtitle", "body")]
    for tag, variant in content.localized.items():
        texts += [
            (f"content.localized.{tag}.{name}", getattr(variant, name))
            for name in ("title", "subtitle", "body")
        ]
    errors = []
    for where, text in texts:
        try:
            check_template(text, where, present)
        except FieldError as error:
            errors.append(error)
    return errors
