"""The waitlist's commands that go through workflows: accept an offer (a held booking, through
the booking workflow) and leave/decline (through the event's waitlist workflow)."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from api.deps import end_transaction
from evently import seating, waitlist
from evently.db.models import Booking
from evently.enums import BookingStatus, ReserveOutcome, WaitlistStatus
from evently.errors import OfferNotOpen, ServiceUnavailable, WaitlistEntryNotActive
from evently.infra.resources import Resources
from evently.inventory import availability
from evently.inventory.types import Reservation
from evently.organizations import organization_of_event
from workflows.booking import client as booking_client
from workflows.booking.contract import BookingInput
from workflows.connection import TemporalClient
from workflows.waitlist import client as waitlist_client
from workflows.waitlist.contract import LeaveResult

log = logging.getLogger("evently.api.waitlist")


async def after_join(
    res: Resources,
    temporal: TemporalClient,
    session: AsyncSession,
    event_id: uuid.UUID,
    joined: waitlist.Joined,
) -> None:
    """After the join commits: the snapshot's waitlist length, and a poke when seats are
    already kept for the waitlist (nobody ahead fitted them: maybe this one does)."""
    await availability.refresh(res.redis, session, event_id)
    if joined.pooled:
        try:
            await waitlist_client.poke(
                temporal,
                event_id,
                offer_seconds=res.settings.waitlist_offer_seconds,
                organization_id=await organization_of_event(res.engine, event_id),
            )
        except Exception as exc:  # the pool waits in Postgres; the next release pokes again
            log.warning("could not poke the waitlist of %s: %s", event_id, exc)


def _held(booking: Booking) -> Reservation:
    return Reservation(
        booking_id=booking.id,
        event_id=booking.event_id,
        quantity=booking.quantity,
        status=BookingStatus.HELD,
        hold_expires_at=booking.hold_expires_at,
        amount=booking.amount,
        currency=booking.currency,
    )


async def accept(
    res: Resources,
    temporal: TemporalClient,
    session: AsyncSession,
    *,
    user_id: uuid.UUID,
    entry_id: uuid.UUID,
) -> Reservation:
    """Turn the caller's open offer into a HELD booking through the normal BookingWorkflow (not
    the sold-out gate: the booking adopts the offered seats). Accepting again answers the same
    booking."""
    entry = await waitlist.own_entry(session, user_id, entry_id)
    if entry.status == WaitlistStatus.ACCEPTED and entry.booking_id is not None:
        booking = await session.get(Booking, entry.booking_id)
        if booking is not None and booking.status != BookingStatus.HELD:
            raise OfferNotOpen(f"This offer was accepted; its booking is {booking.status}.")
        if booking is not None:
            return _held(booking)
    if (
        entry.status != WaitlistStatus.OFFERED
        or entry.offer_id is None
        or waitlist.offer_lapsed(entry, datetime.now(UTC))
    ):
        raise waitlist.not_open(entry)
    await end_transaction(session)  # release the connection before talking to Temporal
    data = BookingInput(
        booking_id=waitlist.booking_id_for_offer(entry.offer_id),
        event_id=entry.event_id,
        user_id=user_id,
        quantity=entry.offered_quantity,
        hold_seconds=res.settings.hold_seconds,
        waitlist_entry_id=entry.id,
        seated=await seating.is_seated(res.engine, entry.event_id),  # issue 34
    )
    result = await booking_client.start_booking(
        temporal,
        data,
        wait_seconds=res.settings.reserve_timeout_seconds,
        organization_id=await organization_of_event(res.engine, entry.event_id),
    )
    if result.status == BookingStatus.HELD:
        return result
    if result.reason == ReserveOutcome.OFFER_NOT_OPEN:
        await session.refresh(entry)
        raise waitlist.not_open(entry)
    raise ServiceUnavailable("Bookings are unavailable right now; retry shortly.")


async def leave(
    res: Resources,
    temporal: TemporalClient,
    session: AsyncSession,
    *,
    user_id: uuid.UUID,
    entry_id: uuid.UUID,
) -> LeaveResult:
    """Leave the waitlist, or decline an open offer (its seats pass to the next in line).

    The change is one keyed transaction here (event row locked first, like every waitlist
    change), then a signal-with-start wakes the event's WaitlistWorkflow to allocate again. No
    workflow update: Temporal admits 10 in-flight updates per workflow, and a rush of buyers
    leaving one event's waitlist must never see a 503 for it."""
    entry = await waitlist.own_entry(session, user_id, entry_id)
    if entry.status not in waitlist.ACTIVE:
        raise WaitlistEntryNotActive(f"This waitlist entry is {entry.status}.")
    event_id = entry.event_id
    await end_transaction(session)  # the leave is its own keyed transaction, then Temporal
    async with res.engine.begin() as conn:
        result = await waitlist.leave(conn, event_id=event_id, entry_id=entry_id, user_id=user_id)
    if result.status != WaitlistStatus.LEFT:
        raise WaitlistEntryNotActive(f"This waitlist entry is {result.status}.")
    async with res.engine.connect() as conn:
        await availability.refresh(res.redis, conn, event_id)
    try:  # a declined offer's seats (or a pool nobody waits for any more) get allocated again
        await waitlist_client.poke(
            temporal,
            event_id,
            offer_seconds=res.settings.waitlist_offer_seconds,
            organization_id=await organization_of_event(res.engine, event_id),
        )
    except Exception as exc:  # committed; the next release or join pokes again
        log.warning("could not poke the waitlist of %s: %s", event_id, exc)
    return result
