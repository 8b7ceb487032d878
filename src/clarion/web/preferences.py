"""The recipient's preference center: `GET/POST /p/{token}`.

Why here and not in the API: a person opens this page from a link, with no
API key. The signed token (`links.py`) is the only credential and names the
app and the user; nothing in the form can name another user. Saving writes
the same preferences as `PUT /v1/apps/{app}/users/{user}/preferences`, and
"turn off all" appends consent events (source `preference_center`) through
the same store function as `PUT .../devices/{id}/consent`.

The page works without JavaScript (plain forms, POST then redirect); the one
script only pre-selects the browser's time zone for a user who has none.
The form echoes a nonce bound to the token (`LinkSigner.form_nonce`), so
another site cannot post to it without knowing the link.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any
from zoneinfo import available_timezones

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from clarion.api.services import Services, request_origin, services
from clarion.model.app import App
from clarion.model.consent import SENDABLE_CONSENT, ConsentChange, ConsentStatus
from clarion.model.device import Device
from clarion.model.preferences import QuietHours, UserPreferences
from clarion.store import apps as app_store
from clarion.store import consent as ledger
from clarion.store import devices as device_store
from clarion.store import users as user_store
from clarion.web import STATIC_PREFIX, templates
from clarion.web.i18n import Translate, negotiate, translator
from clarion.web.links import LinkError, LinkSigner, PreferenceLink
from clarion.web.preference_form import FormChoices, parse_form

SOURCE = "preference_center"
"""The consent-ledger source of every change made on this page."""

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Vary": "Accept-Language",
}

router = APIRouter(include_in_schema=False)
Found = Annotated[Services, Depends(services)]


@cache
def timezones() -> tuple[str, ...]:
    return tuple(sorted(available_timezones()))


@dataclass(frozen=True, slots=True)
class Recipient:
    """What one verified link reaches: the app, the user's choices and devices."""

    link: PreferenceLink
    app: App
    prefs: UserPreferences | None
    devices: list[Device]
    turned_off_here: list[Device]
    """Devices whose consent this page revoked (and may grant again)."""


class Refused(Exception):
    """The request cannot reach a recipient: answered with the error page."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _signer(found: Services) -> LinkSigner:
    return LinkSigner(found.settings.secret_key)


def _render(request: Request, name: str, status: int, **context: Any) -> HTMLResponse:
    language = negotiate(request.headers.get("accept-language"))
    t = translator(language)
    html = (
        templates().get_template(name).render(lang=language, t=t, static=STATIC_PREFIX, **context)
    )
    headers = {**SECURITY_HEADERS, "Content-Language": language}
    return HTMLResponse(html, status_code=status, headers=headers)


def _error(request: Request, refused: Refused) -> HTMLResponse:
    return _render(request, "preferences_error.html", refused.status, message=refused.message)


async def _recipient(found: Services, token: str) -> Recipient:
    try:
        link = _signer(found).verify(token, found.clock.now())
    except LinkError as exc:
        raise Refused(403 if exc.reason == "expired" else 404, f"error_{exc.reason}") from exc
    async with found.database.read() as conn:
        app = await app_store.get_app(conn, link.app_id)
        if app is None:
            raise Refused(404, "error_invalid")
        prefs = await user_store.get_preferences(conn, app.id, link.user_id)
        devices = [d for d in await device_store.user_devices(conn, app.id, link.user_id)]
        turned_off = []
        for device in devices:
            if device.consent == ConsentStatus.REVOKED.value:
                history = await ledger.device_history(conn, app.id, device.id)
                if history and history[-1].source == SOURCE:
                    turned_off.append(device)
    return Recipient(link, app, prefs, devices, turned_off)


def _page_context(
    found: Services, token: str, who: Recipient, t: Translate, choices: FormChoices | None
) -> dict[str, Any]:
    app, prefs = who.app, who.prefs
    stored = prefs.categories if prefs else {}
    if choices is None:
        mode = "default"
        if prefs is not None and prefs.quiet_hours_set:
            mode = "custom" if prefs.quiet_hours else "none"
        window = (prefs.quiet_hours if prefs else None) or app.quiet_hours
        start, end = (window.as_json().values()) if window else ("22:00", "08:00")
        values = {
            "categories": {c.name: stored.get(c.name, c.default_opt_in) for c in app.categories},
            "quiet_mode": mode,
            "quiet_start": start,
            "quiet_end": end,
            "timezone": (prefs.timezone if prefs else None) or "",
        }
    else:
        values = choices.values
    reachable = [d for d in who.devices if d.active and d.consent in SENDABLE_CONSENT]
    return {
        "app": app,
        "action": f"/p/{token}",
        "nonce": _signer(found).form_nonce(token),
        "values": values,
        "errors": choices.errors if choices else {},
        "app_window": _window_text(app.quiet_hours),
        "zones": timezones(),
        "reachable": len(reachable),
        "turned_off_here": len(who.turned_off_here),
        "has_devices": bool(who.devices),
    }


def _window_text(window: QuietHours | None) -> str | None:
    return f"{window.start:%H:%M}-{window.end:%H:%M}" if window else None


@router.get("/p/{token}", response_class=HTMLResponse)
async def show(token: str, request: Request, found: Found) -> HTMLResponse:
    """The page: the app's categories with the user's switches, quiet hours, time zone."""
    try:
        who = await _recipient(found, token)
    except Refused as refused:
        return _error(request, refused)
    t = translator(negotiate(request.headers.get("accept-language")))
    context = _page_context(found, token, who, t, None)
    return _render(
        request, "preferences.html", 200, saved="saved" in request.query_params, **context
    )


@router.post("/p/{token}", response_model=None)
async def save(token: str, request: Request, found: Found) -> Response:
    """Apply one of the page's forms, then redirect back to the page (POST/redirect/GET)."""
    try:
        who = await _recipient(found, token)
        form = await request.form()
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        if not _signer(found).check_form_nonce(token, fields.get("nonce", "")):
            raise Refused(403, "error_form")
    except Refused as refused:
        return _error(request, refused)
    action = fields.get("action", "save")
    if action in ("off", "on"):
        await _set_consent(found, request, who, grant=action == "on")
    elif action == "pause":
        await _store(found, who, {c.name: False for c in who.app.categories}, keep=True)
    else:
        choices = parse_form(who.app, fields, set(timezones()))
        if choices.errors:
            t = translator(negotiate(request.headers.get("accept-language")))
            context = _page_context(found, token, who, t, choices)
            return _render(request, "preferences.html", 422, saved=False, **context)
        await _store(found, who, choices.categories, keep=False, choices=choices)
    return RedirectResponse(f"/p/{token}?saved=1", status_code=303, headers=SECURITY_HEADERS)


async def _store(
    found: Services,
    who: Recipient,
    categories: dict[str, bool],
    *,
    keep: bool,
    choices: FormChoices | None = None,
) -> None:
    """Write the user's preferences; `keep` leaves quiet hours and time zone as stored."""
    old = who.prefs
    merged = {**(old.categories if old else {}), **categories}
    if keep or choices is None:
        quiet = old.quiet_hours if old else None
        quiet_set = old.quiet_hours_set if old else False
        timezone = old.timezone if old else None
    else:
        quiet, quiet_set, timezone = choices.quiet_hours, choices.quiet_hours_set, choices.timezone
    prefs = UserPreferences(
        categories=merged,
        quiet_hours=quiet,
        quiet_hours_set=quiet_set,
        timezone=timezone,
        caps=old.caps if old else None,
    )
    async with found.database.write() as conn:
        await user_store.put_preferences(
            conn, who.app.id, who.link.user_id, prefs, found.clock.now()
        )


async def _set_consent(found: Services, request: Request, who: Recipient, *, grant: bool) -> None:
    """Revoke consent on every device that may be sent to, or grant it again where we revoked it."""
    if grant:
        targets, status = who.turned_off_here, ConsentStatus.GRANTED
    else:
        targets = [d for d in who.devices if d.consent in SENDABLE_CONSENT]
        status = ConsentStatus.REVOKED
    origin = request_origin(request)
    async with found.database.write() as conn:
        for device in targets:
            change = ConsentChange(status, SOURCE)
            await device_store.set_consent(
                conn, who.app, device.id, change, origin, found.clock.now()
            )
