"""Measured runs and the figure | value | reference | ratio table the benchmarks print."""

from __future__ import annotations

import resource
from collections import Counter
from collections.abc import Callable, Sequence
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
    return grid(("figure", "value", "reference", "ratio"), rows)


def grid(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell, a rule under the header."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [
        " | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]
    lines.insert(1, "-+-".join("-" * width for width in widths))
    return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class ModuleResult:
    """What one benchmark module gave `python -m bench`: its rows, its time, or its error."""

    name: str
    seconds: float
    rows: list[Row] | None
    """None when the module returned nothing (not converted to return its rows)."""
    error: str | None = None


def summary_rows(results: Sequence[ModuleResult], budget_seconds: float) -> list[Row]:
    """Every module's rows, then a line with its wall time (or its failure), then the total.

    A failed module keeps its place in the table, so a run that lost a
    figure says so next to the figures it did get.
    """
    rows: list[Row] = []
    for result in results:
        if result.error is not None:
            rows.append((f"{result.name}: FAILED", result.error, "", ""))
        elif result.rows is None:
            rows.append((f"{result.name}: (returned no rows)", "", "", ""))
        else:
            rows.extend(result.rows)
        rows.append((f"{result.name}: wall time", f"{result.seconds:.1f} s", "", ""))
    total = sum(result.seconds for result in results)
    rows.append(
        (
            "total wall time",
            f"{total:.1f} s",
            f"{budget_seconds:.0f} s (budget)",
            f"{total / budget_seconds:.2f}",
        )
    )
    return rows
