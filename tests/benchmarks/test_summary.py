"""`python -m bench`: one summary table, failures reported in it, the others still run."""

from __future__ import annotations

import pytest
from bench import __main__ as runner
from bench.report import ModuleResult, grid, summary_rows, table


def test_summary_lists_rows_then_wall_time_and_total_against_budget() -> None:
    results = [
        ModuleResult("transport", 12.0, [("send rate", "14,000 req/s", "57,000 (h2load)", "0.25")]),
        ModuleResult("soak", 108.0, []),
    ]
    rows = summary_rows(results, budget_seconds=600.0)
    assert rows == [
        ("send rate", "14,000 req/s", "57,000 (h2load)", "0.25"),
        ("transport: wall time", "12.0 s", "", ""),
        ("soak: wall time", "108.0 s", "", ""),
        ("total wall time", "120.0 s", "600 s (budget)", "0.20"),
    ]


def test_summary_names_a_failed_module_and_one_that_returned_nothing() -> None:
    results = [
        ModuleResult("e2e", 3.0, None, "RuntimeError: nginx exited with 1"),
        ModuleResult("fanout", 5.0, None),
    ]
    figures = [row[:2] for row in summary_rows(results, budget_seconds=600.0)]
    assert ("e2e: FAILED", "RuntimeError: nginx exited with 1") in figures
    assert ("fanout: (returned no rows)", "") in figures


def test_table_pads_columns_under_a_header_rule() -> None:
    lines = table([("a", "1", "22", "0.5")]).splitlines()
    assert lines[0] == "figure | value | reference | ratio"
    assert lines[1] == "-------+-------+-----------+------"
    assert lines[2] == "a      | 1     | 22        | 0.5"
    assert grid(("x",), [("long",)]).splitlines() == ["x", "----", "long"]


def test_a_raising_module_becomes_a_failed_result_and_the_run_exits_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken() -> None:
        raise RuntimeError("nginx exited with 1")

    def fine() -> list[tuple[str, str, str, str]]:
        return [("figure", "1", "2", "0.50")]

    entries = {"broken": broken, "fine": fine}
    monkeypatch.setattr(runner, "_entry", lambda name: entries[name])
    assert runner.main(["broken", "fine"]) == 1
    summary = capsys.readouterr().out.split("== summary")[1]
    cells = [[cell.strip() for cell in line.split("|")] for line in summary.splitlines()]
    assert ["broken: FAILED", "RuntimeError: nginx exited with 1", "", ""] in cells
    assert ["figure", "1", "2", "0.50"] in cells
    assert "fine: wall time" in summary


def test_a_module_returning_none_is_tolerated() -> None:
    result = runner.run_module("old", lambda: None)
    assert result.error is None
    assert result.rows is None


def test_every_benchmark_module_is_found_and_helpers_are_skipped() -> None:
    names = runner.benchmarks()
    assert {"soak", "filter_count", "first_push"} <= set(names)
    assert not any(name.startswith("_") for name in names)
