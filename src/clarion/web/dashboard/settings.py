"""App defaults (time zone, quiet hours, caps) and categories, in one form.

The form is turned into the API's PATCH body and checked by the API's own
`_app_changes`, so the same rules (and messages) apply.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import FormData

from clarion.api.errors import Problem
from clarion.api.routes.apps import PatchApp, _app_changes
from clarion.store import apps as app_store
from clarion.web.dashboard.access import CheckedForm, CurrentViewer, DashApp, Found, NotVisible
from clarion.web.dashboard.render import page

router = APIRouter()
CAP_LINE = re.compile(r"^\s*(\d+)\s+per\s+(\w+)(?:\s+for\s+(\S+))?\s*$", re.IGNORECASE)
FLAGS = ("default_opt_in", "time_sensitive", "counts_toward_caps")
MAX_ROWS = 100


def caps_text(caps: list[dict[str, Any]]) -> str:
    """Caps as the form shows them: `3 per day for marketing`, one a line."""
    lines = []
    for cap in caps:
        line = f"{cap['max']} per {cap['per']}"
        lines.append(line + (f" for {cap['category']}" if cap.get("category") else ""))
    return "\n".join(lines)


def _caps(text: str) -> list[Any]:
    caps: list[Any] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        match = CAP_LINE.match(line)
        if match is None:
            caps.append(line.strip())  # parse_caps names the bad entry
            continue
        cap: dict[str, Any] = {"max": int(match[1]), "per": match[2].lower()}
        if match[3]:
            cap["category"] = match[3]
        caps.append(cap)
    return caps


def _categories(form: FormData) -> list[dict[str, Any]]:
    rows = []
    for index in range(MAX_ROWS):
        name = form.get(f"cat-{index}-name")
        if name is None:
            break
        if not isinstance(name, str) or not name.strip() or form.get(f"cat-{index}-delete"):
            continue
        description = form.get(f"cat-{index}-description")
        row: dict[str, Any] = {
            "name": name.strip(),
            "description": description if isinstance(description, str) else "",
        }
        for flag in FLAGS:
            row[flag] = form.get(f"cat-{index}-{flag}") == "on"
        rows.append(row)
    return rows


def patch_from(form: FormData) -> dict[str, Any]:
    """The API PATCH body the settings form describes."""

    def text(name: str) -> str:
        value = form.get(name)
        return value.strip() if isinstance(value, str) else ""

    quiet = None
    if text("quiet_start") or text("quiet_end"):
        quiet = {"start": text("quiet_start"), "end": text("quiet_end")}
    return {
        "name": text("name") or None,
        "default_timezone": text("default_timezone"),
        "quiet_hours": quiet,
        "caps": _caps(text("caps")),
        "categories": _categories(form),
    }


def _values(app: Any) -> dict[str, Any]:
    return {
        "name": app.name,
        "default_timezone": app.default_timezone,
        "quiet_start": app.quiet_hours.as_json()["start"] if app.quiet_hours else "",
        "quiet_end": app.quiet_hours.as_json()["end"] if app.quiet_hours else "",
        "caps": caps_text([cap.as_json() for cap in app.caps]),
        "categories": [category.as_json() for category in app.categories],
    }


@router.get("/apps/{app_id}/settings")
async def settings_form(
    request: Request, app: DashApp, who: CurrentViewer, saved: bool = False
) -> Response:
    return page(
        request,
        "settings.html",
        who,
        app=app,
        section="settings",
        values=_values(app),
        errors={},
        saved=saved,
    )


@router.post("/apps/{app_id}/settings")
async def settings_save(
    request: Request, app: DashApp, who: CurrentViewer, found: Found, form: CheckedForm
) -> Response:
    body = patch_from(form)
    try:
        changes = _app_changes(PatchApp(**body))
    except Problem as problem:
        values = {**body, "quiet_start": "", "quiet_end": "", "caps": ""}
        for name in ("quiet_start", "quiet_end", "caps"):
            raw = form.get(name)
            values[name] = raw if isinstance(raw, str) else ""
        values["name"] = body["name"] or ""
        errors = {error["field"]: error["message"] for error in problem.errors}
        return page(
            request,
            "settings.html",
            who,
            status_code=422,
            app=app,
            section="settings",
            values=values,
            errors=errors,
            saved=False,
        )
    async with found.database.write() as conn:
        if await app_store.update_app(conn, app.id, changes, found.clock.now()) is None:
            raise NotVisible
    return RedirectResponse(f"/apps/{app.id}/settings?saved=true", status_code=303)
