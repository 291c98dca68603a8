"""An organization's venues, events and sales: ``/organizations/{org_id}/venues``, ``/events``,
``/events/{id}`` (+ ``/publish``, ``/analytics``, ``/checkins``, ``/bookings``, ``/attendees``,
their ``.csv`` exports, ``/bookings/{id}/refund`` and ``/cancel-lines``). Ticket types and
promo codes: api/ticket_types/endpoints.py. The one API for event management: the platform
admin (user role ``admin``) uses these routes for any organization, as an owner, audited as
``admin:<id>`` (api/organizations/deps.py); the ``/admin/...`` routes are deprecated aliases
of these (api/admin/endpoints.py), and both call api/organizer/service.py.

Roles: every member reads venues and events (drafts included) and the check-in counts; owners
and managers create, change, publish and cancel; owners, managers and finance read bookings,
attendees, exports and analytics; owners and finance refund (whole or in part, within the
event's refund policy; never a checked-in ticket). Anything of another organization
is 404, as if it did not exist (every query is scoped by the organization in the path)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response, status
from fastapi.responses import JSONResponse, StreamingResponse

from api.analytics.schemas import EventAnalyticsOut
from api.bookings.endpoints import CANCEL_LINES_PROBLEMS, gate, pending_answer
from api.bookings.schemas import CancelLinesRequest, CancelLinesResponse, PendingBooking
from api.checkin.schemas import CheckinStatsOut
from api.deps import ResourcesDep, SessionDep, SettingsDep, TemporalDep
from api.events.schemas import EventOut, EventPage, ReasonableDate, StorableText, VenueOut
from api.http.dates import starts_between
from api.http.links import PageLinksDep
from api.invoices.endpoints import InvoiceList, invoice_items
from api.organizations.deps import AnyMember, EventManager, OrderTaker, Refunder, SalesReader
from api.organizer import service
from api.organizer.schemas import (
    AttendeeOut,
    AttendeePage,
    CancellationAccepted,
    EventClone,
    EventCreate,
    EventPatch,
    MarkPaidOut,
    OrderCreate,
    OrderOut,
    OrganizerBookingOut,
    OrganizerBookingPage,
    RefundOut,
    TaxRuleCreate,
    TaxRuleList,
    TaxRuleOut,
    TaxRulePatch,
    TicketsResent,
    VenueCreate,
    VenuePage,
)
from api.problems import problem_responses
from evently import attendees, events, invoices, tax
from evently.enums import EventStatus, ShownBookingStatus
from evently.errors import (
    BookingNotActive,
    BookingNotConfirmed,
    BookingNotFound,
    CapacityBelowCommitted,
    CapacityExceedsVenue,
    ConcurrentChange,
    DuplicateLines,
    EventNotEditable,
    EventNotFound,
    EventNotOnSale,
    IdempotencyKeyReused,
    InvalidCurrency,
    InvalidDateRange,
    InvalidEmail,
    InvalidSchedule,
    InvalidTransition,
    NotABankTransfer,
    QuantityTooLarge,
    RefundNotAllowed,
    ReleaseRefused,
    SalesClosed,
    SeatingPlanNotFound,
    SeatsNotChangeable,
    SoldOut,
    TaxRuleInvalid,
    TaxRuleNotFound,
    TicketCheckedIn,
    TicketTypeNotFound,
    TicketTypeSoldOut,
    TooManyOfType,
    VenueNotFound,
    VenueNotInOrganization,
    WorkflowNotRunning,
    WorkflowTimeout,
)

router = APIRouter(prefix="/organizations/{org_id}", tags=["organizer"])
MAX_PAGE = 100_000
Page = Annotated[int, Query(ge=1, le=MAX_PAGE)]
Limit = Annotated[int, Query(ge=1, le=100)]

_EVENT_RULES = (
    InvalidCurrency,
    InvalidSchedule,
    CapacityExceedsVenue,
    VenueNotFound,
    TaxRuleInvalid,  # issue 31: a fee's tax_rule_id
)
_CHANGE = (EventNotFound, EventNotEditable, InvalidTransition, ConcurrentChange)


class CsvResponse(StreamingResponse):
    media_type = "text/csv"
    charset = "utf-8"


def _csv_responses(what: str) -> dict[int | str, dict[str, Any]]:
    return {
        200: {
            "description": f"{what} as CSV (RFC 4180, UTF-8, a header row first), streamed",
            "content": {"text/csv": {"schema": {"type": "string"}}},
            "headers": {
                "Content-Disposition": {
                    "description": 'attachment; filename="event-<id>-<what>.csv"',
                    "schema": {"type": "string"},
                }
            },
        },
        **problem_responses(EventNotFound),
    }


# ---- venues --------------------------------------------------------------------------------


@router.get("/venues", response_model=VenuePage, summary="The organization's venues")
async def list_venues(
    access: AnyMember,
    session: SessionDep,
    links: PageLinksDep,
    city: Annotated[StorableText | None, Query(max_length=120)] = None,
    page: Page = 1,
    limit: Limit = 20,
) -> VenuePage:
    """Oldest first."""
    venues, total = await events.list_venues(
        session, access.organization.id, city=city, offset=(page - 1) * limit, limit=limit
    )
    links.set(page, limit, total, max_page=MAX_PAGE)
    return VenuePage(items=[VenueOut.of(v) for v in venues], total=total, page=page, limit=limit)


@router.post(
    "/venues",
    status_code=status.HTTP_201_CREATED,
    response_model=VenueOut,
    summary="Create a venue (owners, managers)",
)
async def create_venue(body: VenueCreate, access: EventManager, session: SessionDep) -> VenueOut:
    venue = await service.create_venue(
        session, body, organization_id=access.organization.id, actor=access.actor
    )
    return VenueOut.of(venue)


@router.get(
    "/venues/{venue_id}",
    response_model=VenueOut,
    responses=problem_responses(VenueNotInOrganization),
    summary="One of the organization's venues",
)
async def get_venue(venue_id: uuid.UUID, access: AnyMember, session: SessionDep) -> VenueOut:
    venue = await events.get_venue(session, venue_id, access.organization.id)
    if venue is None:
        raise VenueNotInOrganization(f"No venue {venue_id} in this organization.")
    return VenueOut.of(venue)


# ---- events --------------------------------------------------------------------------------


@router.get(
    "/events",
    response_model=EventPage,
    responses=problem_responses(InvalidDateRange),
    summary="The organization's events, drafts included",
)
async def list_events(
    access: AnyMember,
    session: SessionDep,
    links: PageLinksDep,
    status: EventStatus | None = None,
    venue_id: uuid.UUID | None = None,
    q: Annotated[
        StorableText | None, Query(max_length=200, description="words of the name")
    ] = None,
    date_from: Annotated[ReasonableDate | None, Query(description="starts at or after")] = None,
    date_to: Annotated[
        ReasonableDate | None, Query(description="starts at or before (a date: the whole day)")
    ] = None,
    page: Page = 1,
    limit: Limit = 20,
) -> EventPage:
    """By start time."""
    starts_from, starts_before = starts_between(date_from, date_to)
    items, total = await events.list_organization_events(
        session,
        access.organization.id,
        events.OrganizationEventFilters(
            status=status,
            venue_id=venue_id,
            q=q,
            starts_from=starts_from,
            starts_before=starts_before,
        ),
        offset=(page - 1) * limit,
        limit=limit,
    )
    links.set(page, limit, total, max_page=MAX_PAGE)
    return EventPage(items=[EventOut.of(e) for e in items], total=total, page=page, limit=limit)


@router.post(
    "/events",
    status_code=status.HTTP_201_CREATED,
    response_model=EventOut,
    responses=problem_responses(*_EVENT_RULES, SeatingPlanNotFound),
    summary="Create an event as a draft, at one of the organization's venues (owners, managers)",
)
async def create_event(
    body: EventCreate,
    access: EventManager,
    session: SessionDep,
    res: ResourcesDep,
    temporal: TemporalDep,
) -> EventOut:
    return await service.create_event(
        session, res, temporal, body, organization_id=access.organization.id, actor=access.actor
    )


@router.get(
    "/events/{event_id}",
    response_model=EventOut,
    responses=problem_responses(EventNotFound),
    summary="One of the organization's events (any status)",
)
async def get_event(event_id: uuid.UUID, access: AnyMember, session: SessionDep) -> EventOut:
    return EventOut.of(await service.own_event(session, event_id, access.organization.id))


@router.patch(
    "/events/{event_id}",
    response_model=EventOut,
    responses=problem_responses(
        *_CHANGE, *_EVENT_RULES, CapacityBelowCommitted, SeatingPlanNotFound, SeatsNotChangeable
    ),
    summary="Change an event: fields, capacity, status (owners, managers)",
)
async def update_event(
    event_id: uuid.UUID,
    body: EventPatch,
    access: EventManager,
    session: SessionDep,
    res: ResourcesDep,
    temporal: TemporalDep,
) -> EventOut:
    return await service.change_event(
        session,
        res,
        temporal,
        event_id,
        body,
        organization_id=access.organization.id,
        actor=access.actor,
    )


@router.post(
    "/events/{event_id}/publish",
    response_model=EventOut,
    responses=problem_responses(*_CHANGE),
    summary="Publish a draft: it goes on sale (owners, managers)",
)
async def publish_event(
    event_id: uuid.UUID,
    access: EventManager,
    session: SessionDep,
    res: ResourcesDep,
    temporal: TemporalDep,
) -> EventOut:
    return await service.publish_event(
        session, res, temporal, event_id, organization_id=access.organization.id, actor=access.actor
    )


@router.delete(
    "/events/{event_id}",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=CancellationAccepted,
    responses=problem_responses(*_CHANGE),
    summary="Cancel an event: every booking is cancelled and refunded (owners, managers)",
)
async def cancel_event(
    event_id: uuid.UUID,
    access: EventManager,
    session: SessionDep,
    res: ResourcesDep,
    temporal: TemporalDep,
) -> CancellationAccepted:
    workflow_id = await service.cancel_event(
        session, res, temporal, event_id, organization_id=access.organization.id, actor=access.actor
    )
    return CancellationAccepted(event_id=event_id, workflow_id=workflow_id)


@router.post(
    "/events/{event_id}/clone",
    status_code=status.HTTP_201_CREATED,
    response_model=EventOut,
    responses=problem_responses(EventNotFound, InvalidSchedule, CapacityExceedsVenue),
    summary="Clone an event to new dates: a draft, same venue, types, codes (owners, managers)",
)
async def clone_event(
    event_id: uuid.UUID,
    body: EventClone,
    access: EventManager,
    session: SessionDep,
    res: ResourcesDep,
    temporal: TemporalDep,
) -> EventOut:
    """The copy is a `draft` at the same venue with the same name, description, type, capacity,
    price, currency and waiting-room mode. Its ticket types are copied with their sales windows
    shifted by the offset between the new and the old `starts_at` (nothing held or sold); its
    promo codes likewise (validity shifted, `uses` back to 0, restrictions to types pointing at
    the copies). The source is untouched, whatever its status."""
    return await service.clone_event(
        session,
        res,
        temporal,
        event_id,
        body,
        organization_id=access.organization.id,
        actor=access.actor,
    )


@router.get(
    "/events/{event_id}/analytics",
    response_model=EventAnalyticsOut,
    responses=problem_responses(EventNotFound),
    summary="Sales analytics of one event (owners, managers, finance)",
)
async def get_event_analytics(
    event_id: uuid.UUID, access: SalesReader, session: SessionDep
) -> EventAnalyticsOut:
    return await service.analytics(session, event_id, access.organization.id)


@router.get(
    "/events/{event_id}/checkins",
    response_model=CheckinStatsOut,
    responses=problem_responses(EventNotFound),
    summary="Check-in counts and the latest scans (members)",
)
async def get_checkins(
    event_id: uuid.UUID,
    access: AnyMember,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=200, description="latest scans shown")] = 20,
) -> CheckinStatsOut:
    """Tickets issued, valid, revoked, checked in and not yet; scans by result (offline ones
    and conflicts counted apart); the latest scans and the latest conflicts. Every member may
    read them: owners and managers, finance, and the door staff who run the entrance."""
    return await service.checkin_counts(session, event_id, access.organization.id, limit=limit)


# ---- bookings and attendees ----------------------------------------------------------------


@router.get(
    "/events/{event_id}/bookings",
    response_model=OrganizerBookingPage,
    responses=problem_responses(EventNotFound),
    summary="The event's bookings with their buyers (owners, managers, finance)",
)
async def list_bookings(
    event_id: uuid.UUID,
    access: SalesReader,
    session: SessionDep,
    links: PageLinksDep,
    status: ShownBookingStatus | None = None,
    page: Page = 1,
    limit: Limit = 50,
) -> OrganizerBookingPage:
    """Newest first; `status` filters (`held`, `awaiting_transfer`, `confirmed`, `expired`,
    `cancelled`, `refund_due`, `rejected`): a bank-transfer booking shows `awaiting_transfer`
    while its seats are held, and `refund_due` when its money arrived after they were gone."""
    event = await service.own_event(session, event_id, access.organization.id)
    rows, total = await attendees.list_bookings(
        session, event.id, status=status, page=page, limit=limit
    )
    links.set(page, limit, total, max_page=MAX_PAGE)
    return OrganizerBookingPage(
        items=[OrganizerBookingOut.of(r) for r in rows], total=total, page=page, limit=limit
    )


@router.get(
    "/events/{event_id}/bookings.csv",
    response_class=CsvResponse,
    responses=_csv_responses("the bookings"),
    summary="Export the event's bookings as CSV, streamed (owners, managers, finance)",
)
async def export_bookings(
    event_id: uuid.UUID,
    access: SalesReader,
    session: SessionDep,
    res: ResourcesDep,
    status: ShownBookingStatus | None = None,
) -> CsvResponse:
    """Columns: booking_id, status, quantity, amount, currency, buyer_id, buyer_email,
    buyer_name, created_at, confirmed_at, hold_expires_at, ended_at, end_reason, channel,
    payment, note, payment_reference (status as in the list: `awaiting_transfer`,
    `refund_due`); oldest
    first. Read in pages of 2,000 rows, so any size streams in flat memory."""
    event = await service.own_event(session, event_id, access.organization.id)
    return CsvResponse(
        attendees.bookings_csv(res.engine, event.id, status=status),
        headers={"Content-Disposition": f'attachment; filename="event-{event.id}-bookings.csv"'},
    )


@router.get(
    "/events/{event_id}/attendees",
    response_model=AttendeePage,
    responses=problem_responses(EventNotFound),
    summary="The event's attendees: buyers of confirmed bookings (owners, managers, finance)",
)
async def list_attendees(
    event_id: uuid.UUID,
    access: SalesReader,
    session: SessionDep,
    links: PageLinksDep,
    page: Page = 1,
    limit: Limit = 50,
) -> AttendeePage:
    """In booking order."""
    event = await service.own_event(session, event_id, access.organization.id)
    rows, total = await attendees.list_attendees(session, event.id, page=page, limit=limit)
    links.set(page, limit, total, max_page=MAX_PAGE)
    return AttendeePage(
        items=[AttendeeOut.of(r) for r in rows], total=total, page=page, limit=limit
    )


@router.get(
    "/events/{event_id}/attendees.csv",
    response_class=CsvResponse,
    responses=_csv_responses("the attendees"),
    summary="Export the event's attendees as CSV, streamed (owners, managers, finance)",
)
async def export_attendees(
    event_id: uuid.UUID, access: SalesReader, session: SessionDep, res: ResourcesDep
) -> CsvResponse:
    """Columns: booking_id, buyer_id, buyer_email, buyer_name, quantity, amount, currency,
    confirmed_at; in booking order."""
    event = await service.own_event(session, event_id, access.organization.id)
    return CsvResponse(
        attendees.attendees_csv(res.engine, event.id),
        headers={"Content-Disposition": f'attachment; filename="event-{event.id}-attendees.csv"'},
    )


@router.post(
    "/events/{event_id}/bookings/{booking_id}/refund",
    response_model=RefundOut,
    responses=problem_responses(
        EventNotFound,
        BookingNotFound,
        BookingNotConfirmed,
        BookingNotActive,
        RefundNotAllowed,
        TicketCheckedIn,
        ReleaseRefused,
        WorkflowNotRunning,
        WorkflowTimeout,
    ),
    summary="Refund a confirmed booking and release its seats (owners, finance)",
)
async def refund_booking(
    event_id: uuid.UUID,
    booking_id: uuid.UUID,
    access: Refunder,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
) -> RefundOut:
    """Through the booking's workflow: the payment is refunded (once, keyed by the booking),
    then the seats go back (or to the waitlist). Whatever the buyer's deadline; refused when
    the event's `refund_policy` is `none` (409 `refund_not_allowed`) or a ticket of the
    booking was checked in (409 `ticket_checked_in`, naming the ticket and its scan time)."""
    event = await service.own_event(session, event_id, access.organization.id)
    result = await service.refund_booking(
        session, temporal, settings, event, booking_id, actor=access.actor
    )
    return RefundOut(booking_id=booking_id, status=result.booking_status, refunded=result.refunded)


@router.post(
    "/events/{event_id}/bookings/{booking_id}/cancel-lines",
    response_model=CancelLinesResponse,
    responses=problem_responses(EventNotFound, *CANCEL_LINES_PROBLEMS, RefundNotAllowed),
    summary="Refund part of a confirmed booking: some seats of its lines (owners, finance)",
)
async def refund_lines(
    event_id: uuid.UUID,
    booking_id: uuid.UUID,
    body: CancelLinesRequest,
    access: Refunder,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
) -> CancelLinesResponse:
    """The buyer's `cancel-lines` for the organization (same body, same answer): that part is
    refunded (net of its share of the discount, keyed by booking and change number), its seats
    go back on sale (or to the waitlist) and exactly those tickets are revoked — unused ones
    only (409 `ticket_checked_in` when a line has too few); lines covering every seat left
    cancel the booking. Whatever the buyer's deadline; refused when the event's
    `refund_policy` is `none` (409 `refund_not_allowed`). Audited (`booking.lines_refunded`)."""
    event = await service.own_event(session, event_id, access.organization.id)
    return await service.refund_lines(
        session, temporal, settings, event, booking_id, body, actor=access.actor
    )


@router.post(
    "/events/{event_id}/bookings/{booking_id}/resend-tickets",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=TicketsResent,
    responses=problem_responses(EventNotFound, BookingNotFound, BookingNotConfirmed),
    summary="Mail a confirmed booking's tickets to its buyer again (owners, managers, finance)",
)
async def resend_tickets(
    event_id: uuid.UUID,
    booking_id: uuid.UUID,
    access: OrderTaker,
    session: SessionDep,
    idempotency_key: Annotated[
        str | None, Header(alias="Idempotency-Key", min_length=1, max_length=100)
    ] = None,
) -> TicketsResent:
    """The confirmation mail, with the tickets as they are now, queued again in the mail
    outbox (202: sent by the mail workflow). With an `Idempotency-Key`, once per key: the same
    key again answers the same notice with `queued: false`; without one, every request queues
    a mail. Only a confirmed booking (409 `booking_not_confirmed`). Audited
    (`booking.tickets_resent`)."""
    event = await service.own_event(session, event_id, access.organization.id)
    key = idempotency_key or uuid.uuid4().hex
    return await service.resend_tickets(session, event, booking_id, key, actor=access.actor)


@router.post(
    "/events/{event_id}/bookings/{booking_id}/mark-paid",
    response_model=MarkPaidOut,
    responses={
        202: {
            "model": MarkPaidOut,
            "description": "Taken, but the booking's workflow has not settled it yet: read the "
            "booking again shortly (asking again is safe).",
        },
        **problem_responses(EventNotFound, BookingNotFound, NotABankTransfer, WorkflowTimeout),
    },
    summary="Mark a booking's bank transfer as arrived (owners, finance)",
)
async def mark_paid(
    event_id: uuid.UUID,
    booking_id: uuid.UUID,
    access: Refunder,
    session: SessionDep,
    res: ResourcesDep,
    temporal: TemporalDep,
) -> MarkPaidOut | JSONResponse:
    """Issue 29: the money quoting the booking's `payment_reference` is on the organization's
    account. Within the transfer window the booking is confirmed (tickets issued and mailed,
    as for a card); after it, the late-payment rule: confirmed if its seats are still free,
    else `refund_due` (finance pays the money back). Idempotent: a settled booking answers its
    status again. Audited (`booking.marked_paid`). 409 `not_a_bank_transfer` for a booking not
    reserved with `payment_method: bank_transfer`."""
    event = await service.own_event(session, event_id, access.organization.id)
    status, settled, reference = await service.mark_paid(
        session, res, temporal, event, booking_id, actor=access.actor
    )
    out = MarkPaidOut(
        booking_id=booking_id, status=ShownBookingStatus(status), payment_reference=reference
    )
    if settled:
        return out
    return JSONResponse(out.model_dump(mode="json"), status_code=202)


# ---- issue 29: organizer orders (comp, box office) --------------------------------------------


@router.post(
    "/events/{event_id}/orders",
    status_code=201,
    response_model=OrderOut,
    responses={
        202: {
            "model": PendingBooking,
            "description": "The order was sent but its answer is late: poll the event's "
            "bookings after `Retry-After`, or send it again with the same `Idempotency-Key`.",
            "headers": {"Retry-After": {"schema": {"type": "integer"}}},
        },
        **problem_responses(
            EventNotFound,
            EventNotOnSale,
            SoldOut,
            TicketTypeSoldOut,
            TicketTypeNotFound,
            SalesClosed,
            TooManyOfType,
            DuplicateLines,
            QuantityTooLarge,
            InvalidEmail,
            IdempotencyKeyReused,
        ),
    },
    summary="Order tickets for a buyer: a comp or a box-office sale (owners, managers, finance)",
)
async def create_order(
    event_id: uuid.UUID,
    body: OrderCreate,
    request: Request,
    access: OrderTaker,
    session: SessionDep,
    res: ResourcesDep,
    temporal: TemporalDep,
    idempotency_key: Annotated[
        str | None, Header(alias="Idempotency-Key", min_length=1, max_length=200)
    ] = None,
) -> OrderOut | JSONResponse:
    """A confirmed booking at once, with no card charge: `comp` (a guest-list ticket, 0.00)
    or `box_office` (the full price, recorded as paid at the door). The seats are taken like a
    buyer's (the sold-out gate, the one-statement reserve: never oversold, counted against the
    ticket types and the event) but the waiting room does not apply. The tickets are issued
    and mailed to `buyer.email`; an account is made for a new email (no usable password until
    one is set) or the existing one is used. The payment, the note and the author are
    recorded (audit `booking.ordered`); the bookings list, its CSV (`channel`, `payment`,
    `note`) and the analytics (`by_channel`) show orders apart from card sales. Sold out: 409
    `sold_out`. With an `Idempotency-Key`, sending the same order again answers the same
    booking."""
    lines = body.lines or []
    if len({x.ticket_type_id for x in lines}) < len(lines):
        raise DuplicateLines()
    if body.total > res.settings.max_tickets_per_booking:
        raise QuantityTooLarge(
            f"quantity: at most {res.settings.max_tickets_per_booking} tickets per order.",
        )
    event = await service.own_event(session, event_id, access.organization.id)
    result = await service.create_order(
        session,
        res,
        temporal,
        gate(request),
        event,
        body,
        actor=access.actor,
        idempotency_key=idempotency_key,
    )
    if not isinstance(result, OrderOut):
        return pending_answer(result.booking_id, result.event_id, result.retry_after)
    return result


# ---- money: tax rules (issue 31) ------------------------------------------------------------


@router.post(
    "/tax-rules",
    status_code=status.HTTP_201_CREATED,
    response_model=TaxRuleOut,
    responses=problem_responses(TaxRuleInvalid),
    summary="Create a tax rule (owners, managers, finance)",
)
async def create_tax_rule(
    body: TaxRuleCreate, access: SalesReader, session: SessionDep
) -> TaxRuleOut:
    rule = await tax.create_rule(session, access.organization.id, body.model_dump())
    return TaxRuleOut.of(rule)


@router.get("/tax-rules", response_model=TaxRuleList, summary="The organization's tax rules")
async def list_tax_rules(access: AnyMember, session: SessionDep) -> TaxRuleList:
    """Oldest first."""
    rules = await tax.list_rules(session, access.organization.id)
    return TaxRuleList(items=[TaxRuleOut.of(r) for r in rules])


@router.get(
    "/tax-rules/{rule_id}",
    response_model=TaxRuleOut,
    responses=problem_responses(TaxRuleNotFound),
    summary="One tax rule",
)
async def get_tax_rule(rule_id: uuid.UUID, access: AnyMember, session: SessionDep) -> TaxRuleOut:
    return TaxRuleOut.of(await tax.get_rule(session, access.organization.id, rule_id))


@router.patch(
    "/tax-rules/{rule_id}",
    response_model=TaxRuleOut,
    responses=problem_responses(TaxRuleNotFound, TaxRuleInvalid),
    summary="Change a tax rule, for bookings held from now on (owners, managers, finance)",
)
async def patch_tax_rule(
    rule_id: uuid.UUID, body: TaxRulePatch, access: SalesReader, session: SessionDep
) -> TaxRuleOut:
    """Held and confirmed bookings keep the rate they were priced with."""
    rule = await tax.update_rule(
        session, access.organization.id, rule_id, body.model_dump(exclude_unset=True)
    )
    return TaxRuleOut.of(rule)


# ---- money: the organization's invoices for finance (issue 31) ------------------------------


@router.get(
    "/invoices",
    response_model=InvoiceList,
    summary="Every invoice and credit note of the organization (owners, managers, finance)",
)
async def list_organization_invoices(access: SalesReader, session: SessionDep) -> InvoiceList:
    """In number order (the organization's one sequence per year), at most 10,000."""
    docs = await invoices.of_organization(session, access.organization.id)
    return InvoiceList(items=await invoice_items(session, docs))


@router.get(
    "/invoices.csv",
    response_class=CsvResponse,
    responses={
        200: {
            "description": "the invoices and credit notes as CSV (RFC 4180, UTF-8, a header "
            "row first)",
            "content": {"text/csv": {"schema": {"type": "string"}}},
        }
    },
    summary="Export the organization's invoices and credit notes as CSV (owners, managers, "
    "finance)",
)
async def export_invoices(access: SalesReader, session: SessionDep) -> Response:
    """Columns: number, kind, date, booking_id, refers_to, currency, subtotal, discount, fees,
    tax, taxes (per rate), total, net (total less tax), buyer_name, buyer_vat_id. A credit note
    has its own positive amounts (``kind`` tells them apart)."""
    body = await invoices.csv_export(session, access.organization.id)
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="invoices.csv"'},
    )
