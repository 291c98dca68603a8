"""Ticket types and promo codes of an event (issue 15): the organizer's writes and the reads
the API and the caches need. The seats themselves move only in evently/inventory/seats.py.

Decisions (docs/architecture.md, "Ticket types, promo codes and partial cancellation"):
- the event's ``capacity`` is the shared quota; a type's ``capacity`` is an optional cap of
  its own (never below its ``held + sold``); the default type has none (the quota is its cap);
- a type's currency is its event's (one currency per booking);
- the default type's price IS the event's ``price`` (a change to either changes both), so
  clients that only know ``{event_id, quantity}`` keep paying what the event says;
- codes are case-insensitive (stored upper-case), unique per event; ``percent_off`` applies to
  the eligible lines' totals, ``amount_off`` per eligible ticket (at most its price).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from evently.db.models import BookingLine, Event, PromoCode, TicketType
from evently.errors import (
    PromoCodeExists,
    PromoCodeInvalid,
    TicketTypeInvalid,
    TicketTypeNotFound,
)

_CENT = Decimal("0.01")

#: the fields an organizer may set on a type
TYPE_FIELDS = (
    "name",
    "description",
    "price",
    "currency",
    "capacity",
    "sales_start",
    "sales_end",
    "hidden",
    "max_per_booking",
    "tax_rule_id",
)


def _check_window(start: datetime | None, end: datetime | None, what: str) -> None:
    if start is not None and end is not None and end <= start:
        raise TicketTypeInvalid(f"{what}: the end must be after the start.")


async def list_types(
    db: AsyncSession | AsyncConnection, event_id: uuid.UUID, *, visible_only: bool = False
) -> list[TicketType]:
    stmt = select(TicketType).where(TicketType.event_id == event_id)
    if visible_only:
        stmt = stmt.where(TicketType.hidden.is_(False))
    stmt = stmt.order_by(TicketType.position, TicketType.created_at, TicketType.id)
    if isinstance(db, AsyncSession):
        return list(await db.scalars(stmt))
    return [TicketType(**dict(r._mapping)) for r in await db.execute(stmt)]


async def create_type(session: AsyncSession, event: Event, values: dict[str, Any]) -> TicketType:
    currency = values.get("currency") or event.currency
    if currency != event.currency:
        raise TicketTypeInvalid(f"currency: a type is sold in its event's ({event.currency}).")
    _check_window(values.get("sales_start"), values.get("sales_end"), "sales window")
    capacity = values.get("capacity")
    if capacity is not None and capacity > event.capacity:
        raise TicketTypeInvalid("capacity: a type's cap cannot exceed the event's capacity.")
    position = await session.scalar(
        text("SELECT COALESCE(max(position), 0) + 1 FROM ticket_types WHERE event_id = :e"),
        {"e": event.id},
    )
    tt = TicketType(
        event_id=event.id,
        name=values["name"],
        description=values.get("description") or "",
        price=Decimal(values["price"]).quantize(_CENT),
        currency=currency,
        capacity=capacity,
        sales_start=values.get("sales_start"),
        sales_end=values.get("sales_end"),
        hidden=bool(values.get("hidden", False)),
        max_per_booking=values.get("max_per_booking"),
        tax_rule_id=values.get("tax_rule_id"),
        is_default=False,
        position=position,
        held=0,
        sold=0,
    )
    session.add(tt)
    await session.flush()
    return tt


async def get_type(session: AsyncSession, event_id: uuid.UUID, type_id: uuid.UUID) -> TicketType:
    tt = await session.scalar(
        select(TicketType).where(TicketType.id == type_id, TicketType.event_id == event_id)
    )
    if tt is None:
        raise TicketTypeNotFound()
    return tt


async def update_type(
    session: AsyncSession, event: Event, type_id: uuid.UUID, changes: dict[str, Any]
) -> TicketType:
    """One conditional UPDATE: a cap never below the type's ``held + sold`` (concurrent holds
    included: the guard is in the WHERE, on the locked row)."""
    current = await get_type(session, event.id, type_id)
    values = {k: changes[k] for k in TYPE_FIELDS if k in changes}
    if "currency" in values and values["currency"] != event.currency:
        raise TicketTypeInvalid(f"currency: a type is sold in its event's ({event.currency}).")
    values.pop("currency", None)
    if "price" in values:
        if values["price"] is None:
            raise TicketTypeInvalid("price: required.")
        values["price"] = Decimal(values["price"]).quantize(_CENT)
    for flag in ("name", "hidden"):
        if flag in values and values[flag] is None:
            raise TicketTypeInvalid(f"{flag}: cannot be null.")
    if "description" in values and values["description"] is None:
        values["description"] = ""
    _check_window(
        values.get("sales_start", current.sales_start),
        values.get("sales_end", current.sales_end),
        "sales window",
    )
    capacity = values.get("capacity", current.capacity)
    if current.is_default and capacity is not None:
        raise TicketTypeInvalid(
            "capacity: the default type has no cap of its own (the event's capacity is its cap)."
        )
    if capacity is not None and capacity > event.capacity:
        raise TicketTypeInvalid("capacity: a type's cap cannot exceed the event's capacity.")
    if not values:
        return current
    stmt = update(TicketType).where(TicketType.id == type_id).values(**values)
    if "capacity" in values and values["capacity"] is not None:
        stmt = stmt.where(TicketType.held + TicketType.sold <= values["capacity"])
    done = (await session.execute(stmt.returning(TicketType.id))).first()
    if done is None:
        raise TicketTypeInvalid(
            "capacity: below the seats of this type already held or sold "
            f"({current.held + current.sold})."
        )
    if current.is_default and "price" in values:  # the event's price is its default type's
        await session.execute(
            update(Event).where(Event.id == event.id).values(price=values["price"])
        )
    await session.refresh(current)
    return current


# ---- promo codes ----------------------------------------------------------------------------


async def create_code(session: AsyncSession, event: Event, values: dict[str, Any]) -> PromoCode:
    percent, amount = values.get("percent_off"), values.get("amount_off")
    if (percent is None) == (amount is None):
        raise PromoCodeInvalid("Give exactly one of percent_off and amount_off.")
    start, end = values.get("valid_from"), values.get("valid_until")
    if start is not None and end is not None and end <= start:
        raise PromoCodeInvalid("valid_until must be after valid_from.")
    type_ids = values.get("ticket_type_ids")
    if type_ids is not None:
        type_ids = sorted(set(type_ids))
        found = set(
            await session.scalars(
                select(TicketType.id).where(
                    TicketType.event_id == event.id, TicketType.id.in_(type_ids)
                )
            )
        )
        if found != set(type_ids):
            raise PromoCodeInvalid("ticket_type_ids: not all are this event's ticket types.")
    code = PromoCode(
        event_id=event.id,
        code=values["code"].upper(),
        percent_off=percent,
        amount_off=Decimal(amount).quantize(_CENT) if amount is not None else None,
        max_uses=values["max_uses"],
        uses=0,
        valid_from=values.get("valid_from"),
        valid_until=values.get("valid_until"),
        ticket_type_ids=type_ids,
        unlocks_hidden=bool(values.get("unlocks_hidden", False)),
    )
    try:
        async with session.begin_nested():
            session.add(code)
            await session.flush()
    except IntegrityError as exc:
        raise PromoCodeExists() from exc
    return code


async def list_codes(session: AsyncSession, event_id: uuid.UUID) -> list[PromoCode]:
    return list(
        await session.scalars(
            select(PromoCode)
            .where(PromoCode.event_id == event_id)
            .order_by(PromoCode.created_at, PromoCode.id)
        )
    )


# ---- a booking's lines ----


def line_net(line: BookingLine, seats: int) -> Decimal:
    """What ``seats`` of a line cost net of its discount (the discount spread over its seats,
    rounded to the cent). A partial cancellation refunds ``line_net(before) - line_net(after)``,
    so the refunds of a line never add up to more than was paid for it."""
    gross = line.unit_price * seats
    share = (line.discount * seats / line.quantity) if line.quantity else Decimal(0)
    return (gross - share).quantize(_CENT)


# ----------------------------------------------------------------------


async def booking_lines(
    session: AsyncSession, booking_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[tuple[BookingLine, str]]]:
    """The lines of these bookings with their types' names."""
    found: dict[uuid.UUID, list[tuple[BookingLine, str]]] = {b: [] for b in booking_ids}
    if not booking_ids:
        return found
    rows = await session.execute(
        select(BookingLine, TicketType.name)
        .join(TicketType, TicketType.id == BookingLine.ticket_type_id)
        .where(BookingLine.booking_id.in_(booking_ids))
        .order_by(TicketType.position, TicketType.created_at)
    )
    for line, name in rows:
        found[line.booking_id].append((line, name))
    return found


# ---- cloning an event's offer (issue 30) ------------------------------------------------------


def shifted(value: datetime | None, offset: timedelta) -> datetime | None:
    """A clone's date: ``value`` moved by ``offset`` (None stays None)."""
    return None if value is None else value + offset


async def clone_offer(
    session: AsyncSession, source: Event, target: Event, offset: timedelta
) -> tuple[int, int, dict[uuid.UUID, uuid.UUID]]:
    """Copy ``source``'s ticket types and promo codes to ``target`` (a fresh event whose default
    type the insert trigger made): every window shifted by ``offset``, no seat held or sold, no
    code used; each type keeps its tax rule and seat category; a code's ``ticket_type_ids``
    point at the copies. Returns (types, codes, source type id -> its copy's id)."""
    mapping: dict[uuid.UUID, uuid.UUID] = {}
    target_default = await session.scalar(
        select(TicketType).where(TicketType.event_id == target.id, TicketType.is_default)
    )
    types = await list_types(session, source.id)
    for tt in types:
        fields = {
            "name": tt.name,
            "description": tt.description,
            "sales_start": shifted(tt.sales_start, offset),
            "sales_end": shifted(tt.sales_end, offset),
            "hidden": tt.hidden,
            "max_per_booking": tt.max_per_booking,
            "position": tt.position,
            "tax_rule_id": tt.tax_rule_id,
        }
        if tt.is_default and target_default is not None:
            # the default type follows the event's price (the trigger set it): keep that
            await session.execute(
                update(TicketType).where(TicketType.id == target_default.id).values(**fields)
            )
            mapping[tt.id] = target_default.id
            continue
        copy = TicketType(
            event_id=target.id,
            price=tt.price,
            currency=tt.currency,
            capacity=tt.capacity,
            is_default=False,
            held=0,
            sold=0,
            **fields,
        )
        session.add(copy)
        await session.flush()
        mapping[tt.id] = copy.id
    codes = await list_codes(session, source.id)
    for code in codes:
        session.add(
            PromoCode(
                event_id=target.id,
                code=code.code,
                percent_off=code.percent_off,
                amount_off=code.amount_off,
                max_uses=code.max_uses,
                uses=0,
                valid_from=shifted(code.valid_from, offset),
                valid_until=shifted(code.valid_until, offset),
                ticket_type_ids=(
                    None
                    if code.ticket_type_ids is None
                    else sorted(mapping[t] for t in code.ticket_type_ids if t in mapping)
                ),
                unlocks_hidden=code.unlocks_hidden,
            )
        )
    await session.flush()
    if mapping:  # the plan category a seated event's type sells (issue 34; not mapped)
        await session.execute(
            _COPY_SEAT_CATEGORY, {"src": list(mapping), "dst": list(mapping.values())}
        )
    if target_default is not None:
        await session.refresh(target_default)
    return len(types), len(codes), mapping


_COPY_SEAT_CATEGORY = text(
    """
UPDATE ticket_types c SET seat_category = s.seat_category
FROM ticket_types s, unnest(CAST(:src AS uuid[]), CAST(:dst AS uuid[])) AS m(src, dst)
WHERE s.id = m.src AND c.id = m.dst AND s.seat_category IS NOT NULL
"""
)
