"""Event management, the one copy: what the organization routes (``/organizations/{org_id}/...``,
api/organizer/endpoints.py) and their deprecated ``/admin`` aliases (api/admin/endpoints.py)
both call. Writes to venues and events: the change, its audit entry in the same transaction,
and what it sets off after the commit (the availability snapshot, the sold-out gate, the search
index; an event's cancellation through its workflow); reads of an event's analytics and
check-in counts; a booking's refund, whole or in part (issue 29: within the event's refund
policy, never of a checked-in ticket).

``organization_id``: the organization in the path (anything of another one is 404, as if it
did not exist); ``None`` only for the ``/admin`` aliases of a resource that names no
organization yet (a new event goes to its venue's organization)."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from api.analytics.schemas import EventAnalyticsOut
from api.bookings import service as bookings_service
from api.bookings.schemas import CancelLinesRequest, CancelLinesResponse, PriceOut
from api.checkin.schemas import CheckinStatsOut, ScanCounts, ScanOut, TicketCounts
from api.deps import end_transaction
from api.events.schemas import EventOut
from api.organizer.schemas import (
    Buyer,
    EventClone,
    EventCreate,
    EventPatch,
    OrderCreate,
    OrderOut,
    TicketsResent,
    VenueCreate,
    fees_json,
)
from evently import (
    accounts,
    audit,
    backoffice,
    bank_transfer,
    bookings,
    events,
    pricing,
    questions,
    seating,
    ticket_types,
)
from evently.analytics import event_analytics
from evently.audit import Actor
from evently.db.models import Booking, Event, Venue
from evently.enums import BookingStatus, EventStatus, QueueMode
from evently.errors import BookingNotConfirmed, BookingNotFound, DuplicateLines, NotABankTransfer
from evently.infra.resources import Resources
from evently.inventory import availability
from evently.inventory.gate import Gate
from evently.inventory.types import ReserveLine
from evently.settings import Settings
from evently.tickets import checkin
from evently.waitingroom import WaitingRoom
from workflows.admission import client as admission_client
from workflows.booking import client as booking_client
from workflows.booking.contract import (
    BookingInput,
    CancelResult,
    TransferNotice,
    booking_workflow_id,
)
from workflows.connection import TemporalClient
from workflows.event_cancellation import client as cancellation_client
from workflows.search_sync.client import request_index_write

log = logging.getLogger("evently.api.organizer")

_AUDITED = (
    "name",
    "description",
    "venue_id",
    "event_type",
    "starts_at",
    "ends_at",
    "capacity",
    "price",
    "currency",
    "status",
    "refund_policy",
    "bank_transfer",
    "fees",
    "seating_plan_id",
)


async def after_commit(
    res: Resources,
    temporal: TemporalClient,
    session: AsyncSession,
    event: Event | EventOut,
    *,
    seats_changed: bool,
) -> None:
    """After the commit: availability snapshot, sold-out gate, search index. Best effort: the
    change is committed; a lost cache write expires (TTL) and the index can be rebuilt."""
    await availability.refresh(res.redis, session, event.id)
    if seats_changed:
        await Gate(res.redis).reset(event.id)
    await _mirror_queue(res, temporal, event)
    try:
        await asyncio.wait_for(
            request_index_write(temporal, event.id, organization_id=event.organization_id),
            timeout=5,
        )
    except Exception as exc:
        log.warning("could not request the index write of event %s: %r", event.id, exc)


async def _mirror_queue(res: Resources, temporal: TemporalClient, event: Event | EventOut) -> None:
    """The waiting room's mode, mirrored to Redis for the reserve path; a published event whose
    queue is ``on`` gets its admission workflow now (not only at the first join). Best effort:
    each admission tick mirrors the mode again."""
    try:
        await WaitingRoom(res.redis).set_mode(event.id, event.queue)
        if event.status == EventStatus.PUBLISHED and event.queue == QueueMode.ON:
            await asyncio.wait_for(
                admission_client.ensure_running(
                    temporal,
                    event.id,
                    tick_seconds=res.settings.queue_tick_seconds,
                    organization_id=event.organization_id,
                ),
                timeout=5,
            )
    except Exception as exc:
        log.warning("could not set up the waiting room of event %s: %r", event.id, exc)


async def create_venue(
    session: AsyncSession, body: VenueCreate, *, organization_id: uuid.UUID | None, actor: Actor
) -> Venue:
    venue = await events.create_venue(
        session,
        name=body.name,
        address=body.address,
        city=body.city,
        capacity=body.capacity,
        organization_id=organization_id,
    )
    await audit.record_by(
        session,
        actor,
        organization_id=venue.organization_id,
        action="venue.created",
        target_type="venue",
        target_id=venue.id,
        details=body.model_dump(),
    )
    return venue


async def create_event(
    session: AsyncSession,
    res: Resources,
    temporal: TemporalClient,
    body: EventCreate,
    *,
    organization_id: uuid.UUID | None,
    actor: Actor,
) -> EventOut:
    """A draft in the venue's organization (``organization_id``: the venue must be its)."""
    event = await events.create_event(
        session,
        venue_id=body.venue_id,
        name=body.name,
        description=body.description,
        event_type=body.event_type,
        starts_at=body.starts_at,
        ends_at=body.ends_at,
        capacity=body.capacity,
        price=body.price,
        currency=body.currency,
        created_by=actor.user_id,
        organization_id=organization_id,
        refund_policy=body.refund_policy,
        bank_transfer_days=body.bank_transfer.days(),
        fees=fees_json(body.fees),
    )
    if body.seating_plan_id is not None:  # issue 34: capacity = the plan's seats
        await seating.attach_plan(
            session, event.id, body.seating_plan_id, organization_id=event.organization_id
        )
        fresh = await events.get_event(session, event.id, refresh=True)
        assert fresh is not None
        event = fresh
    await audit.record_by(
        session,
        actor,
        organization_id=event.organization_id,
        action="event.created",
        target_type="event",
        target_id=event.id,
        details=body.model_dump(),
    )
    out = EventOut.of(event)
    await end_transaction(session)
    await after_commit(res, temporal, session, out, seats_changed=False)
    return out


async def clone_event(
    session: AsyncSession,
    res: Resources,
    temporal: TemporalClient,
    event_id: uuid.UUID,
    body: EventClone,
    *,
    organization_id: uuid.UUID | None,
    actor: Actor,
) -> EventOut:
    """A new draft at ``body``'s dates: the source's venue, fields, capacity, price, fees,
    waiting room mode, refund policy, bank transfer and ticket transfer settings (deadlines
    shifted by the same offset as the start), its ticket types (sales windows shifted, nothing
    held or sold, tax rules and seat categories kept), promo codes (validity shifted, uses
    reset), questions, and a seated event's plan with the same seats blocked. Any status may
    be cloned (last year's completed event is the usual source)."""
    source = await own_event(session, event_id, organization_id)
    offset = body.starts_at - source.starts_at
    event = await events.create_event(
        session,
        venue_id=source.venue_id,
        name=source.name,
        description=source.description,
        event_type=source.event_type,
        starts_at=body.starts_at,
        ends_at=body.ends_at,
        capacity=source.capacity,
        price=source.price,
        currency=source.currency,
        created_by=actor.user_id,
        organization_id=source.organization_id,
        fees=source.fees,
        refund_policy=source.refund_policy,
        bank_transfer_days=source.bank_transfer_days,
    )
    if source.queue != event.queue:
        event = await events.update_event(session, event.id, {"queue": source.queue})
    event.transfers_allowed = source.transfers_allowed
    event.transfer_deadline = ticket_types.shifted(source.transfer_deadline, offset)
    event.attendee_answers_until = ticket_types.shifted(source.attendee_answers_until, offset)
    await session.flush()
    types, codes, type_map = await ticket_types.clone_offer(session, source, event, offset)
    asked = await questions.clone(session, source.id, event.id, type_map)
    blocked: list[str] = []
    if source.seating_plan_id is not None:  # issue 34: the same plan, the same seats blocked
        await seating.attach_plan(
            session, event.id, source.seating_plan_id, organization_id=event.organization_id
        )
        blocked = await seating.blocked_ids(session, source.id)
        if blocked:
            await seating.set_blocked(session, event.id, blocked, True)
        fresh = await events.get_event(session, event.id, refresh=True)
        assert fresh is not None
        event = fresh
    await audit.record_by(
        session,
        actor,
        organization_id=event.organization_id,
        action="event.cloned",
        target_type="event",
        target_id=event.id,
        details={
            "from_event_id": str(source.id),
            "starts_at": body.starts_at.isoformat(),
            "ends_at": body.ends_at.isoformat(),
            "ticket_types": types,
            "promo_codes": codes,
            "questions": asked,
            "seating_plan_id": None
            if source.seating_plan_id is None
            else str(source.seating_plan_id),
            "blocked_seats": len(blocked),
        },
    )
    out = EventOut.of(event)
    await end_transaction(session)
    await after_commit(res, temporal, session, out, seats_changed=False)
    return out


async def own_event(
    session: AsyncSession, event_id: uuid.UUID, organization_id: uuid.UUID | None
) -> Event:
    """The organization's event (any status), or 404 ``event_not_found``."""
    event = await events.get_event(session, event_id, organization_id=organization_id)
    if event is None:
        raise events.event_not_found(event_id)
    return event


def _diff(before: EventOut, after: EventOut) -> dict[str, Any]:
    old, new = before.model_dump(mode="json"), after.model_dump(mode="json")
    return {k: {"from": old[k], "to": new[k]} for k in _AUDITED if old[k] != new[k]}


async def change_event(
    session: AsyncSession,
    res: Resources,
    temporal: TemporalClient,
    event_id: uuid.UUID,
    body: EventPatch,
    *,
    organization_id: uuid.UUID | None,
    actor: Actor,
) -> EventOut:
    """Fields, capacity, and/or a status along the life cycle (cancelling goes through the
    cancellation workflow)."""
    changes = body.changes()
    event = await own_event(session, event_id, organization_id)
    before = EventOut.of(event)
    # a status equal to the current one is no change; any other must be a valid transition,
    # checked before any field changes
    target = body.status if body.status != event.status else None
    if target is not None:
        events.check_transition(event.status, target)
    if changes:
        event = await events.update_event(session, event_id, changes)
    plan_changed = "seating_plan_id" in body.model_fields_set
    if plan_changed:  # issue 34: drafts only; capacity = the plan's seats
        await seating.attach_plan(
            session, event_id, body.seating_plan_id, organization_id=event.organization_id
        )
        fresh = await events.get_event(session, event_id, refresh=True)
        assert fresh is not None
        event = fresh
    if changes or plan_changed:
        diff = _diff(before, EventOut.of(event))
        if diff:
            await audit.record_by(
                session,
                actor,
                organization_id=event.organization_id,
                action="event.updated",
                target_type="event",
                target_id=event_id,
                details=diff,
            )
    if target == EventStatus.CANCELLED:
        await start_cancellation(res, temporal, session, event, actor)
    elif target == EventStatus.PUBLISHED:
        await events.publish_event(session, event_id)
    elif target == EventStatus.COMPLETED:
        await events.complete_event(session, event_id)
    if target in (EventStatus.PUBLISHED, EventStatus.COMPLETED):
        await audit.record_by(
            session,
            actor,
            organization_id=event.organization_id,
            action=f"event.{target}",
            target_type="event",
            target_id=event_id,
        )
    await end_transaction(session)
    fresh = await events.get_event(session, event_id, refresh=True)
    assert fresh is not None
    out = EventOut.of(fresh)
    await after_commit(
        res,
        temporal,
        session,
        out,
        seats_changed="capacity" in changes or plan_changed or target is not None,
    )
    return out


async def publish_event(
    session: AsyncSession,
    res: Resources,
    temporal: TemporalClient,
    event_id: uuid.UUID,
    *,
    organization_id: uuid.UUID | None,
    actor: Actor,
) -> EventOut:
    """draft → published: on sale from the commit."""
    await own_event(session, event_id, organization_id)
    event = await events.publish_event(session, event_id)
    await audit.record_by(
        session,
        actor,
        organization_id=event.organization_id,
        action="event.published",
        target_type="event",
        target_id=event_id,
    )
    out = EventOut.of(event)
    await end_transaction(session)
    await after_commit(res, temporal, session, out, seats_changed=True)
    return out


async def cancel_event(
    session: AsyncSession,
    res: Resources,
    temporal: TemporalClient,
    event_id: uuid.UUID,
    *,
    organization_id: uuid.UUID | None,
    actor: Actor,
) -> str:
    event = await own_event(session, event_id, organization_id)
    return await start_cancellation(res, temporal, session, event, actor)


async def start_cancellation(
    res: Resources,
    temporal: TemporalClient,
    session: AsyncSession,
    event: Event,
    actor: Actor,
) -> str:
    """Start the cancellation workflow, then mark the event cancelled at once (the workflow
    does that too, idempotently) with its audit entry. The workflow starts first: a 503 from
    Temporal leaves the event untouched, and once it runs every booking is cancelled even if
    we crash here."""
    events.check_transition(event.status, EventStatus.CANCELLED)
    event_id, organization_id = event.id, event.organization_id
    # the field changes of a PATCH that cancels are committed here, before Temporal is asked
    await end_transaction(session)
    workflow_id = await cancellation_client.start(
        temporal, event_id, requested_by=actor.label, organization_id=organization_id
    )
    await events.mark_cancelled(session, event_id)
    await audit.record_by(
        session,
        actor,
        organization_id=organization_id,
        action="event.cancelled",
        target_type="event",
        target_id=event_id,
        details={"workflow_id": workflow_id},
    )
    await end_transaction(session)
    fresh = await events.get_event(session, event_id, refresh=True)
    assert fresh is not None
    await after_commit(res, temporal, session, fresh, seats_changed=True)
    return workflow_id


async def refund_booking(
    session: AsyncSession,
    temporal: TemporalClient,
    settings: Settings,
    event: Event,
    booking_id: uuid.UUID,
    *,
    actor: Actor,
) -> CancelResult:
    """Refund a confirmed booking of the event and release its seats, through the booking's
    workflows (the refund is keyed by the booking: once, however often this is asked). Refused
    when the event's policy is ``none`` (409 ``refund_not_allowed``) or a ticket of the booking
    was checked in (409 ``ticket_checked_in``)."""
    booking = await _event_booking(session, event, booking_id)
    if booking.status != BookingStatus.CONFIRMED:
        raise BookingNotConfirmed(
            f"Only a confirmed booking can be refunded; this one is {booking.status}."
        )
    bookings_service.check_organizer_refund(event.refund_policy)
    organization_id = event.organization_id
    # one update id per organization member: the same member asking again gets the stored
    # result (a buyer's own cancel is "user:<id>", so never confused with this)
    result = await bookings_service.refund_whole(
        session,
        temporal,
        settings,
        booking,
        _organizer_actor(organization_id, actor),
        reason="refunded by the organizer",
        organization_id=organization_id,
    )
    await audit.record_by(
        session,
        actor,
        organization_id=organization_id,
        action="booking.refunded",
        target_type="booking",
        target_id=booking_id,
        details={
            "event_id": event.id,
            "amount": booking.amount,
            "currency": booking.currency,
            "status": result.booking_status,
            "refunded": result.refunded,
        },
    )
    return result


async def _event_booking(session: AsyncSession, event: Event, booking_id: uuid.UUID) -> Booking:
    booking = await bookings.get_booking(session, booking_id)
    if booking is None or booking.event_id != event.id:
        raise BookingNotFound(f"No booking {booking_id} for this event.")
    return booking


def _organizer_actor(organization_id: uuid.UUID, actor: Actor) -> str:
    return f"organization:{organization_id}:{actor.label}"


async def refund_lines(
    session: AsyncSession,
    temporal: TemporalClient,
    settings: Settings,
    event: Event,
    booking_id: uuid.UUID,
    body: CancelLinesRequest,
    *,
    actor: Actor,
) -> CancelLinesResponse:
    """The organizer's partial refund: the buyer's ``cancel-lines`` (same body, same answer,
    the refund keyed by booking and change number), whatever the buyer's deadline, refused
    when the event's policy is ``none`` or too few tickets of a line are unused; audited."""
    wanted = {x.ticket_type_id: x.quantity for x in body.lines}
    if len(wanted) < len(body.lines):
        raise DuplicateLines()
    booking = await _event_booking(session, event, booking_id)
    bookings_service.check_organizer_refund(event.refund_policy)
    organization_id = event.organization_id
    change, result, amount = await bookings_service.cancel_lines(
        session,
        temporal,
        settings,
        booking,
        wanted,
        _organizer_actor(organization_id, actor),
        reason="lines refunded by the organizer",
        organization_id=organization_id,
    )
    await audit.record_by(
        session,
        actor,
        organization_id=organization_id,
        action="booking.lines_refunded",
        target_type="booking",
        target_id=booking_id,
        details={
            "event_id": event.id,
            "lines": [{"ticket_type_id": str(t), "quantity": q} for t, q in sorted(wanted.items())],
            "change": change,
            "refund_amount": amount,
            "currency": booking.currency,
            "status": result.booking_status,
            "refunded": result.refunded,
        },
    )
    return CancelLinesResponse(
        booking_id=booking.id,
        status=result.booking_status,
        change=change,
        refunded=result.refunded,
        refund_amount=amount,
    )


async def resend_tickets(
    session: AsyncSession, event: Event, booking_id: uuid.UUID, key: str, *, actor: Actor
) -> TicketsResent:
    """Mail a confirmed booking's tickets to its buyer again (issue 30), through the mail
    outbox; once per ``key`` (the same key again answers the same notice, queued=False).
    Audited (``booking.tickets_resent``) when queued."""
    booking = await _event_booking(session, event, booking_id)
    if booking.status != BookingStatus.CONFIRMED:
        raise BookingNotConfirmed(
            f"Only a confirmed booking has tickets to send; this one is {booking.status}."
        )
    resent = await backoffice.queue_tickets_mail(session, booking_id, key)
    if resent.queued:
        await audit.record_by(
            session,
            actor,
            organization_id=event.organization_id,
            action="booking.tickets_resent",
            target_type="booking",
            target_id=booking_id,
            details={"event_id": event.id, "notification_id": resent.notification_id},
        )
    return TicketsResent(
        booking_id=booking_id, notification_id=resent.notification_id, queued=resent.queued
    )


async def analytics(
    session: AsyncSession, event_id: uuid.UUID, organization_id: uuid.UUID | None
) -> EventAnalyticsOut:
    event = await own_event(session, event_id, organization_id)
    found = await event_analytics(session, event.id)
    if found is None:
        raise events.event_not_found(event_id)
    return EventAnalyticsOut.of(found)


async def checkin_counts(
    session: AsyncSession, event_id: uuid.UUID, organization_id: uuid.UUID | None, *, limit: int
) -> CheckinStatsOut:
    """The door's tally: tickets checked in or not, scans by result, the latest scans and
    conflicts (``limit`` of each)."""
    event = await own_event(session, event_id, organization_id)
    found = await checkin.stats(session, event.id, limit=limit)
    return CheckinStatsOut(
        event_id=event.id,
        tickets=TicketCounts(
            issued=found.issued,
            valid=found.valid,
            revoked=found.revoked,
            checked_in=found.checked_in,
            not_checked_in=found.not_checked_in,
        ),
        scans=ScanCounts(
            total=sum(found.scans.values()),
            offline=found.offline_scans,
            conflicts=found.conflicts,
            **found.scans,
        ),
        latest=[ScanOut.model_validate(s, from_attributes=True) for s in found.latest],
        latest_conflicts=[
            ScanOut.model_validate(s, from_attributes=True) for s in found.latest_conflicts
        ],
    )


async def create_order(
    session: AsyncSession,
    res: Resources,
    temporal: TemporalClient,
    gate: Gate,
    event: Event,
    body: OrderCreate,
    *,
    actor: Actor,
    idempotency_key: str | None,
) -> OrderOut | bookings_service.Pending:
    """An organizer's order (issue 29): the buyer's account (made for a new email, with no
    usable password) committed first — the reserve statement runs on its own connection —,
    then the seats through the buyer path's gate and one-statement reserve in the booking's
    workflow, which confirms it at once (tickets issued, the confirmation mailed to the
    buyer); the author audited (``booking.ordered``). The same ``Idempotency-Key`` for the
    same buyer names the same booking: a retry answers it again and takes nothing."""
    buyer, created = await accounts.ensure_buyer(session, body.buyer.email, body.buyer.name)
    buyer_id, email, name = buyer.id, buyer.email, buyer.full_name
    organization_id = event.organization_id
    event_id = event.id
    await end_transaction(session)
    booking_id = bookings.booking_id_for(
        buyer_id, f"order:{idempotency_key}" if idempotency_key else None
    )
    result = await bookings_service.place_order(
        res,
        temporal,
        gate,
        booking_id=booking_id,
        user_id=buyer_id,
        event_id=event_id,
        quantity=body.total,
        lines=None
        if body.lines is None
        else [
            ReserveLine(ticket_type_id=x.ticket_type_id, quantity=x.quantity) for x in body.lines
        ],
        channel=body.payment,
        note=body.note,
        organization_id=organization_id,
    )
    if isinstance(result, bookings_service.Pending):
        return result
    await audit.record_by(
        session,
        actor,
        organization_id=organization_id,
        action="booking.ordered",
        target_type="booking",
        target_id=booking_id,
        details={
            "event_id": event_id,
            "payment": body.payment,
            "note": body.note,
            "quantity": result.quantity,
            "amount": result.amount,
            "currency": result.currency,
            "buyer_email": email,
            "buyer_account_created": created,
        },
    )
    return OrderOut(
        booking_id=booking_id,
        event_id=event_id,
        status=result.status,
        quantity=result.quantity,
        amount=result.amount,
        currency=result.currency,
        channel=body.payment,
        payment=body.payment,
        note=body.note,
        buyer=Buyer(id=buyer_id, email=email, name=name),
        buyer_account_created=created,
        workflow_id=booking_workflow_id(booking_id),
        price=PriceOut.model_validate(
            result.price or pricing.simple_answer(result.amount, result.discount, result.currency)
        ),
    )


# ---- issue 29: a bank transfer arrived --------------------------------------------------------

MARK_PAID_WAIT_SECONDS = 10.0
_SETTLED = (BookingStatus.CONFIRMED, bank_transfer.REFUND_DUE)


async def mark_paid(
    session: AsyncSession,
    res: Resources,
    temporal: TemporalClient,
    event: Event,
    booking_id: uuid.UUID,
    *,
    actor: Actor,
) -> tuple[str, bool, str]:
    """Finance saw the booking's bank transfer arrive: the booking's workflow confirms it
    (tickets and the confirmation mail as for a card), or, after the window, applies the
    late-payment rule (confirmed if the seats are still free, else ``refund_due``). Idempotent:
    a settled booking answers its status and nothing is signalled or audited again. Returns
    the status shown, whether it is settled (False: still settling when the wait ended) and the
    booking's payment reference."""
    booking = await _event_booking(session, event, booking_id)
    if booking.payment_reference is None:
        raise NotABankTransfer()
    shown = bank_transfer.shown_status(
        booking.status, booking.payment_reference, booking.refund_due
    )
    reference = booking.payment_reference
    if shown in _SETTLED:
        return shown, True, reference
    await audit.record_by(
        session,
        actor,
        organization_id=event.organization_id,
        action="booking.marked_paid",
        target_type="booking",
        target_id=booking_id,
        details={
            "event_id": event.id,
            "payment_reference": booking.payment_reference,
            "amount": booking.amount,
            "currency": booking.currency,
            "status": shown,
        },
    )
    data = BookingInput(
        booking_id=booking.id,
        event_id=booking.event_id,
        user_id=booking.user_id,
        quantity=booking.quantity,
        hold_seconds=res.settings.hold_seconds,
        bank_transfer=True,
    )
    await end_transaction(session)  # the audit entry stands before the Temporal round trip
    await booking_client.mark_transfer_received(
        temporal,
        data,
        TransferNotice(actor=_organizer_actor(event.organization_id, actor)),
        organization_id=event.organization_id,
    )
    deadline = time.monotonic() + MARK_PAID_WAIT_SECONDS
    while True:
        shown = await bank_transfer.shown_status_of(res.engine, booking_id)
        if shown in _SETTLED or time.monotonic() >= deadline:
            return shown, shown in _SETTLED, reference
        await asyncio.sleep(0.1)
