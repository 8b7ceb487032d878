"""CPU time and memory of processes, read from Linux's /proc; histogram quantiles.

The end-to-end benchmark counts the CPU of every process that did the work
(this one, worker processes, PostgreSQL backends), so it reads their
counters by pid instead of `getrusage`, which only sees this process and its
reaped children. Sampling a process before a run resets its peak RSS
(`clear_refs`), so the peak is the run's, not the seeding's.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import CollectorRegistry

_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class ProcessSample:
    pid: int
    cpu_seconds: float
    """User + system time so far."""
    peak_rss_mb: float
    """Peak resident set since the last sample that reset it."""

    def minus(self, earlier: ProcessSample) -> ProcessSample:
        """CPU spent since `earlier`; the peak as it is now."""
        return ProcessSample(self.pid, self.cpu_seconds - earlier.cpu_seconds, self.peak_rss_mb)


def sample(pid: int, *, reset_peak: bool = False) -> ProcessSample:
    """The process's counters; zeros when it is gone or unreadable."""
    proc = Path("/proc") / str(pid)
    try:
        fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        cpu = (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime
        peak = _status_kb(proc / "status", "VmHWM") / 1024
        if reset_peak:
            (proc / "clear_refs").write_text("5")
    except (OSError, IndexError, ValueError):
        return ProcessSample(pid, 0.0, 0.0)
    return ProcessSample(pid, cpu, peak)


def sample_self(*, reset_peak: bool = False) -> ProcessSample:
    return sample(os.getpid(), reset_peak=reset_peak)


def resident_mb(pid: int, key: str = "VmRSS") -> float:
    """Memory of the process now, from /proc/<pid>/status; 0 when it is gone.

    `VmRSS` is what `ps` and `top` show. `RssAnon` leaves out shared and
    file-backed pages: a PostgreSQL backend's `VmRSS` grows as it touches
    shared buffers, which is not memory it owns, so its private memory is the
    figure to watch for a leak.
    """
    try:
        return _status_kb(Path("/proc") / str(pid) / "status", key) / 1024
    except OSError:
        return 0.0


def _status_kb(path: Path, key: str) -> float:
    for line in path.read_text().splitlines():
        if line.startswith(key + ":"):
            return float(line.split()[1])
    return 0.0


def latency_quantiles(
    registry: CollectorRegistry,
    quantiles: Iterable[float],
    name: str = "clarion_provider_latency_seconds",
) -> tuple[float, ...] | None:
    """Upper bucket bounds holding each quantile of a histogram (all label sets together)."""
    buckets: dict[float, float] = {}
    for metric in registry.collect():
        for found in metric.samples:
            if found.name == f"{name}_bucket":
                bound = float(found.labels["le"])
                buckets[bound] = buckets.get(bound, 0.0) + found.value
    if not buckets or not buckets.get(math.inf):
        return None
    total = buckets[math.inf]
    ordered = sorted(buckets.items())
    finite = [bound for bound, _ in ordered if bound != math.inf]
    result = []
    for quantile in quantiles:
        bound = next(bound for bound, count in ordered if count >= quantile * total)
        result.append(bound if bound != math.inf else max(finite, default=math.inf))
    return tuple(result)
