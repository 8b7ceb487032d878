"""The soak run's samples and the figures drawn from them: rate held, backlog, RSS slope.

Kept apart from the run itself so the arithmetic (steady span after
warm-up, least-squares slope, ratios) can be checked on made-up samples.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from bench.report import Row

TARGET_RATE = 5_000.0
"""Issue 8: a steady 5,000 deliveries/s for 10 minutes with flat memory."""


@dataclass(frozen=True, slots=True)
class Window:
    """Counters at one instant of the run, `at` seconds after pacing began."""

    at: float
    accepted: int
    """Deliveries in notifications the API had accepted."""
    answered: int
    """Pushes nginx had answered."""
    rss_mb: dict[str, float]
    """Resident memory of each Clarion process, by name."""
    cpu_seconds: float
    """CPU used so far by the Clarion processes together."""
    db_cpu_seconds: float = 0.0
    """CPU used so far by the PostgreSQL backends alive at this instant."""
    db_private_mb: float = 0.0
    """Private (anonymous) memory of those backends."""

    @property
    def backlog(self) -> int:
        return self.accepted - self.answered

    @property
    def clarion_rss_mb(self) -> float:
        return sum(self.rss_mb.values())


@dataclass(frozen=True, slots=True)
class SoakRun:
    """Every window of a paced run (the first at t=0, before any POST) and the drain."""

    rate: float
    """Deliveries/s offered."""
    seconds: float
    warmup: float
    windows: list[Window]
    drained: Window
    drain_seconds: float
    ticks: int = 0
    skipped: int = 0
    errors: dict[str, int] = field(default_factory=dict)

    @property
    def start(self) -> Window:
        return self.windows[0]

    @property
    def end(self) -> Window:
        return self.windows[-1]

    @property
    def warm(self) -> Window:
        """The first window at or after warm-up (the start when the run is shorter)."""
        later = [w for w in self.windows[1:-1] if w.at >= self.warmup - 0.5]
        return later[0] if later else self.start

    @property
    def steady_seconds(self) -> float:
        return self.end.at - self.warm.at

    @property
    def achieved_rate(self) -> float:
        """Pushes answered per second between warm-up and the end of pacing."""
        return (self.end.answered - self.warm.answered) / self.steady_seconds

    @property
    def accepted_rate(self) -> float:
        """Deliveries the API accepted per second over the same span."""
        return (self.end.accepted - self.warm.accepted) / self.steady_seconds

    def rss_slope_mb_per_minute(self, since: float | None = None) -> float:
        """Least-squares RSS slope from `since` (default: the end of warm-up) to the end."""
        first = self.warm.at if since is None else since
        steady = [w for w in self.windows if w.at >= first]
        return slope([(w.at, w.clarion_rss_mb) for w in steady]) * 60


def slope(points: Sequence[tuple[float, float]]) -> float:
    """Least-squares slope of y over x; 0 with fewer than two distinct x."""
    if len(points) < 2:
        return 0.0
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    if spread == 0:
        return 0.0
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / spread


def _ratio(value: float, reference: float) -> str:
    return f"{value / reference:.2f}" if reference else ""


def rows(run: SoakRun, backend: str) -> list[Row]:
    """The soak's figures for the summary: rate held, backlog, memory, CPU."""
    start, warm, end, drained = run.start, run.warm, run.end, run.drained
    label = f"soak ({backend}, {run.seconds:.0f} s)"
    per_minute = (end.backlog - warm.backlog) / run.steady_seconds * 60
    cpu = end.cpu_seconds - start.cpu_seconds
    db_cpu = end.db_cpu_seconds - start.db_cpu_seconds
    spent = cpu + max(db_cpu, 0.0)
    answered = end.answered - start.answered
    largest = max(run.windows, key=lambda w: max(w.rss_mb.values(), default=0.0))
    name, peak = max(largest.rss_mb.items(), key=lambda item: item[1], default=("", 0.0))
    result: list[Row] = [
        (
            f"{label}: deliveries/s after warm-up",
            f"{run.achieved_rate:,.0f}/s",
            f"{run.accepted_rate:,.0f}/s accepted of {run.rate:,.0f}/s offered",
            _ratio(run.achieved_rate, run.accepted_rate),
        ),
        (
            f"{label}: vs target",
            f"{run.achieved_rate:,.0f}/s",
            f"{TARGET_RATE:,.0f}/s (issue 8)",
            _ratio(run.achieved_rate, TARGET_RATE),
        ),
        (
            f"{label}: backlog at end of pacing",
            f"{end.backlog:,} deliveries",
            f"{warm.backlog:,} after warm-up ({per_minute:+,.0f}/min)",
            "",
        ),
        (
            f"{label}: drain after pacing",
            f"{drained.backlog:,} left",
            f"after {run.drain_seconds:.0f} s",
            "",
        ),
        (
            f"{label}: RSS of Clarion processes, end",
            f"{end.clarion_rss_mb:,.0f} MB",
            f"{start.clarion_rss_mb:,.0f} MB at start",
            _ratio(end.clarion_rss_mb, start.clarion_rss_mb),
        ),
        (
            f"{label}: RSS of Clarion processes, end vs after warm-up",
            f"{end.clarion_rss_mb:,.0f} MB",
            f"{warm.clarion_rss_mb:,.0f} MB at {warm.at:.0f} s",
            _ratio(end.clarion_rss_mb, warm.clarion_rss_mb),
        ),
        (
            f"{label}: RSS slope after warm-up",
            f"{run.rss_slope_mb_per_minute():+.1f} MB/min",
            "0 (flat)",
            "",
        ),
        (  # a cache filling to its bound rises then levels off; a leak keeps rising
            f"{label}: RSS slope, second half",
            f"{run.rss_slope_mb_per_minute(since=end.at / 2):+.1f} MB/min",
            "0 (flat)",
            "",
        ),
        (f"{label}: RSS max, one process", f"{peak:,.0f} MB ({name})", f"t={largest.at:.0f}s", ""),
        (
            f"{label}: deliveries per CPU-second",
            f"{answered / spent:,.0f}" if spent else "",
            f"{cpu:.0f} clarion" + (f" + {db_cpu:.0f} db" if db_cpu > 0 else "") + " CPU-s",
            "",
        ),
    ]
    if end.db_private_mb or warm.db_private_mb:
        result.append(
            (  # at the start the workers' connection pools are not yet open
                f"{label}: PostgreSQL backends, private memory",
                f"{end.db_private_mb:,.0f} MB",
                f"{warm.db_private_mb:,.0f} MB at {warm.at:.0f} s",
                _ratio(end.db_private_mb, warm.db_private_mb),
            )
        )
    if run.skipped or run.errors:
        failed = ", ".join(f"{key}: {count}" for key, count in sorted(run.errors.items()))
        result.append(
            (
                f"{label}: POSTs not accepted",
                f"{run.skipped} skipped (API behind), {failed or 'no errors'}",
                f"{run.ticks} ticks",
                "",
            )
        )
    return result
