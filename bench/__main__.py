"""Run every benchmark module in `bench/` (one defining `main()`), or those named.

`python -m bench` runs them all; `python -m bench transport soak` runs those.
Helper modules (no `main`) are skipped. Each `main()` prints its own table
and returns its rows; at the end one summary table holds every module's
rows, its wall time, and the total beside the 10-minute budget of
`make bench`. A module that raises is reported there as failed and the
others still run; the exit status is then 1.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from bench.report import ModuleResult, Row, summary_rows, table

BUDGET_SECONDS = 600.0
"""Issue 8: `make bench` runs the whole set in under 10 minutes."""


def benchmarks() -> list[str]:
    names = [info.name for info in pkgutil.iter_modules([str(Path(__file__).parent)])]
    return sorted(name for name in names if not name.startswith("_"))


def run_module(name: str, run: Callable[[], object]) -> ModuleResult:
    """Time one module's `main()`; its exception becomes the result's error."""
    started = time.perf_counter()
    try:
        rows = _rows(run())
    except (Exception, SystemExit) as exc:  # a benchmark's failure must not stop the others
        traceback.print_exc()
        return ModuleResult(name, time.perf_counter() - started, None, _describe(exc))
    return ModuleResult(name, time.perf_counter() - started, rows)


def _rows(returned: object) -> list[Row] | None:
    """The rows a `main()` returned; None from one that returns nothing yet."""
    if not isinstance(returned, list):
        return None
    return [(str(a), str(b), str(c), str(d)) for a, b, c, d in returned]


def _describe(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".splitlines()[0]
    return text if len(text) <= 100 else text[:97] + "..."


def _entry(name: str) -> Callable[[], object] | ModuleResult | None:
    """The module's `main`, None when it has none, a failed result when it cannot import."""
    started = time.perf_counter()
    try:
        module = importlib.import_module(f"bench.{name}")
    except Exception as exc:  # a module broken at import is one failed benchmark
        traceback.print_exc()
        return ModuleResult(name, time.perf_counter() - started, None, _describe(exc))
    run: Callable[[], object] | None = getattr(module, "main", None)
    return run


def main(argv: list[str]) -> int:
    wanted = argv or benchmarks()
    results: list[ModuleResult] = []
    for name in wanted:
        entry = _entry(name)
        if entry is None:
            if argv:
                print(f"bench.{name} has no main()")
                return 2
            continue
        if isinstance(entry, ModuleResult):
            results.append(entry)
            continue
        print(f"== bench.{name}", flush=True)
        result = run_module(name, entry)
        status = "FAILED" if result.error else "took"
        print(f"== bench.{name} {status} {result.seconds:.1f}s\n", flush=True)
        results.append(result)
    print("== summary")
    print(table(summary_rows(results, BUDGET_SECONDS)))
    return 1 if any(result.error for result in results) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
