"""Venues and events: every SQL statement about them. Seat counters change only through
evently/inventory/seats.py (a capacity change is one UPDATE of the event that carries the
counter part seats.capacity_change gives, so ``available + held + sold = capacity`` holds:
never read-modify-write).

Services only ``flush()``; the caller owns the transaction. Every UPDATE of an event bumps
``updated_at``, the version of the cached availability snapshot.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, and_, func, literal, literal_column, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import contains_eager, joinedload
from sqlalchemy.sql.elements import ColumnElement

from evently import refund_policy as refund_policies
from evently.db.models import Event, Notification, Venue
from evently.enums import EventStatus, NotificationKind
from evently.errors import (
    CapacityBelowCommitted,
    CapacityExceedsVenue,
    ConcurrentChange,
    EventNotEditable,
    EventNotFound,
    InvalidCurrency,
    InvalidSchedule,
    InvalidTransition,
    NotFound,
    VenueNotFound,
)
from evently.inventory import seats

# ISO 4217 active currency codes (funds and precious metals excluded).
ISO_4217: frozenset[str] = frozenset(
    """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN
    BWP BYN BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD
    FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY
    KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP
    MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR
    RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT
    TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VED VES VND VUV WST XAF XCD XCG XOF XPF YER
    ZAR ZMW ZWG
    """.split()  # noqa: SIM905 - a table is easier to check against the standard
)

EDITABLE_STATUSES = (EventStatus.DRAFT, EventStatus.PUBLISHED)
# draft → published → cancelled | completed; nothing else
TRANSITIONS: dict[str, frozenset[EventStatus]] = {
    EventStatus.DRAFT: frozenset({EventStatus.PUBLISHED}),
    EventStatus.PUBLISHED: frozenset({EventStatus.CANCELLED, EventStatus.COMPLETED}),
    EventStatus.CANCELLED: frozenset(),
    EventStatus.COMPLETED: frozenset(),
}

_BUMP: ColumnElement[datetime] = literal_column(
    "GREATEST(clock_timestamp(), events.updated_at + interval '1 microsecond')"
)
_CENT = Decimal("0.01")


def event_not_found(event_id: uuid.UUID) -> NotFound:
    return EventNotFound(f"No event {event_id}.")


def check_transition(current: str, target: str) -> None:
    if target not in TRANSITIONS.get(current, frozenset()):
        allowed = sorted(TRANSITIONS.get(current, frozenset()))
        raise InvalidTransition(
            f"An event cannot go from {current!r} to {target!r}"
            + (
                f" (from {current!r}: {', '.join(allowed)})."
                if allowed
                else f"; {current!r} is final."
            ),
            current_status=current,
            requested_status=target,
        )


def check_currency(currency: str) -> str:
    if currency not in ISO_4217:
        raise InvalidCurrency(
            f"currency: {currency!r} is not an ISO 4217 currency code (e.g. EUR, USD, NOK).",
        )
    return currency


def check_schedule(starts_at: datetime, ends_at: datetime) -> None:
    if ends_at <= starts_at:
        raise InvalidSchedule(
            f"ends_at ({ends_at.isoformat()}) must be after starts_at ({starts_at.isoformat()}).",
        )


def check_capacity_fits(capacity: int, venue: Venue) -> None:
    if capacity > venue.capacity:
        raise CapacityExceedsVenue(
            f"capacity {capacity} exceeds the capacity of venue {venue.name!r} ({venue.capacity}).",
        )


def money(price: Decimal) -> Decimal:
    return price.quantize(_CENT)


# ---------------------------------------------------------------------------------------------
# venues


async def create_venue(
    session: AsyncSession,
    *,
    name: str,
    address: str,
    city: str,
    capacity: int,
    organization_id: uuid.UUID | None = None,
) -> Venue:
    """A venue of the organization (the default organization when None)."""
    venue = Venue(name=name, address=address, city=city, capacity=capacity)
    if organization_id is not None:
        venue.organization_id = organization_id
    session.add(venue)
    await session.flush()
    await session.refresh(venue)
    return venue


async def get_venue(
    session: AsyncSession, venue_id: uuid.UUID, organization_id: uuid.UUID | None = None
) -> Venue | None:
    """The venue; with ``organization_id``, only if it belongs to that organization."""
    venue = await session.get(Venue, venue_id)
    if (
        venue is not None
        and organization_id is not None
        and venue.organization_id != organization_id
    ):
        return None
    return venue


async def list_venues(
    session: AsyncSession,
    organization_id: uuid.UUID,
    *,
    city: str | None,
    offset: int,
    limit: int,
) -> tuple[list[Venue], int]:
    """An organization's venues, oldest first."""
    where: list[ColumnElement[bool]] = [Venue.organization_id == organization_id]
    if city:
        where.append(func.lower(Venue.city) == city.strip().lower())
    total = await session.scalar(select(func.count()).select_from(Venue).where(*where))
    rows = await session.scalars(
        select(Venue).where(*where).order_by(Venue.created_at, Venue.id).offset(offset).limit(limit)
    )
    return list(rows), int(total or 0)


async def find_venue_by_name(session: AsyncSession, name: str) -> Venue | None:
    return await session.scalar(select(Venue).where(Venue.name == name).order_by(Venue.id).limit(1))


async def _venue_for_event(
    session: AsyncSession, venue_id: uuid.UUID, organization_id: uuid.UUID | None = None
) -> Venue:
    """The venue an event is (to be) held at; with ``organization_id``, one of that
    organization's (an event belongs to its venue's organization)."""
    venue = await get_venue(session, venue_id, organization_id)
    if venue is None:
        where = " in this organization" if organization_id is not None else ""
        raise VenueNotFound(f"venue_id: there is no venue {venue_id}{where}.")
    return venue


# ---------------------------------------------------------------------------------------------
# events: admin writes


async def create_event(
    session: AsyncSession,
    *,
    venue_id: uuid.UUID,
    name: str,
    description: str,
    event_type: str,
    starts_at: datetime,
    ends_at: datetime,
    capacity: int,
    price: Decimal,
    currency: str,
    created_by: uuid.UUID | None,
    status: EventStatus = EventStatus.DRAFT,
    organization_id: uuid.UUID | None = None,
    refund_policy: Any = None,
) -> Event:
    """A new event (``draft`` unless told otherwise, e.g. by the seed) with all seats free, in
    its venue's organization (``organization_id``: the venue must be that organization's)."""
    check_currency(currency)
    check_schedule(starts_at, ends_at)
    venue = await _venue_for_event(session, venue_id, organization_id)
    check_capacity_fits(capacity, venue)
    event = Event(
        organization_id=venue.organization_id,
        venue_id=venue.id,
        name=name,
        description=description,
        event_type=event_type.strip().lower(),
        starts_at=starts_at,
        ends_at=ends_at,
        capacity=capacity,
        available=capacity,
        held=0,
        sold=0,
        price=money(price),
        currency=currency,
        status=status,
        created_by=created_by,
        published_at=func.now() if status == EventStatus.PUBLISHED else None,
        refund_policy=refund_policies.to_json(refund_policy),
    )
    session.add(event)
    await session.flush()
    return await get_event(session, event.id, refresh=True) or event


async def get_event(
    session: AsyncSession,
    event_id: uuid.UUID,
    *,
    refresh: bool = False,
    organization_id: uuid.UUID | None = None,
) -> Event | None:
    """The event with its venue loaded (``refresh``: re-read after a Core UPDATE); with
    ``organization_id``, only if it is that organization's."""
    stmt = select(Event).options(joinedload(Event.venue)).where(Event.id == event_id)
    if organization_id is not None:
        stmt = stmt.where(Event.organization_id == organization_id)
    if refresh:
        stmt = stmt.execution_options(populate_existing=True)
    return await session.scalar(stmt)


_FIELDS = (
    "name",
    "description",
    "event_type",
    "starts_at",
    "ends_at",
    "price",
    "currency",
    "queue",
    "refund_policy",
)


async def update_event(
    session: AsyncSession, event_id: uuid.UUID, changes: dict[str, Any]
) -> Event:
    """Change fields of a draft or published event in one conditional UPDATE.

    ``changes`` may hold name, description, event_type, starts_at, ends_at, price, currency,
    queue (the waiting room's mode), venue_id and capacity. Capacity may grow (the new seats
    become available) or shrink down to ``held + sold``, never below.
    """
    current = await get_event(session, event_id)
    if current is None:
        raise event_not_found(event_id)
    if current.status not in EDITABLE_STATUSES:
        raise EventNotEditable(
            f"A {current.status} event cannot be changed.",
            current_status=current.status,
        )
    values: dict[str, Any] = {k: changes[k] for k in _FIELDS if k in changes}
    if "currency" in values:
        check_currency(values["currency"])
    if "price" in values:
        values["price"] = money(values["price"])
    if "event_type" in values:
        values["event_type"] = values["event_type"].strip().lower()
    if "refund_policy" in values:
        values["refund_policy"] = refund_policies.to_json(values["refund_policy"])
    check_schedule(
        values.get("starts_at", current.starts_at), values.get("ends_at", current.ends_at)
    )
    venue = current.venue
    if "venue_id" in changes and changes["venue_id"] != current.venue_id:
        # another venue of the same organization (an event never changes organization)
        venue = await _venue_for_event(session, changes["venue_id"], current.organization_id)
        values["venue_id"] = venue.id
    capacity: int | None = changes.get("capacity")
    check_capacity_fits(capacity if capacity is not None else current.capacity, venue)

    where: list[ColumnElement[bool]] = [
        Event.id == event_id,
        Event.status.in_(EDITABLE_STATUSES),
    ]
    # guard against a concurrent change of the other end of the schedule (CHECK would 500)
    starts = literal(values["starts_at"]) if "starts_at" in values else Event.starts_at
    ends = literal(values["ends_at"]) if "ends_at" in values else Event.ends_at
    where.append(ends > starts)
    if capacity is not None:
        counters, guard = seats.capacity_change(Event, capacity)
        values.update(counters)
        where.append(guard)
    values["updated_at"] = _BUMP
    changed = await session.scalar(
        update(Event).where(and_(*where)).values(**values).returning(Event.id)
    )
    if changed is None:
        await _explain_refused_update(session, event_id, capacity)
    event = await get_event(session, event_id, refresh=True)
    assert event is not None
    return event


async def _explain_refused_update(
    session: AsyncSession, event_id: uuid.UUID, capacity: int | None
) -> None:
    row = (
        await session.execute(
            select(Event.status, Event.held, Event.sold).where(Event.id == event_id)
        )
    ).first()
    if row is None:
        raise event_not_found(event_id)
    if row.status not in EDITABLE_STATUSES:
        raise EventNotEditable(f"A {row.status} event cannot be changed.")
    if capacity is not None and capacity < row.held + row.sold:
        raise CapacityBelowCommitted(
            f"capacity cannot go below the {row.held + row.sold} seats already held or sold "
            f"({row.held} held, {row.sold} sold).",
            held=row.held,
            sold=row.sold,
        )
    raise ConcurrentChange("The event changed concurrently; retry.")


async def _transition(
    session: AsyncSession, event_id: uuid.UUID, target: str, extra: dict[str, Any]
) -> Event:
    event = await get_event(session, event_id)
    if event is None:
        raise event_not_found(event_id)
    check_transition(event.status, target)
    changed = await session.scalar(
        update(Event)
        .where(Event.id == event_id, Event.status == event.status)
        .values(status=target, updated_at=_BUMP, **extra)
        .returning(Event.id)
    )
    if changed is None:  # someone else moved it first: explain against the new status
        fresh = await get_event(session, event_id, refresh=True)
        if fresh is None:
            raise event_not_found(event_id)
        check_transition(fresh.status, target)
        raise ConcurrentChange("The event changed concurrently; retry.")
    fresh = await get_event(session, event_id, refresh=True)
    assert fresh is not None
    return fresh


async def bump_version(session: AsyncSession, event_id: uuid.UUID) -> None:
    """Move the event's ``updated_at`` on (its cached availability and ETags with it) after a
    change that is not a row of its own, e.g. a ticket type or a promo code."""
    await session.execute(
        update(Event).where(Event.id == event_id).values(updated_at=_BUMP),
        execution_options={"synchronize_session": False},
    )


async def publish_event(session: AsyncSession, event_id: uuid.UUID) -> Event:
    """draft → published: on sale from the commit on."""
    return await _transition(session, event_id, EventStatus.PUBLISHED, {"published_at": func.now()})


async def complete_event(session: AsyncSession, event_id: uuid.UUID) -> Event:
    """published → completed (the event took place)."""
    return await _transition(session, event_id, EventStatus.COMPLETED, {})


async def mark_cancelled(db: AsyncSession | AsyncConnection, event_id: uuid.UUID) -> bool:
    """published → cancelled, idempotently (True when the event is cancelled now or was).
    From the commit on, the reserve statement (``status = 'published'``) takes no seat."""
    await db.execute(
        update(Event)
        .where(Event.id == event_id, Event.status == EventStatus.PUBLISHED)
        .values(status=EventStatus.CANCELLED, cancelled_at=func.now(), updated_at=_BUMP)
    )
    status = await db.scalar(select(Event.status).where(Event.id == event_id))
    return bool(status == EventStatus.CANCELLED)


# ---------------------------------------------------------------------------------------------
# events: public reads


@dataclass(frozen=True)
class EventFilters:
    city: str | None = None
    event_type: str | None = None
    starts_from: datetime | None = None  # inclusive
    starts_before: datetime | None = None  # exclusive


def _published(filters: EventFilters) -> Select[Event]:
    stmt = select(Event).join(Event.venue).where(Event.status == EventStatus.PUBLISHED)
    if filters.city:
        stmt = stmt.where(func.lower(Venue.city) == filters.city.strip().lower())
    if filters.event_type:
        stmt = stmt.where(func.lower(Event.event_type) == filters.event_type.strip().lower())
    if filters.starts_from is not None:
        stmt = stmt.where(Event.starts_at >= filters.starts_from)
    if filters.starts_before is not None:
        stmt = stmt.where(Event.starts_at < filters.starts_before)
    return stmt


async def list_published_events(
    session: AsyncSession, filters: EventFilters, *, offset: int, limit: int
) -> tuple[list[Event], int]:
    """Published events matching the filters, ordered by start time then id (stable pages)."""
    base = _published(filters)
    total = await session.scalar(select(func.count()).select_from(base.subquery())) or 0
    rows = await session.scalars(
        base.options(contains_eager(Event.venue))
        .order_by(Event.starts_at, Event.id)
        .offset(offset)
        .limit(limit)
    )
    return list(rows), total


@dataclass(frozen=True)
class OrganizationEventFilters:
    status: EventStatus | None = None
    venue_id: uuid.UUID | None = None
    q: str | None = None  # words of the name, case-insensitive
    starts_from: datetime | None = None  # inclusive
    starts_before: datetime | None = None  # exclusive


async def list_organization_events(
    session: AsyncSession,
    organization_id: uuid.UUID,
    filters: OrganizationEventFilters,
    *,
    offset: int,
    limit: int,
) -> tuple[list[Event], int]:
    """An organization's events in every status (drafts included), by start time then id
    (``ix_events_organization_starts_at``)."""
    where: list[ColumnElement[bool]] = [Event.organization_id == organization_id]
    if filters.status is not None:
        where.append(Event.status == filters.status)
    if filters.venue_id is not None:
        where.append(Event.venue_id == filters.venue_id)
    if filters.q:
        for word in filters.q.split()[:10]:
            escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            where.append(Event.name.ilike(f"%{escaped}%", escape="\\"))
    if filters.starts_from is not None:
        where.append(Event.starts_at >= filters.starts_from)
    if filters.starts_before is not None:
        where.append(Event.starts_at < filters.starts_before)
    total = await session.scalar(select(func.count()).select_from(Event).where(*where))
    rows = await session.scalars(
        select(Event)
        .options(joinedload(Event.venue))
        .where(*where)
        .order_by(Event.starts_at, Event.id)
        .offset(offset)
        .limit(limit)
    )
    return list(rows), int(total or 0)


async def find_event_by_name(session: AsyncSession, venue_id: uuid.UUID, name: str) -> Event | None:
    return await session.scalar(
        select(Event).where(Event.venue_id == venue_id, Event.name == name).limit(1)
    )


# ---------------------------------------------------------------------------------------------
# event cancellation: bookings to cancel, buyers to notify


@dataclass(frozen=True)
class BookingRef:
    booking_id: uuid.UUID
    user_id: uuid.UUID


async def active_bookings_page(
    db: AsyncSession | AsyncConnection,
    event_id: uuid.UUID,
    *,
    after: uuid.UUID | None,
    limit: int,
) -> list[BookingRef]:
    """Held and confirmed bookings of the event, by id (keyset paging)."""
    rows = await db.execute(
        text(
            "SELECT id, user_id FROM bookings WHERE event_id = :event_id "
            "AND status IN ('held', 'confirmed') AND (CAST(:after AS uuid) IS NULL OR id > :after) "
            "ORDER BY id LIMIT :limit"
        ),
        {"event_id": event_id, "after": after, "limit": limit},
    )
    return [BookingRef(r.id, r.user_id) for r in rows]


async def count_active_bookings(db: AsyncSession | AsyncConnection, event_id: uuid.UUID) -> int:
    n = await db.scalar(
        text(
            "SELECT count(*) FROM bookings WHERE event_id = :event_id "
            "AND status IN ('held', 'confirmed')"
        ),
        {"event_id": event_id},
    )
    return int(n or 0)


def cancellation_dedupe_key(event_id: uuid.UUID, user_id: uuid.UUID) -> str:
    return f"event_cancelled:{event_id}:{user_id}"


async def notify_event_cancelled(
    db: AsyncSession | AsyncConnection,
    event_id: uuid.UUID,
    user_ids: list[uuid.UUID],
) -> int:
    """One ``event_cancelled`` notice per buyer (idempotent: the dedupe key). Returns how many
    notices this call inserted."""
    if not user_ids:
        return 0
    event = (
        await db.execute(select(Event.name, Event.starts_at).where(Event.id == event_id))
    ).first()
    payload = {
        "event_id": str(event_id),
        "event_name": event.name if event else None,
        "starts_at": event.starts_at.isoformat() if event else None,
        "message": "The event was cancelled; your booking was cancelled and any payment refunded.",
    }
    stmt = (
        pg_insert(Notification)
        .values(
            [
                {
                    "id": uuid.uuid4(),
                    "user_id": user_id,
                    "kind": NotificationKind.EVENT_CANCELLED,
                    "dedupe_key": cancellation_dedupe_key(event_id, user_id),
                    "payload": payload,
                }
                for user_id in sorted(set(user_ids))
            ]
        )
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
        .returning(Notification.id)
    )
    return len((await db.execute(stmt)).all())
