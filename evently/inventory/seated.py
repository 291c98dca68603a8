"""The reserve of a seated event's booking (issue 34): its seats (evently/inventory/
reserved.py) and its booking with the counters (evently/inventory/seats.py ``RESERVE``) in ONE
transaction, seats first: all or none."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from evently.enums import BookingStatus, ReserveOutcome
from evently.inventory import reserved, seats
from evently.inventory.types import Counters, Reservation, SeatRef


async def reserve(
    engine: AsyncEngine,
    *,
    booking_id: uuid.UUID,
    event_id: uuid.UUID,
    user_id: uuid.UUID,
    quantity: int,
    hold_seconds: int,
    workflow_id: str,
    seat_ids: list[str] | None = None,
    lines: list[tuple[uuid.UUID | None, int, bool]] | None = None,
    promo_code: str | None = None,
    comp: bool = False,
) -> tuple[Reservation, Counters | None]:
    """Hold seats of a seated event: the named ``seat_ids`` (all or none), or per line (ticket
    type, quantity, together) the best available of its category; then the booking and the
    counters (seats.py's reserve statement), all in one transaction. A retry finds the
    booking and reports it (with its seats). Counters are returned when this call took seats."""
    if seat_ids:
        quantity = len(set(seat_ids))
    elif lines:
        quantity = sum(q for _, q, _ in lines)
    found = await recorded(engine, booking_id)
    if found is not None:
        return found, None
    autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
    taken: list[str] = []
    committed = [False]  # set by _reserve_in: the refusal is true of the committed seats
    async with engine.connect() as conn:
        trans = await conn.begin()
        try:
            result = await _reserve_in(
                conn,
                booking_id=booking_id,
                event_id=event_id,
                user_id=user_id,
                quantity=quantity,
                hold_seconds=hold_seconds,
                workflow_id=workflow_id,
                seat_ids=seat_ids,
                lines=lines,
                promo_code=promo_code,
                comp=comp,
                taken=taken,
                committed=committed,
            )
        except DBAPIError as exc:
            await trans.rollback()
            if seats.sqlstate(exc) != seats.REFUSED:
                raise
            result = None  # a line or the code refused after the counters were taken
        except BaseException:
            await trans.rollback()
            raise
        else:
            if result is None:
                await trans.rollback()
            else:
                await trans.commit()
                return result
    # refused: record why (seats taken, or the counters' own reason)
    params = seats.reserve_params(
        booking_id=booking_id,
        event_id=event_id,
        user_id=user_id,
        quantity=quantity,
        hold_seconds=hold_seconds,
        workflow_id=workflow_id,
        lines=[(t, q) for t, q, _ in lines] if lines else None,
        promo_code=promo_code,
        comp=comp,
    )
    async with autocommit.connect() as conn:
        if taken:
            await conn.execute(
                seats.INSERT_REJECTED, {**params, "reason": ReserveOutcome.SEATS_TAKEN.value}
            )
            refused = await seats.as_found(
                conn, booking_id, event_id, quantity, ReserveOutcome.SEATS_TAKEN
            )
            update = {"seats_taken": taken, "refusal_committed": committed[0]}
            return refused.model_copy(update=update), None
        return await seats.refuse(conn, params, promo_code), None


async def recorded(engine: AsyncEngine, booking_id: uuid.UUID) -> Reservation | None:
    """A booking as its row records it: status, hold, frozen price and (seated) the seats it
    still holds; None when there is no row. What a retry of its reserve is answered."""
    async with engine.execution_options(isolation_level="AUTOCOMMIT").connect() as conn:
        row = (await conn.execute(seats.BOOKING, {"booking_id": booking_id})).first()
        return None if row is None else await _found(conn, booking_id, row)


async def _found(conn: AsyncConnection, booking_id: uuid.UUID, row: Any) -> Reservation:
    got = seats.make_reservation(
        booking_id, row.event_id, row.quantity, BookingStatus(row.status), row, row.end_reason
    )
    got = await seats.freeze_price(conn, got)  # a retry reports the frozen breakdown
    return got.model_copy(update={"seats": await reserved.seats_of(conn, booking_id)})


async def _reserve_in(
    conn: AsyncConnection,
    *,
    booking_id: uuid.UUID,
    event_id: uuid.UUID,
    user_id: uuid.UUID,
    quantity: int,
    hold_seconds: int,
    workflow_id: str,
    seat_ids: list[str] | None,
    lines: list[tuple[uuid.UUID | None, int, bool]] | None,
    promo_code: str | None,
    comp: bool,
    taken: list[str],
    committed: list[bool],
) -> tuple[Reservation, Counters | None] | None:
    by_category, default = await reserved.types(conn, event_id)
    held: list[tuple[reserved.TakenSeat, uuid.UUID | None]] = []  # (seat, its ticket type)
    if seat_ids:
        ids = sorted(set(seat_ids))
        got = await reserved.take(conn, event_id, booking_id, ids)
        if got is None:
            free = {
                r.seat_id
                for r in await conn.execute(
                    text(
                        "SELECT seat_id FROM event_seats WHERE event_id = :e "
                        "AND seat_id = ANY (CAST(:ids AS text[])) "
                        "AND booking_id IS NULL AND NOT blocked"
                    ),
                    {"e": event_id, "ids": ids},
                )
            }
            taken.extend(i for i in ids if i not in free)
            committed[0] = bool(taken)
            if not taken:  # freed meanwhile: still refused (all or none), name them all
                taken.extend(ids)
            return None
        held = [(s, by_category.get(s.category, default)) for s in got]
    else:
        for type_id, q, together in lines or [(None, quantity, True)]:
            category = None
            if type_id is not None:
                category = (
                    await conn.execute(reserved.TYPE, {"id": type_id, "event_id": event_id})
                ).scalar()
            got = await reserved.pick(conn, event_id, booking_id, category, q, together)
            if not got:
                taken.append(f"{q} together" if together else str(q))
                # the first line's "no block" is true of the committed seats (a later line's
                # is not: the earlier lines took seats in this transaction)
                committed[0] = got is not None and not held
                return None
            held += [(s, type_id if type_id is not None else default) for s in got]
    if any(t is None for _, t in held):
        taken.extend(s.seat_id for s, t in held if t is None)
        return None
    # the booking's lines: one per ticket type, in the order first met
    per_type: dict[uuid.UUID, int] = {}
    for _, t in held:
        assert t is not None
        per_type[t] = per_type.get(t, 0) + 1
    params = seats.reserve_params(
        booking_id=booking_id,
        event_id=event_id,
        user_id=user_id,
        quantity=len(held),
        hold_seconds=hold_seconds,
        workflow_id=workflow_id,
        lines=list(per_type.items()),
        promo_code=promo_code,
        comp=comp,
    )
    row = (await conn.execute(seats.RESERVE, params)).first()
    if row is None or row.event_id is None:
        return None  # not on sale, sold out (counters), or a retry: rolled back and diagnosed
    await conn.execute(
        reserved.RECORD,
        {
            "booking_id": booking_id,
            "event_id": event_id,
            "ids": [s.seat_id for s, _ in held],
            "types": [t for _, t in held],
        },
    )
    reservation = seats.make_reservation(booking_id, event_id, len(held), BookingStatus.HELD, row)
    if row.priced_lines is not None:  # the breakdown frozen as the GA reserve does (issue 31)
        fees = None if comp else row.fees  # a comp (0.00) carries no fee
        reservation = await seats.freeze(conn, reservation, row.priced_lines, fees, row.rates)
    refs = [SeatRef(id=s.seat_id, section=s.section, row=s.row, label=s.label) for s, _ in held]
    return reservation.model_copy(update={"seats": refs}), seats.counters_of(row)


_LINE_OF = text(
    "SELECT l.ticket_type_id, t.seat_category, t.is_default FROM booking_lines l "
    "JOIN ticket_types t ON t.id = l.ticket_type_id WHERE l.booking_id = :b"
)


async def reserve_from_offer(
    engine: AsyncEngine,
    *,
    booking_id: uuid.UUID,
    entry_id: uuid.UUID,
    event_id: uuid.UUID,
    user_id: uuid.UUID,
    quantity: int,
    hold_seconds: int,
    workflow_id: str,
) -> Reservation:
    """A waitlist offer of a seated event accepted: the booking adopts the offer's counted
    seats (seats.py) and, in the same transaction, the best free seats for them of the
    category the entry waited for, if any (together when a row has a block, else the best
    single seats). The waitlist's pool keeps seats out of the public counters, and the
    allocation's budget per category (evently/waitlist.py) keeps seats of the entry's
    category free for it, so the free seats always cover it. A retry finds the booking."""
    async with engine.connect() as conn:
        trans = await conn.begin()
        try:
            reservation = await seats.reserve_from_offer(
                conn,
                booking_id=booking_id,
                entry_id=entry_id,
                event_id=event_id,
                user_id=user_id,
                quantity=quantity,
                hold_seconds=hold_seconds,
                workflow_id=workflow_id,
            )
            if reservation.status != BookingStatus.HELD:
                await trans.rollback()
                return reservation
            if await reserved.seats_of(conn, booking_id):  # a retry: it has its seats
                await trans.rollback()
                return await _found_by_id(engine, booking_id, reservation)
            # the type the entry waited for (its line): the seats of its category; the
            # default type: any seat (issue 34). Every seat is recorded under that type, so
            # the tickets of the line carry them
            line = (await conn.execute(_LINE_OF, {"b": booking_id})).one()
            category = None if line.is_default else line.seat_category
            got = await reserved.pick(conn, event_id, booking_id, category, quantity, True)
            if not got:
                got = await reserved.pick(conn, event_id, booking_id, category, quantity, False)
            if not got:
                raise RuntimeError(f"no free seats for the offer of booking {booking_id}")
            await conn.execute(
                reserved.RECORD,
                {
                    "booking_id": booking_id,
                    "event_id": event_id,
                    "ids": [s.seat_id for s in got],
                    "types": [line.ticket_type_id] * len(got),
                },
            )
        except BaseException:
            await trans.rollback()
            raise
        await trans.commit()
    refs = [SeatRef(id=s.seat_id, section=s.section, row=s.row, label=s.label) for s in got]
    return reservation.model_copy(update={"seats": refs})


async def _found_by_id(
    engine: AsyncEngine, booking_id: uuid.UUID, reservation: Reservation
) -> Reservation:
    async with engine.connect() as conn:
        return reservation.model_copy(update={"seats": await reserved.seats_of(conn, booking_id)})
