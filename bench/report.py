"""Measured runs and the figure | value | reference | ratio table the benchmarks print."""

from __future__ import annotations

import resource
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Run:
    """One measured run: requests, wall seconds, CPU seconds of this process, statuses."""

    requests: int
    seconds: float
    cpu_seconds: float
    statuses: Counter[str]

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    @property
    def cpu_us_per_request(self) -> float:
        return self.cpu_seconds / self.requests * 1e6


def cpu_seconds() -> float:
    """User + system CPU time of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def best_of(rounds: int, measure: Callable[[], Run]) -> Run:
    """The fastest of `rounds` runs: on a shared machine the best run is the least disturbed."""
    return max((measure() for _ in range(rounds)), key=lambda run: run.rate)


Row = tuple[str, str, str, str]


def rate_row(figure: str, run: Run, reference: Run | float | None, name: str = "") -> Row:
    value = f"{run.rate:,.0f} req/s"
    if reference is None:
        return (figure, value, "", "")
    rate = reference if isinstance(reference, float) else reference.rate
    return (figure, value, f"{rate:,.0f} ({name})", f"{run.rate / rate:.2f}")


def cpu_row(figure: str, run: Run, reference: Run, name: str) -> Row:
    return (
        figure,
        f"{run.cpu_us_per_request:.1f} us CPU/req",
        f"{reference.cpu_us_per_request:.1f} ({name})",
        f"{run.cpu_us_per_request / reference.cpu_us_per_request:.2f}",
    )


def table(rows: list[Row]) -> str:
    header: Row = ("figure", "value", "reference", "ratio")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(4)]
    lines = [
        " | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]
    lines.insert(1, "-+-".join("-" * width for width in widths))
    return "\n".join(lines)
