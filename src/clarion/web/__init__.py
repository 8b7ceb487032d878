"""Clarion's web side: the recipient's preference center and the Web Push SDK.

Why a package of its own: these pages are served by the API process but are
not the JSON API. They are server-rendered (Jinja2, no front-end build step),
so they work on the embedded default right after `make run`, and they are
reached by people, not by app servers: recipients through a signed link
(`links.py`), web developers through two static scripts (`sdk.py`).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape

WEB_DIR = Path(__file__).parent
TEMPLATES_DIR = WEB_DIR / "templates"
STATIC_DIR = WEB_DIR / "static"
STATIC_PREFIX = "/static"
"""Where `STATIC_DIR` is mounted (CSS and the few scripts the pages use)."""


@cache
def templates() -> Environment:
    """The Jinja2 environment for every template here, HTML autoescaped."""
    return Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(("html",)),
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
