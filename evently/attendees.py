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

from evently.enums import BookingStatus

EXPORT_PAGE = 2000

_ROW = """
SELECT b.id, b.status, b.quantity, b.amount, b.currency, b.created_at, b.confirmed_at,
       b.hold_expires_at, b.ended_at, b.end_reason, b.user_id, u.email, u.full_name,
       b.channel, b.note,
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

    @classmethod
    def of(cls, row: Any) -> BookingRow:
        return cls(**row._mapping)


async def list_bookings(
    session: AsyncSession,
    event_id: uuid.UUID,
    *,
    status: BookingStatus | None,
    page: int,
    limit: int,
) -> tuple[list[BookingRow], int]:
    """The event's bookings, newest first, with their buyers."""
    params: dict[str, Any] = {"e": event_id, "s": status, "limit": limit}
    where = "b.event_id = :e AND (CAST(:s AS text) IS NULL OR b.status = :s)"
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


def _booking_cells(r: BookingRow) -> list[str]:
    return [
        _cell(v)
        for v in (
            r.id,
            r.status,
            r.quantity,
            r.amount,
            r.currency,
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
    status: BookingStatus | None = None,
    page_size: int = EXPORT_PAGE,
) -> AsyncIterator[bytes]:
    """The event's bookings as CSV (header first), oldest first, one page at a time."""
    yield _csv([BOOKING_COLUMNS])
    extra = "AND b.status = :s" if status is not None else ""
    async for page in _pages(engine, event_id, extra, {"s": status} if status else {}, page_size):
        yield _csv([_booking_cells(r) for r in page])


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
    async for page in _pages(engine, event_id, "AND b.status = 'confirmed'", {}, page_size):
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
            [[*_attendee_cells(r), *_answer_cells(asked, *named.get(r.id, ([], {})))] for r in page]
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
