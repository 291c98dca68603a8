"""An event's bookings and attendees as its organizer reads them: pages for the API, and CSV
exports streamed in keyset pages.

An attendee is a buyer of a confirmed booking (one row per booking, with its seats). The
exports read ``EXPORT_PAGE`` rows at a time, each page one short statement on a connection
taken from the pool and given back (``ix_bookings_event_created``: the keyset
``(created_at, id)`` resumes where the last page ended), and yield that page as CSV bytes: an
export of 100,000 rows never holds more than one page, and a slow download never holds a
connection or a transaction open. The price of short statements: rows that change while an
export runs may appear in the state they had when their page was read.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from evently import invoices
from evently.bank_transfer import SHOWN_STATUS_SQL
from evently.enums import ShownBookingStatus

EXPORT_PAGE = 2000

_ROW = f"""
SELECT b.id, {SHOWN_STATUS_SQL} AS status, b.quantity, b.amount, b.currency, b.created_at,
       b.confirmed_at,
       b.hold_expires_at, b.ended_at, b.end_reason, b.user_id, u.email, u.full_name,
       b.channel, b.note, b.payment_reference,
       (SELECT p.provider FROM payments p WHERE p.booking_id = b.id AND p.kind = 'charge'
        AND p.status = 'succeeded') AS payment
FROM bookings b JOIN users u ON u.id = b.user_id
"""


@dataclass(frozen=True)
class BookingRow:
    id: uuid.UUID
    status: str
    quantity: int
    amount: Decimal
    currency: str
    created_at: datetime
    confirmed_at: datetime | None
    hold_expires_at: datetime | None
    ended_at: datetime | None
    end_reason: str | None
    user_id: uuid.UUID
    email: str
    full_name: str
    # issue 29: online (card or free), comp, box_office; the note of an organizer's order; the
    # provider of the booking's charge (stripe/simulated, free, comp, box_office; None: unpaid)
    channel: str = "online"
    note: str | None = None
    payment: str | None = None
    payment_reference: str | None = None  # a bank transfer's (issue 29)

    @classmethod
    def of(cls, row: Any) -> BookingRow:
        return cls(**row._mapping)


async def list_bookings(
    session: AsyncSession,
    event_id: uuid.UUID,
    *,
    status: ShownBookingStatus | None,
    page: int,
    limit: int,
) -> tuple[list[BookingRow], int]:
    """The event's bookings, newest first, with their buyers; ``status`` as shown
    (``awaiting_transfer``, ``refund_due``: evently/bank_transfer.py)."""
    params: dict[str, Any] = {"e": event_id, "s": status, "limit": limit}
    where = f"b.event_id = :e AND (CAST(:s AS text) IS NULL OR {SHOWN_STATUS_SQL} = :s)"
    total = await session.scalar(
        text(f"SELECT count(*) FROM bookings b WHERE {where}"), {"e": event_id, "s": status}
    )
    rows = await session.execute(
        text(
            f"{_ROW} WHERE {where} ORDER BY b.created_at DESC, b.id DESC "
            "LIMIT :limit OFFSET :offset"
        ),
        {**params, "offset": (page - 1) * limit},
    )
    return [BookingRow.of(r) for r in rows], int(total or 0)


async def list_attendees(
    session: AsyncSession, event_id: uuid.UUID, *, page: int, limit: int
) -> tuple[list[BookingRow], int]:
    """Buyers of the event's confirmed bookings, in booking order."""
    where = "b.event_id = :e AND b.status = 'confirmed'"
    total = await session.scalar(
        text(f"SELECT count(*) FROM bookings b WHERE {where}"), {"e": event_id}
    )
    rows = await session.execute(
        text(f"{_ROW} WHERE {where} ORDER BY b.created_at, b.id LIMIT :limit OFFSET :offset"),
        {"e": event_id, "limit": limit, "offset": (page - 1) * limit},
    )
    return [BookingRow.of(r) for r in rows], int(total or 0)


# ---- CSV exports ------------------------------------------------------------------------------

BOOKING_COLUMNS = (
    "booking_id",
    "status",
    "quantity",
    "amount",
    "currency",
    # issue 31: taxes, passed-on fees and net revenue (evently.invoices.booking_money)
    "tax",
    "fees",
    "net",
    "buyer_id",
    "buyer_email",
    "buyer_name",
    "created_at",
    "confirmed_at",
    "hold_expires_at",
    "ended_at",
    "end_reason",
    "channel",
    "payment",
    "note",
    "payment_reference",
    # issue 34: a seated booking's seats, one per seat, " | "-separated (empty: GA)
    "section",
    "row",
    "seat",
)
ATTENDEE_COLUMNS = (
    "booking_id",
    "buyer_id",
    "buyer_email",
    "buyer_name",
    "quantity",
    "amount",
    "currency",
    "confirmed_at",
    # issue 34: the seats of the valid tickets in ticket order, " | "-separated (empty: GA)
    "section",
    "row",
    "seat",
)

#: (section, row, seat label) of each seat of a booking
Seats = list[tuple[str, str, str]]

# the seats a booking holds (held or confirmed; an ended booking gave them back), plan order
_HELD_SEATS = text(
    """
SELECT x.booking_id, e.section, e.row, e.label FROM booking_seats x
JOIN event_seats e ON e.event_id = x.event_id AND e.seat_id = x.seat_id
WHERE x.booking_id = ANY(CAST(:ids AS uuid[])) AND x.released_at IS NULL
ORDER BY x.booking_id, e.section_rank, e.row_rank, e.pos
"""
)
# the seats of a booking's valid tickets, in ticket order (as its attendees are named)
_TICKET_SEATS = text(
    """
SELECT t.booking_id, e.section, e.row, e.label FROM tickets t
JOIN event_seats e ON e.event_id = t.event_id AND e.seat_id = t.seat_id
WHERE t.booking_id = ANY(CAST(:ids AS uuid[])) AND t.status = 'valid'
ORDER BY t.booking_id, t.seat
"""
)

# a cell a spreadsheet would run as a formula is prefixed with "'" (OWASP: CSV injection)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    text_value = str(value)
    if text_value.startswith(_FORMULA_START) and not isinstance(value, Decimal | int):
        return "'" + text_value
    return text_value


_CENT = Decimal("0.01")


def _booking_cells(r: BookingRow, money: tuple[Decimal, Decimal, Decimal]) -> list[str]:
    return [
        _cell(v)
        for v in (
            r.id,
            r.status,
            r.quantity,
            r.amount,
            r.currency,
            *(m.quantize(_CENT) for m in money),
            r.user_id,
            r.email,
            r.full_name,
            r.created_at,
            r.confirmed_at,
            r.hold_expires_at,
            r.ended_at,
            r.end_reason,
            r.channel,
            r.payment,
            r.note,
            r.payment_reference,
        )
    ]


def _attendee_cells(r: BookingRow) -> list[str]:
    return [
        _cell(v)
        for v in (
            r.id,
            r.user_id,
            r.email,
            r.full_name,
            r.quantity,
            r.amount,
            r.currency,
            r.confirmed_at,
        )
    ]


def _seat_cells(seats: Seats) -> list[str]:
    return [_cell(" | ".join(seat[i] for seat in seats)) for i in range(3)]


async def _seated(engine: AsyncEngine, event_id: uuid.UUID) -> bool:
    async with engine.connect() as conn:
        plan = await conn.scalar(
            text("SELECT seating_plan_id FROM events WHERE id = :e"), {"e": event_id}
        )
    return plan is not None


async def _seats(
    engine: AsyncEngine, query: Any, page: Sequence[BookingRow]
) -> dict[uuid.UUID, Seats]:
    found: dict[uuid.UUID, Seats] = {}
    async with engine.connect() as conn:
        for r in await conn.execute(query, {"ids": [b.id for b in page]}):
            found.setdefault(r.booking_id, []).append((r.section, r.row, r.label))
    return found


def _csv(rows: Sequence[Sequence[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return out.getvalue().encode("utf-8")


async def _pages(
    engine: AsyncEngine, event_id: uuid.UUID, extra_where: str, params: dict[str, Any], size: int
) -> AsyncIterator[list[BookingRow]]:
    after: tuple[datetime, uuid.UUID] | None = None
    while True:
        keyset = "AND (b.created_at, b.id) > (:after_at, :after_id)" if after else ""
        async with engine.connect() as conn:
            result = await conn.execute(
                text(
                    f"{_ROW} WHERE b.event_id = :e {extra_where} {keyset} "
                    "ORDER BY b.created_at, b.id LIMIT :size"
                ),
                {
                    **params,
                    "e": event_id,
                    "size": size,
                    **({"after_at": after[0], "after_id": after[1]} if after else {}),
                },
            )
            page = [BookingRow.of(r) for r in result]
        if page:
            yield page
        if len(page) < size:
            return
        after = (page[-1].created_at, page[-1].id)


async def bookings_csv(
    engine: AsyncEngine,
    event_id: uuid.UUID,
    *,
    status: ShownBookingStatus | None = None,
    page_size: int = EXPORT_PAGE,
) -> AsyncIterator[bytes]:
    """The event's bookings as CSV (header first), oldest first, one page at a time."""
    yield _csv([BOOKING_COLUMNS])
    seated = await _seated(engine, event_id)
    extra = f"AND {SHOWN_STATUS_SQL} = :s" if status is not None else ""
    async for page in _pages(engine, event_id, extra, {"s": status} if status else {}, page_size):
        seats = await _seats(engine, _HELD_SEATS, page) if seated else {}
        async with engine.connect() as conn:
            money = await invoices.booking_money(conn, [r.id for r in page])
        yield _csv(
            [[*_booking_cells(r, money[r.id]), *_seat_cells(seats.get(r.id, []))] for r in page]
        )


async def attendees_csv(
    engine: AsyncEngine, event_id: uuid.UUID, *, page_size: int = EXPORT_PAGE
) -> AsyncIterator[bytes]:
    """The event's attendees as CSV (header first), in booking order, one page at a time.
    After the buyer's columns (issue 32): the named attendees (``attendee_names``,
    ``attendee_emails``, one per seat, ``" | "``-separated) and one column per question of the
    event (its label): the booking's answer, or each attendee's, ``" | "``-separated."""
    async with engine.connect() as conn:
        asked = list(
            await conn.execute(
                text(
                    "SELECT id, label, per FROM event_questions WHERE event_id = :e "
                    "ORDER BY position, created_at"
                ),
                {"e": event_id},
            )
        )
    yield _csv([[*ATTENDEE_COLUMNS, "attendee_names", "attendee_emails", *_labels(asked)]])
    seated = await _seated(engine, event_id)
    async for page in _pages(engine, event_id, "AND b.status = 'confirmed'", {}, page_size):
        seats = await _seats(engine, _TICKET_SEATS, page) if seated else {}
        async with engine.connect() as conn:
            named = {
                r.booking_id: (list(r.attendees or []), dict(r.answers or {}))
                for r in await conn.execute(
                    text(
                        "SELECT booking_id, attendees, answers FROM booking_attendees "
                        "WHERE booking_id = ANY(CAST(:ids AS uuid[]))"
                    ),
                    {"ids": [r.id for r in page]},
                )
            }
        yield _csv(
            [
                [
                    *_attendee_cells(r),
                    *_seat_cells(seats.get(r.id, [])),
                    *_answer_cells(asked, *named.get(r.id, ([], {}))),
                ]
                for r in page
            ]
        )


def _labels(asked: Sequence[Any]) -> list[str]:
    seen: dict[str, int] = {}
    labels = []
    for q in asked:
        n = seen[q.label] = seen.get(q.label, 0) + 1
        labels.append(_cell(q.label if n == 1 else f"{q.label} ({n})"))
    return labels


def _answer(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return " ".join(str(value).split())  # one line: no newlines inside a cell


def _answer_cells(
    asked: Sequence[Any], attendees: list[dict[str, Any]], answers: dict[str, Any]
) -> list[str]:
    cells = [
        _cell(" | ".join(_answer(a.get("name")) for a in attendees)),
        _cell(" | ".join(_answer(a.get("email")) for a in attendees)),
    ]
    for q in asked:
        if q.per == "booking":
            cells.append(_cell(_answer(answers.get(str(q.id)))))
        else:
            cells.append(
                _cell(
                    " | ".join(_answer((a.get("answers") or {}).get(str(q.id))) for a in attendees)
                )
            )
    return cells


# ---- one booking's attendees and answers, for the order page (issue 32) -------------------------


@dataclass(frozen=True)
class AttendeeView:
    seat: int  # 1-based, in the booking's order (the i-th ticket as issued)
    name: str
    email: str
    answers: list[tuple[str, str]]  # (question label, answer as the export writes it)


async def of_booking(
    session: AsyncSession, booking_id: uuid.UUID, event_id: uuid.UUID
) -> tuple[list[AttendeeView], list[tuple[str, str]]]:
    """The booking's attendees with their per-ticket answers, and its per-booking answers,
    labelled by the event's questions (answers to removed questions are left out)."""
    row = (
        await session.execute(
            text("SELECT attendees, answers FROM booking_attendees WHERE booking_id = :b"),
            {"b": booking_id},
        )
    ).first()
    if row is None:
        return [], []
    asked = list(
        await session.execute(
            text(
                "SELECT id, label, per FROM event_questions WHERE event_id = :e "
                "ORDER BY position, created_at"
            ),
            {"e": event_id},
        )
    )
    labels = dict(zip([q.id for q in asked], _labels(asked), strict=True))

    def answered(per: str, given: dict[str, Any]) -> list[tuple[str, str]]:
        return [
            (labels[q.id], _answer(given.get(str(q.id))))
            for q in asked
            if q.per == per and _answer(given.get(str(q.id)))
        ]

    people = [
        AttendeeView(
            seat=i + 1,
            name=_answer(a.get("name")),
            email=_answer(a.get("email")),
            answers=answered("ticket", a.get("answers") or {}),
        )
        for i, a in enumerate(row.attendees or [])
    ]
    return people, answered("booking", row.answers or {})
