"""The soak's figures from its samples: rate held after warm-up, backlog, RSS slope."""

from __future__ import annotations

import pytest
from bench.soak_figures import SoakRun, Window, rows, slope


def _window(at: float, accepted: int, answered: int, api: float, worker: float) -> Window:
    return Window(at, accepted, answered, {"api": api, "worker1": worker}, cpu_seconds=at)


def _run(answered_per_window: list[int], worker_mb: list[float]) -> SoakRun:
    windows = []
    answered = 0
    for index, (count, mb) in enumerate(zip(answered_per_window, worker_mb, strict=True)):
        answered += count
        windows.append(_window(10.0 * index, 50_000 * index, answered, 50.0, mb))
    drained = _window(windows[-1].at + 5, windows[-1].accepted, windows[-1].accepted, 50.0, 90.0)
    return SoakRun(5_000.0, 30.0, 10.0, windows, drained, drain_seconds=5.0)


def test_slope_is_least_squares_and_zero_without_spread() -> None:
    assert slope([(0.0, 1.0), (1.0, 3.0), (2.0, 5.0)]) == pytest.approx(2.0)
    assert slope([(1.0, 1.0), (1.0, 9.0)]) == 0.0
    assert slope([(1.0, 1.0)]) == 0.0


def test_a_pipeline_that_keeps_up_holds_the_rate_after_warm_up() -> None:
    run = _run([0, 45_000, 50_000, 50_000], [60.0, 80.0, 80.0, 80.0])
    assert run.warm.at == 10.0
    assert run.achieved_rate == pytest.approx(5_000.0)
    assert run.rss_slope_mb_per_minute() == pytest.approx(0.0)
    figures = {row[0].split(": ", 1)[1]: row for row in rows(run, "sqlite")}
    assert figures["deliveries/s after warm-up"][3] == "1.00"
    assert figures["backlog at end of pacing"][1] == "5,000 deliveries"
    assert figures["RSS of Clarion processes, end"][1:] == ("130 MB", "110 MB at start", "1.18")


def test_a_pipeline_that_falls_behind_says_so_with_a_growing_backlog_and_its_real_rate() -> None:
    run = _run([0, 30_000, 30_000, 30_000], [60.0, 80.0, 90.0, 100.0])
    assert run.achieved_rate == pytest.approx(3_000.0)
    figures = {row[0].split(": ", 1)[1]: row for row in rows(run, "postgres")}
    assert figures["vs target"][1:] == ("3,000/s", "5,000/s (issue 8)", "0.60")
    assert figures["backlog at end of pacing"][2] == "20,000 after warm-up (+120,000/min)"
    assert figures["RSS slope after warm-up"][1] == "+60.0 MB/min"
    assert figures["RSS slope, second half"][1] == "+60.0 MB/min"
    assert figures["RSS max, one process"][1] == "100 MB (worker1)"


def test_memory_that_levels_off_shows_a_flat_second_half() -> None:
    run = _run([0, 50_000, 50_000, 50_000, 50_000], [60.0, 80.0, 100.0, 100.0, 100.0])
    assert run.rss_slope_mb_per_minute() > 0
    assert run.rss_slope_mb_per_minute(since=20.0) == pytest.approx(0.0)
