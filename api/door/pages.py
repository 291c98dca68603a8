"""The door scanner (issue 30): ``/manage/{org_id}/events/{event_id}/door``, a page for a
phone at a gate (docs/door.md).

Server-rendered like the storefront and on its cookie session and CSRF token
(:mod:`api.storefront.websession`): the page is a shell, its script (``static/door.js``) calls
the JSON API — ``GET /api/v1/checkin/keys``, ``GET /api/v1/checkin/events/{id}/revocations``,
``POST /api/v1/checkin/redeem`` — exactly as any scanner does, so the API's scoping is the
page's: who may not scan this event's tickets gets the same 404 here as from the API. Its
policy loads nothing but this origin: the QR decoder (jsQR) is vendored under
``static/vendor`` with its licence, and the camera stream plays from ``mediastream:``.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from api.deps import ResourcesDep, SessionDep
from api.storefront.endpoints import apply_visit, read_visit, to_login
from evently import organizations
from evently.db.models import User

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
#: where the page's script, styles and vendored decoder are served
STATIC_PATH = "/door-static"
_templates = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)

#: this origin only; no inline code; the camera preview plays a MediaStream
DOOR_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "media-src 'self' mediastream: blob:; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
PAGE_HEADERS = {
    "content-security-policy": DOOR_CSP,
    "cache-control": "no-store",
    "permissions-policy": "camera=(self), microphone=(), geolocation=()",
}


def is_door_path(path: str) -> bool:
    """The paths whose answers carry this module's policy, not the JSON one (api/http/edge)."""
    return (path.startswith("/manage/") and path.endswith("/door")) or path.startswith(
        STATIC_PATH + "/"
    )


router = APIRouter(include_in_schema=False)


@router.get("/manage/{org_id}/events/{event_id}/door")
async def door_page(
    org_id: uuid.UUID, event_id: uuid.UUID, request: Request, session: SessionDep, res: ResourcesDep
) -> Response:
    settings = res.settings
    visit = await read_visit(request, session, res)
    if visit.user_id is None:
        return to_login(request, visit, settings)
    user = await session.get(User, visit.user_id)
    event = (
        await organizations.door_event(session, event_id, user, organization_id=org_id)
        if user is not None and user.is_active
        else None
    )
    assert visit.nonce is not None
    context = {
        "csrf": visit.csrf(settings),
        "static": STATIC_PATH,
        "server_now_ms": int(time.time() * 1000),
    }
    if event is None:  # not this organization's event, or not someone who works its door
        html = _templates.get_template("not_found.html").render(**context)
        return apply_visit(
            HTMLResponse(html, status_code=404, headers=PAGE_HEADERS), visit, settings
        )
    html = _templates.get_template("door.html").render(event=event, org_id=org_id, **context)
    return apply_visit(HTMLResponse(html, headers=PAGE_HEADERS), visit, settings)
