"""The organizer's back office at ``/manage`` (issue 30; docs/back-office.md): server-rendered
pages for the members of an organization, by role, with an organization switcher.

- **Who**: the storefront's cookie session (:mod:`api.storefront.websession`); a page asks
  :func:`evently.organizations.access` for the visitor's role and checks it against the role
  sets the JSON routes use (:mod:`api.organizations.deps`): a non-member gets 404, a member
  without the role 403 — on the page and on its form's POST, not only by hiding a button.
- **What**: every read and write calls the same services as the JSON organization routes
  (:mod:`api.organizer.service`, :mod:`api.ticket_types.service`, the analytics and check-in
  reads), with the same input models: the same checks, audit entries and after-commit work.
- **Forms** post ``application/x-www-form-urlencoded`` with the page's CSRF token
  (``csrf_token``); a refused one renders the reason with the service's status code; an
  accepted one redirects (303) to the page it changed.
- **Live**: ``/manage/{org}/events/{id}/live`` is a Server-Sent Events stream of the event's
  counts as HTML fragments (the tables and the SVG charts, :mod:`api.manage.charts`), sent
  when they change (read once a second); ``static/manage.js`` swaps them in.
None of these routes is in the OpenAPI document: they are HTML.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from sse_starlette import EventSourceResponse, ServerSentEvent

from api.analytics.schemas import EventAnalyticsOut
from api.bookings.schemas import CancelLinesRequest
from api.deps import ResourcesDep, SessionDep, TemporalDep, end_transaction
from api.events.schemas import EventOut
from api.manage import charts
from api.organizations import service as members_service
from api.organizations.deps import (
    EVENT_MANAGERS,
    MEMBERS,
    ORDER_TAKERS,
    OWNERS,
    REFUNDERS,
    SALES_READERS,
)
from api.organizations.schemas import AuditEntryOut, MemberCreate, MemberPatch
from api.organizer import service
from api.organizer.schemas import EventClone, EventCreate, EventPatch, VenueCreate
from api.storefront.endpoints import Visit, apply_visit, page_csp, read_visit
from api.storefront.websession import CSRF_COOKIE, CSRF_FIELD, csrf_valid
from api.support import service as support_service
from api.ticket_types import service as types_service
from api.ticket_types.schemas import PromoCodeCreate, TicketTypeCreate
from api.webhooks import service as webhooks_service
from api.webhooks.schemas import DeliveryOut, WebhookOut
from evently import accounts, attendees, audit, backoffice, events, organizations, seating
from evently.db.models import Event, User
from evently.enums import EventStatus, OrganizationRole
from evently.errors import (
    BookingNotFound,
    CsrfFailed,
    EventlyError,
    OrganizationRoleRequired,
    Unprocessable,
)
from evently.events import OrganizationEventFilters
from evently.infra.resources import Resources
from evently.organizations import Access
from evently.waitingroom import WaitingRoom
from evently.webhooks import subscriptions
from workflows.booking import client as booking_client
from workflows.connection import TemporalClient

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
_templates = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
PREFIX = "/manage"
LIVE_TICK_SECONDS = 1.0
LIVE_STREAM_SECONDS = 120  # then the browser reconnects (and the session is checked again)
ROLE_LABELS = {
    OrganizationRole.OWNER: "owner",
    OrganizationRole.MANAGER: "manager",
    OrganizationRole.FINANCE: "finance",
    OrganizationRole.DOOR: "door",
}


def is_manage_path(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


router = APIRouter(prefix=PREFIX, include_in_schema=False)
Roles = tuple[OrganizationRole, ...]
M = TypeVar("M", bound=BaseModel)


@dataclass
class Desk:
    """The visitor at one organization's desk: their session and their access."""

    visit: Visit
    access: Access
    organizations: list[tuple[uuid.UUID, str, str]]  # (id, name, role) for the switcher
    # read once: a refusal rolls the session back, which expires the ORM objects
    org_id: uuid.UUID
    org_name: str
    role: str

    def can(self, roles: Roles) -> bool:
        return self.access.allows(*roles)


def _render(
    visit: Visit,
    res: Resources,
    template: str,
    *,
    status_code: int = 200,
    desk: Desk | None = None,
    **context: Any,
) -> Response:
    assert visit.nonce is not None
    html = _templates.get_template(template).render(
        csrf=visit.csrf(res.settings),
        desk=desk,
        can_manage=desk is not None and desk.can(EVENT_MANAGERS),
        can_sell=desk is not None and desk.can(SALES_READERS),
        can_refund=desk is not None and desk.can(REFUNDERS),
        can_own=desk is not None and desk.can(OWNERS),
        role_label=ROLE_LABELS,
        **context,
    )
    response = HTMLResponse(
        html,
        status_code=status_code,
        headers={"content-security-policy": page_csp(res.settings), "cache-control": "no-store"},
    )
    return apply_visit(response, visit, res.settings)


async def _user(session: AsyncSession, visit: Visit) -> User | None:
    if visit.user_id is None:
        return None
    return await accounts.active_user(session, visit.user_id)


async def _switcher(session: AsyncSession, user: User) -> list[tuple[uuid.UUID, str, str]]:
    rows, _ = await organizations.list_organizations(
        session, member_id=None if user.role == "admin" else user.id, page=1, limit=100
    )
    return [(org.id, org.name, role or "owner") for org, role in rows]


Handler = Callable[[Desk], Awaitable[Response]]


async def _serve(
    request: Request,
    session: AsyncSession,
    res: Resources,
    org_id: uuid.UUID,
    roles: Roles,
    handler: Handler,
    *,
    form: dict[str, str] | None = None,
) -> Response:
    """The one gate of every page and form: session (else the log-in page), CSRF for a form,
    membership (404) and role (403) — then ``handler``. A refusal (any EventlyError) rolls back
    what the handler wrote and renders the reason with its status."""
    visit = await read_visit(request, session, res)
    await end_transaction(session)  # a renewed session stays renewed whatever happens next
    user = await _user(session, visit)
    if user is None:
        target = request.url.path if form is None else f"{PREFIX}/{org_id}"
        return apply_visit(
            RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303),
            visit,
            res.settings,
        )
    desk: Desk | None = None
    try:
        if form is not None and not csrf_valid(
            res.settings.jwt_secret,
            request.cookies.get(CSRF_COOKIE),
            visit.session_id,
            form.get(CSRF_FIELD),
        ):
            raise CsrfFailed()
        access = await organizations.access(session, org_id, user)
        desk = Desk(
            visit,
            access,
            await _switcher(session, user),
            access.organization.id,
            access.organization.name,
            str(access.role),
        )
        if not access.allows(*roles):
            raise OrganizationRoleRequired(
                f"This needs the {' or '.join(roles)} role in this organization "
                f"(yours: {access.role})."
            )
        return await handler(desk)
    except EventlyError as exc:
        await session.rollback()
        return _render(
            visit,
            res,
            "error.html",
            status_code=exc.status,
            desk=desk if desk is not None and desk.can(MEMBERS) else None,
            title=exc.title,
            error=exc.detail,
        )


async def _form(request: Request) -> dict[str, str]:
    """A urlencoded form; a field sent more than once (checkboxes) is joined with commas, and
    ``ticket_type_id`` boxes become ``ticket_type_ids``."""
    body = (await request.body()).decode("utf-8", errors="replace")
    fields = {k: ",".join(v) for k, v in parse_qs(body, keep_blank_values=True).items()}
    if "ticket_type_id" in fields:
        fields["ticket_type_ids"] = fields.pop("ticket_type_id")
    return fields


def _done(desk: Desk, res: Resources, url: str) -> Response:
    return apply_visit(RedirectResponse(url, status_code=303), desk.visit, res.settings)


_INTS = frozenset({"capacity", "max_uses", "max_per_booking"})
_TIMES = frozenset(
    {"starts_at", "ends_at", "sales_start", "sales_end", "valid_from", "valid_until"}
)


def parse(model: type[M], fields: dict[str, str]) -> M:
    """A form through the API's own input model: empty fields left out, numbers as numbers, a
    ``datetime-local`` value (no offset) read as UTC — then the same checks, and the same
    ``422 validation_error`` detail, as the JSON route."""
    data: dict[str, Any] = {}
    for name in model.model_fields:
        value = fields.get(name, "").strip()
        if name == "ticket_type_ids":
            ids = [v for v in fields.get(name, "").split(",") if v.strip()]
            if ids:
                data[name] = ids
            continue
        if not value:
            continue
        if name in _INTS and value.isdigit():
            data[name] = int(value)
        elif name in _TIMES and len(value) in (16, 19) and "T" in value:
            data[name] = value + "+00:00"
        else:
            data[name] = value
    return validate(model, data)


def validate(model: type[M], data: dict[str, Any]) -> M:
    """``data`` through the API's input model: its checks, its ``422 validation_error``."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "request"
        why = str(first["msg"]).removeprefix("Value error, ")
        raise Unprocessable(f"{where}: {why}") from exc


def _local(value: datetime | None) -> str:
    """For a ``datetime-local`` input (UTC)."""
    return "" if value is None else value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M")


_templates.filters["local"] = _local
_templates.filters["when"] = lambda v: (
    "" if v is None else v.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
)


# ---- the switcher and the events -------------------------------------------------------------


@router.get("")
async def home(request: Request, session: SessionDep, res: ResourcesDep) -> Response:
    """The organizations the visitor belongs to; with exactly one, straight to it."""
    visit = await read_visit(request, session, res)
    await end_transaction(session)
    user = await _user(session, visit)
    if user is None:
        return apply_visit(
            RedirectResponse(f"/login?next={quote(PREFIX, safe='')}", status_code=303),
            visit,
            res.settings,
        )
    orgs = await _switcher(session, user)
    chosen = request.query_params.get("org", "")
    if chosen in {str(o[0]) for o in orgs}:
        return apply_visit(
            RedirectResponse(f"{PREFIX}/{chosen}", status_code=303), visit, res.settings
        )
    if len(orgs) == 1:
        return apply_visit(
            RedirectResponse(f"{PREFIX}/{orgs[0][0]}", status_code=303), visit, res.settings
        )
    return _render(visit, res, "home.html", title="Your organizations", orgs=orgs)


@router.get("/{org_id}")
async def organization_page(
    org_id: uuid.UUID, request: Request, session: SessionDep, res: ResourcesDep
) -> Response:
    """The events, in three groups: drafts, on sale, past (ended, cancelled or completed). The
    door staff see the events with their scanner links only."""

    async def page(desk: Desk) -> Response:
        found, _ = await events.list_organization_events(
            session, desk.org_id, OrganizationEventFilters(), offset=0, limit=500
        )
        now = datetime.now(UTC)
        groups: dict[str, list[Any]] = {"Drafts": [], "On sale": [], "Past": []}
        for ev in found:
            if ev.status == EventStatus.DRAFT:
                groups["Drafts"].append(ev)
            elif ev.status == EventStatus.PUBLISHED and ev.ends_at > now:
                groups["On sale"].append(ev)
            else:
                groups["Past"].append(ev)
        return _render(desk.visit, res, "events.html", desk=desk, title="Events", groups=groups)

    return await _serve(request, session, res, org_id, MEMBERS, page)


@router.get("/{org_id}/events/new")
async def new_event_page(
    org_id: uuid.UUID, request: Request, session: SessionDep, res: ResourcesDep
) -> Response:
    async def page(desk: Desk) -> Response:
        venues, _ = await events.list_venues(session, desk.org_id, city=None, offset=0, limit=100)
        plans = await seating.plans_of(session, desk.org_id)  # issue 34
        return _render(
            desk.visit,
            res,
            "new_event.html",
            desk=desk,
            title="New event",
            venues=venues,
            plans=plans,
        )

    return await _serve(request, session, res, org_id, EVENT_MANAGERS, page)


# ---- one event ------------------------------------------------------------------------------


async def _live_context(
    session: AsyncSession, res: Resources, desk: Desk, event_id: uuid.UUID
) -> dict[str, Any]:
    """Everything the live fragments show, from the same reads as the JSON routes: the
    event's analytics (sold/held/free per type, sales per hour, revenue, waitlist, codes), its
    check-ins, and the waiting room's line."""
    analytics: EventAnalyticsOut = await service.analytics(session, event_id, desk.org_id)
    checkins = await service.checkin_counts(session, event_id, desk.org_id, limit=1)
    per_hour = await backoffice.checkins_per_hour(session, event_id)
    line = await WaitingRoom(res.redis).line(event_id)
    bars = []
    for t in analytics.ticket_types:
        if t.capacity is None:
            free = analytics.available
        else:
            free = max(0, min(t.capacity - t.held - t.sold, analytics.available))
        bars.append(charts.TypeBar(t.name, t.sold, t.held, free))
    return {
        "analytics": analytics,
        "checkins": checkins,
        "waiting": line.waiting,
        "types_chart": charts.type_bars(bars),
        "sales_chart": charts.columns(
            [(h.hour.strftime("%d %H:00"), h.seats) for h in analytics.sales_per_hour],
            title="Seats sold per hour (UTC)",
        ),
        "revenue_chart": charts.columns(
            [
                (h.hour.strftime("%d %H:00"), float(h.revenue.amount))
                for h in analytics.sales_per_hour
            ],
            title=f"Revenue per hour ({analytics.revenue.currency})",
        ),
        "checkins_chart": charts.columns(
            [(h.hour.strftime("%d %H:00"), h.count) for h in per_hour],
            title="Check-ins per hour (UTC)",
        ),
    }


def _fragments(context: dict[str, Any]) -> dict[str, str]:
    return {
        name: _templates.get_template(f"live_{name}.html").render(**context)
        for name in ("counts", "charts")
    }


@router.get("/{org_id}/events/{event_id}")
async def event_page(
    org_id: uuid.UUID,
    event_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    res: ResourcesDep,
) -> Response:
    """The event: its fields (a form for owners and managers), publish / cancel / clone, its
    ticket types and promo codes with live counts, and the forms to add more."""

    async def page(desk: Desk) -> Response:
        event = await service.own_event(session, event_id, desk.org_id)
        out = EventOut.of(event)
        venues, _ = await events.list_venues(session, desk.org_id, city=None, offset=0, limit=100)
        live = await _live_context(session, res, desk, event_id)
        types = await types_service.list_types(session, event)
        return _render(
            desk.visit,
            res,
            "event.html",
            desk=desk,
            title=out.name,
            event=out,
            venues=venues,
            types=types.items,
            live=_fragments(live),
            live_url=f"{PREFIX}/{desk.org_id}/events/{event_id}/live",
        )

    return await _serve(request, session, res, org_id, SALES_READERS, page)


@router.get("/{org_id}/events/{event_id}/dashboard")
async def dashboard_page(
    org_id: uuid.UUID,
    event_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    res: ResourcesDep,
) -> Response:
    async def page(desk: Desk) -> Response:
        event = EventOut.of(await service.own_event(session, event_id, desk.org_id))
        live = await _live_context(session, res, desk, event_id)
        return _render(
            desk.visit,
            res,
            "dashboard.html",
            desk=desk,
            title=f"Dashboard: {event.name}",
            event=event,
            live=_fragments(live),
            live_url=f"{PREFIX}/{desk.org_id}/events/{event_id}/live",
        )

    return await _serve(request, session, res, org_id, SALES_READERS, page)


@router.get("/{org_id}/events/{event_id}/live")
async def live_stream(
    org_id: uuid.UUID,
    event_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    res: ResourcesDep,
) -> Response:
    """SSE: ``counts`` and ``charts`` fragments whenever they change (checked once a second),
    for ``LIVE_STREAM_SECONDS``; then the browser reconnects through this gate again."""

    async def stream(desk: Desk) -> Response:
        await service.own_event(session, event_id, desk.org_id)
        await end_transaction(session)

        async def messages() -> AsyncIterator[ServerSentEvent]:
            last: dict[str, str] = {}
            until = time.monotonic() + LIVE_STREAM_SECONDS
            yield ServerSentEvent(comment="ready", retry=1000)
            while time.monotonic() < until:
                if await request.is_disconnected():
                    return
                async with res.sessionmaker() as s:
                    now = _fragments(await _live_context(s, res, desk, event_id))
                for name, html in now.items():
                    if last.get(name) != html:
                        last[name] = html
                        yield ServerSentEvent(data=html.replace("\n", " "), event=name)
                await asyncio.sleep(LIVE_TICK_SECONDS)

        return apply_visit(
            EventSourceResponse(messages(), headers={"cache-control": "no-store"}),
            desk.visit,
            res.settings,
        )

    return await _serve(request, session, res, org_id, SALES_READERS, stream)


@router.get("/{org_id}/events/{event_id}/attendees")
async def attendees_page(
    org_id: uuid.UUID,
    event_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    res: ResourcesDep,
) -> Response:
    """The attendees (buyers of confirmed bookings), and the API's CSV exports as links."""

    async def page(desk: Desk) -> Response:
        event = EventOut.of(await service.own_event(session, event_id, desk.org_id))
        rows, total = await attendees.list_attendees(session, event_id, page=1, limit=100)
        api = f"/api/v1/organizations/{desk.org_id}/events/{event_id}"
        return _render(
            desk.visit,
            res,
            "attendees.html",
            desk=desk,
            title=f"Attendees: {event.name}",
            event=event,
            rows=rows,
            total=total,
            bookings_csv=f"{api}/bookings.csv",
            attendees_csv=f"{api}/attendees.csv",
        )

    return await _serve(request, session, res, org_id, SALES_READERS, page)


# ---- orders ---------------------------------------------------------------------------------


@router.get("/{org_id}/orders")
async def orders_page(
    org_id: uuid.UUID, request: Request, session: SessionDep, res: ResourcesDep
) -> Response:
    """Search by buyer name, email, booking id or ticket code (the ticket's id)."""
    q = request.query_params.get("q", "")[:200]
    try:
        event_id = uuid.UUID(request.query_params.get("event", ""))
    except ValueError:
        event_id = None

    async def page(desk: Desk) -> Response:
        rows = await backoffice.search_orders(session, desk.org_id, q, event_id=event_id)
        return _render(desk.visit, res, "orders.html", desk=desk, title="Orders", q=q, rows=rows)

    return await _serve(request, session, res, org_id, SALES_READERS, page)


async def _history(temporal: TemporalClient, booking_id: uuid.UUID) -> list[dict[str, str]]:
    """The booking's story from its workflow (workflows/booking/client.py), summarized like
    the support route's; empty when Temporal does not answer in time."""
    try:
        story = await asyncio.wait_for(booking_client.story(temporal, booking_id), timeout=5)
    except Exception:
        return []
    return [
        {
            "time": e.time.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
            "type": e.type.removeprefix("EVENT_TYPE_").replace("_", " ").lower(),
            "details": json.dumps(e.details, default=str)[:300] if e.details else "",
        }
        for e in support_service.summarize(story.events)
    ]


@router.get("/{org_id}/orders/{booking_id}")
async def order_page(
    org_id: uuid.UUID,
    booking_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    res: ResourcesDep,
    temporal: TemporalDep,
) -> Response:
    async def page(desk: Desk) -> Response:
        order = await backoffice.get_order(session, desk.org_id, booking_id)
        if order is None:
            raise BookingNotFound(f"No booking {booking_id} in this organization.")
        await end_transaction(session)
        history = await _history(temporal, booking_id)
        return _render(
            desk.visit,
            res,
            "order.html",
            desk=desk,
            title=f"Order {booking_id}",
            order=order,
            history=history,
        )

    return await _serve(request, session, res, org_id, SALES_READERS, page)


# ---- members, the audit log, webhooks -------------------------------------------------------


@router.get("/{org_id}/members")
async def members_page(
    org_id: uuid.UUID, request: Request, session: SessionDep, res: ResourcesDep
) -> Response:
    """The members, for everyone but the door staff (who see only the scanner); owners get
    the forms to add, change and remove."""

    async def page(desk: Desk) -> Response:
        members, _ = await organizations.list_members(session, desk.org_id, page=1, limit=100)
        return _render(
            desk.visit,
            res,
            "members.html",
            desk=desk,
            title="Members",
            members=members,
            roles=[str(r) for r in OrganizationRole],
        )

    return await _serve(request, session, res, org_id, SALES_READERS, page)


@router.get("/{org_id}/audit")
async def audit_page(
    org_id: uuid.UUID, request: Request, session: SessionDep, res: ResourcesDep
) -> Response:
    """The newest 100 entries of the audit log (owners)."""

    async def page(desk: Desk) -> Response:
        entries, total = await audit.list_entries(
            session, desk.org_id, audit.AuditFilter(), page=1, limit=100
        )
        return _render(
            desk.visit,
            res,
            "audit.html",
            desk=desk,
            title="Audit log",
            entries=[AuditEntryOut.of(e) for e in entries],
            total=total,
        )

    return await _serve(request, session, res, org_id, OWNERS, page)


@router.get("/{org_id}/webhooks")
async def webhooks_page(
    org_id: uuid.UUID, request: Request, session: SessionDep, res: ResourcesDep
) -> Response:
    """The webhooks (owners) and each one's 20 latest deliveries."""

    async def page(desk: Desk) -> Response:
        subs, _ = await subscriptions.list_for(session, desk.org_id, page=1, limit=100)
        hooks = []
        for sub in subs:
            rows, total = await subscriptions.list_deliveries(
                session, sub.id, subscriptions.DeliveryFilter(), page=1, limit=20
            )
            hooks.append((WebhookOut.of(sub), [DeliveryOut.of(d) for d in rows], total))
        return _render(desk.visit, res, "webhooks.html", desk=desk, title="Webhooks", hooks=hooks)

    return await _serve(request, session, res, org_id, OWNERS, page)


# ---- the forms -----------------------------------------------------------------------------


@dataclass
class Post:
    """One form sent: what the services need, the form's fields, the ids in its path."""

    session: AsyncSession
    res: Resources
    temporal: TemporalClient
    fields: dict[str, str]
    ids: dict[str, uuid.UUID]


PostAct = Callable[[Desk, Post], Awaitable[str]]


def _path_ids(request: Request) -> dict[str, uuid.UUID]:
    ids = {}
    for name, value in request.path_params.items():
        try:
            ids[name] = uuid.UUID(str(value))
        except ValueError as exc:
            raise Unprocessable(f"{name}: not a valid id.") from exc
    return ids


def _post(path: str, roles: Roles, act: PostAct) -> None:
    """A POST form at ``/manage/{org_id}`` + ``path``, through the gate (:func:`_serve`):
    ``act`` does it and says where to go next (303)."""

    async def route(
        org_id: uuid.UUID,
        request: Request,
        session: SessionDep,
        res: ResourcesDep,
        temporal: TemporalDep,
    ) -> Response:
        fields = await _form(request)

        async def run(desk: Desk) -> Response:
            post = Post(session, res, temporal, fields, _path_ids(request))
            return _done(desk, res, await act(desk, post))

        return await _serve(request, session, res, org_id, roles, run, form=fields)

    route.__name__ = act.__name__.lstrip("_")
    router.post(f"/{{org_id}}{path}")(route)


def _request_key(p: Post) -> str:
    """The form's idempotency key (a fresh one per page shown: a double submit does it once);
    a form without one (a script's POST) gets its own."""
    key = p.fields.get("idempotency_key", "").strip()
    return key[:100] if key else uuid.uuid4().hex


# venues and events


async def _create_venue(desk: Desk, p: Post) -> str:
    await service.create_venue(
        p.session,
        parse(VenueCreate, p.fields),
        organization_id=desk.org_id,
        actor=desk.access.actor,
    )
    return f"{PREFIX}/{desk.org_id}/events/new"


async def _create_event(desk: Desk, p: Post) -> str:
    out = await service.create_event(
        p.session,
        p.res,
        p.temporal,
        parse(EventCreate, p.fields),
        organization_id=desk.org_id,
        actor=desk.access.actor,
    )
    return _event_url(desk, out.id)


def _event_url(desk: Desk, event_id: uuid.UUID) -> str:
    return f"{PREFIX}/{desk.org_id}/events/{event_id}"


async def _edit(desk: Desk, p: Post) -> str:
    event_id = p.ids["event_id"]
    await service.change_event(
        p.session,
        p.res,
        p.temporal,
        event_id,
        parse(EventPatch, p.fields),
        organization_id=desk.org_id,
        actor=desk.access.actor,
    )
    return _event_url(desk, event_id)


async def _publish(desk: Desk, p: Post) -> str:
    event_id = p.ids["event_id"]
    await service.publish_event(
        p.session, p.res, p.temporal, event_id, organization_id=desk.org_id, actor=desk.access.actor
    )
    return _event_url(desk, event_id)


async def _cancel(desk: Desk, p: Post) -> str:
    event_id = p.ids["event_id"]
    await service.cancel_event(
        p.session, p.res, p.temporal, event_id, organization_id=desk.org_id, actor=desk.access.actor
    )
    return _event_url(desk, event_id)


async def _clone(desk: Desk, p: Post) -> str:
    out = await service.clone_event(
        p.session,
        p.res,
        p.temporal,
        p.ids["event_id"],
        parse(EventClone, p.fields),
        organization_id=desk.org_id,
        actor=desk.access.actor,
    )
    return _event_url(desk, out.id)


def _add(model: type[M], create: Callable[..., Awaitable[Any]]) -> PostAct:
    """Add a ticket type or a promo code to the event (the ticket types' service)."""

    async def add(desk: Desk, p: Post) -> str:
        event = await service.own_event(p.session, p.ids["event_id"], desk.org_id)
        body = parse(model, p.fields)
        await create(p.session, p.res, p.temporal, event, body, actor=desk.access.actor)
        return _event_url(desk, event.id)

    add.__name__ = f"add_{create.__name__.removeprefix('create_')}"
    return add


_post("/venues", EVENT_MANAGERS, _create_venue)
_post("/events", EVENT_MANAGERS, _create_event)
for _name, _act in (
    ("edit", _edit),
    ("publish", _publish),
    ("cancel", _cancel),
    ("clone", _clone),
    ("ticket-types", _add(TicketTypeCreate, types_service.create_type)),
    ("promo-codes", _add(PromoCodeCreate, types_service.create_code)),
):
    _post(f"/events/{{event_id}}/{_name}", EVENT_MANAGERS, _act)


# orders: refund (whole, one line), resend the tickets


async def _order_event(desk: Desk, p: Post) -> Event:
    """The order's event (the organization's order, else 404)."""
    order = await backoffice.get_order(p.session, desk.org_id, p.ids["booking_id"])
    if order is None:
        raise BookingNotFound(f"No booking {p.ids['booking_id']} in this organization.")
    return await service.own_event(p.session, order.booking.event_id, desk.org_id)


def _order_url(desk: Desk, p: Post) -> str:
    return f"{PREFIX}/{desk.org_id}/orders/{p.ids['booking_id']}"


async def _refund(desk: Desk, p: Post) -> str:
    """The organizer refund of the whole booking (api/organizer/service.py)."""
    event = await _order_event(desk, p)
    await service.refund_booking(
        p.session, p.temporal, p.res.settings, event, p.ids["booking_id"], actor=desk.access.actor
    )
    return _order_url(desk, p)


async def _refund_line(desk: Desk, p: Post) -> str:
    """Seats of one line: the organizer's ``cancel-lines`` with that one line."""
    event = await _order_event(desk, p)
    line = {"ticket_type_id": p.fields.get("line", ""), "quantity": p.fields.get("quantity", "")}
    await service.refund_lines(
        p.session,
        p.temporal,
        p.res.settings,
        event,
        p.ids["booking_id"],
        validate(CancelLinesRequest, {"lines": [line]}),
        actor=desk.access.actor,
    )
    return _order_url(desk, p)


async def _resend(desk: Desk, p: Post) -> str:
    event = await _order_event(desk, p)
    await service.resend_tickets(
        p.session, event, p.ids["booking_id"], _request_key(p), actor=desk.access.actor
    )
    return _order_url(desk, p)


_post("/orders/{booking_id}/refund", REFUNDERS, _refund)
_post("/orders/{booking_id}/refund-line", REFUNDERS, _refund_line)
_post("/orders/{booking_id}/resend", ORDER_TAKERS, _resend)


# members (the API's service), webhooks


def _members_url(desk: Desk) -> str:
    return f"{PREFIX}/{desk.org_id}/members"


async def _add_member(desk: Desk, p: Post) -> str:
    body = parse(MemberCreate, p.fields)
    await members_service.add_member(p.session, desk.access, email=body.email, role=body.role)
    return _members_url(desk)


async def _change_member_role(desk: Desk, p: Post) -> str:
    body = parse(MemberPatch, p.fields)
    await members_service.change_role(p.session, desk.access, p.ids["user_id"], body.role)
    return _members_url(desk)


async def _remove_member(desk: Desk, p: Post) -> str:
    await members_service.remove_member(p.session, desk.access, p.ids["user_id"])
    return _members_url(desk)


async def _redeliver(desk: Desk, p: Post) -> str:
    """The delivery's message again, as a new delivery (api/webhooks/service.py)."""
    await webhooks_service.redeliver(
        p.session,
        p.temporal,
        desk.access,
        p.ids["webhook_id"],
        p.ids["delivery_id"],
        _request_key(p),
    )
    return f"{PREFIX}/{desk.org_id}/webhooks"


_post("/members", OWNERS, _add_member)
_post("/members/{user_id}/role", OWNERS, _change_member_role)
_post("/members/{user_id}/remove", OWNERS, _remove_member)
_post("/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver", OWNERS, _redeliver)


def _shift_default(hours: int) -> str:
    return _local(datetime.now(UTC) + timedelta(hours=hours))


_templates.globals["default_time"] = _shift_default
_templates.globals["fresh_key"] = lambda: uuid.uuid4().hex  # a form's idempotency key
