"""Domain validation errors: each names the field it is about.

The HTTP edge turns them into RFC 9457 problems with an `errors` list.
"""

from __future__ import annotations


class FieldError(ValueError):
    """One bad value: `field` is a dotted path (`token.keys.p256dh`)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message

    def under(self, parent: str) -> FieldError:
        """The same error with its path prefixed by `parent`."""
        return FieldError(f"{parent}.{self.field}" if self.field else parent, self.message)
