"""`clarion.model` is the pure domain: no I/O libraries, no other Clarion package."""

import ast
from pathlib import Path

import clarion.model

FORBIDDEN = {
    "asyncio",
    "socket",
    "ssl",
    "http",
    "urllib.request",
    "httpx",
    "pycurl",
    "h2",
    "sqlalchemy",
    "alembic",
    "asyncpg",
    "aiosqlite",
    "fastapi",
    "starlette",
    "uvicorn",
    "hypercorn",
    "subprocess",
    "sqlite3",
}
MODEL_DIR = Path(clarion.model.__file__).parent


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_model_imports_no_io_and_no_other_clarion_package() -> None:
    offenders = []
    for path in sorted(MODEL_DIR.rglob("*.py")):
        for name in _imports(path):
            top = name.split(".")[0]
            if name in FORBIDDEN or top in FORBIDDEN:
                offenders.append(f"{path.name}: {name}")
            if top == "clarion" and not name.startswith("clarion.model"):
                offenders.append(f"{path.name}: {name}")
    assert offenders == []
