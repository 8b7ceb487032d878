"""Run every benchmark module in `bench/` (one defining `main()`), or those named.

`python -m bench` runs them all; `python -m bench transport` runs one. Helper
modules (no `main`) are skipped.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time
from pathlib import Path


def benchmarks() -> list[str]:
    names = [info.name for info in pkgutil.iter_modules([str(Path(__file__).parent)])]
    return sorted(name for name in names if not name.startswith("_"))


def main(argv: list[str]) -> int:
    wanted = argv or benchmarks()
    for name in wanted:
        module = importlib.import_module(f"bench.{name}")
        run = getattr(module, "main", None)
        if run is None:
            if argv:
                print(f"bench.{name} has no main()")
                return 2
            continue
        print(f"== bench.{name}")
        started = time.perf_counter()
        run()
        print(f"== bench.{name} took {time.perf_counter() - started:.1f}s\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
