"""Run several field checks and report every failure at once."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from clarion.api.errors import field_problem
from clarion.model.errors import FieldError

T = TypeVar("T")


class Checks:
    """Collects `FieldError`s so one answer names every bad field."""

    def __init__(self) -> None:
        self.errors: list[FieldError] = []

    def run(self, check: Callable[[], T]) -> T | None:
        """The check's result, or None after recording its error."""
        try:
            return check()
        except FieldError as error:
            self.errors.append(error)
            return None

    def done(self) -> None:
        if self.errors:
            raise field_problem(self.errors)
