"""Reserved seats (issue 34): every statement that gives a seat of a seated event to a booking.

A seat row of ``event_seats`` has one owner, ``booking_id`` (NULL: free; a CHECK forbids a
blocked seat to have one), so a seat cannot be in two bookings by construction. A seat is taken
by one conditional statement (:data:`_TAKE`): the asked seats that are free, locked in seat-id
order (two buyers of overlapping seats never deadlock), then given the booking; its row count
must equal the seats asked, else the transaction is rolled back (all or none). The reserve of
a seated booking (evently/inventory/seated.py) runs in ONE transaction: the seats first (a
refused buyer never waits for the event row), then the counters' one-statement reserve
(evently/inventory/seats.py ``RESERVE``: the booking, its lines, the event's and the types'
counters), so the counters and the seats always agree.

Best available (:func:`pick`): the free seats of the line's category, read without a lock, are
cut into runs of adjacent free seats per row (in Postgres: only the runs that can hold the
block are read); a block of ``q`` seats is placed against an edge
of its run (a run of even length stays even: no single seat is orphaned) in this order: no
orphan left, section rank, row rank, distance to the row's centre. Blocks are tried with
``FOR UPDATE SKIP LOCKED`` (concurrent buyers do not queue behind the same candidates), each in
a subtransaction of its own, server-side in one round trip (migration 0020seattake); when
every candidate was skipped, the seats are read again and the best block is
waited for (a refusal is only ever answered when the committed seats have no block left).

Seats come back in the transaction that ends the booking, whichever statement ends it: the
triggers of migration 0018seating (booking leaves held/confirmed → its seats are freed; a line's
``cancelled`` grows → that many of its seats, highest seat id first). A late payment takes the
same seats again (:func:`take_again`) or is refunded.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from evently.inventory.types import SeatRef

#: how many candidate blocks a line tries with SKIP LOCKED before it waits for the best one
SKIP_TRIES = 8
#: rounds of (read, try) before a contended line gives up (each round re-reads the seats)
MAX_ROUNDS = 20


@dataclass(frozen=True)
class TakenSeat:
    seat_id: str
    section: str
    row: str
    label: str
    category: str


# The asked seats that are free, locked in seat-id order, given to the booking: one statement.
_TAKE = text(
    """
WITH c AS (
    SELECT seat_id FROM event_seats
    WHERE event_id = :event_id AND seat_id = ANY (CAST(:ids AS text[]))
      AND booking_id IS NULL AND NOT blocked
    ORDER BY seat_id
    FOR UPDATE
)
UPDATE event_seats s SET booking_id = :booking_id FROM c
WHERE s.event_id = :event_id AND s.seat_id = c.seat_id
  AND (SELECT count(*) FROM c) = CAST(:n AS integer)
RETURNING s.seat_id, s.section, s.row, s.label, s.category
"""
)

# The free runs of the line's category that can hold a block (gaps and islands: the free
# seats of a row numbered in order; a constant pos - number is one run of adjacent free seats),
# computed in Postgres: a pick reads a few rows per row of seats, not every seat of the event.
_FREE_RUNS = text(
    """
WITH s AS (
    SELECT seat_id, section_rank, row_rank, pos, booking_id IS NULL AND NOT blocked AS free,
           max(pos) OVER (PARTITION BY section_rank, row_rank) AS last_pos
    FROM event_seats
    WHERE event_id = :event_id AND (CAST(:category AS text) IS NULL OR category = :category)
), f AS (
    SELECT seat_id, section_rank, row_rank, pos, last_pos,
           pos - row_number() OVER (PARTITION BY section_rank, row_rank ORDER BY pos) AS island
    FROM s WHERE free
)
SELECT section_rank, row_rank, min(pos) AS first_pos, min(last_pos) AS last_pos,
       array_agg(seat_id ORDER BY pos) AS ids
FROM f GROUP BY section_rank, row_rank, island
HAVING count(*) >= CAST(:q AS integer)
ORDER BY section_rank, row_rank, first_pos
"""
)

# apart (not together): the first free seats in plan order, when no run holds a block
_FIRST_FREE = text(
    """
SELECT seat_id FROM event_seats
WHERE event_id = :event_id AND (CAST(:category AS text) IS NULL OR category = :category)
  AND booking_id IS NULL AND NOT blocked
ORDER BY section_rank, row_rank, pos
LIMIT :q
"""
)

RECORD = text(
    """
INSERT INTO booking_seats (booking_id, event_id, seat_id, ticket_type_id)
SELECT :booking_id, :event_id, s, t
FROM unnest(CAST(:ids AS text[]), CAST(:types AS uuid[])) AS x(s, t)
"""
)

# the ticket type that sells each category (a type naming it; else the default type)
_TYPES = text(
    """
SELECT t.id, t.seat_category, t.is_default FROM ticket_types t
WHERE t.event_id = :event_id AND (t.seat_category IS NOT NULL OR t.is_default)
ORDER BY t.is_default, t.position, t.created_at
"""
)

TYPE = text("SELECT seat_category FROM ticket_types WHERE id = :id AND event_id = :event_id")

_SEATS_OF = text(
    """
SELECT s.seat_id, e.section, e.row, e.label FROM booking_seats s
JOIN event_seats e ON e.event_id = s.event_id AND e.seat_id = s.seat_id
WHERE s.booking_id = :booking_id
  AND (s.released_at IS NULL OR CAST(:all AS boolean))
ORDER BY e.section_rank, e.row_rank, e.pos
"""
)


def _ref(row: Any) -> SeatRef:
    return SeatRef(id=row.seat_id, section=row.section, row=row.row, label=row.label)


async def seats_of(
    conn: AsyncConnection, booking_id: uuid.UUID, *, released_too: bool = False
) -> list[SeatRef]:
    """The booking's seats (still its own, or every seat it ever had)."""
    rows = await conn.execute(_SEATS_OF, {"booking_id": booking_id, "all": released_too})
    return [_ref(r) for r in rows]


_SEATS_OF_MANY = text(
    """
SELECT s.booking_id, s.seat_id, e.section, e.row, e.label FROM booking_seats s
JOIN event_seats e ON e.event_id = s.event_id AND e.seat_id = s.seat_id
WHERE s.booking_id = ANY (CAST(:ids AS uuid[])) AND s.released_at IS NULL
ORDER BY e.section_rank, e.row_rank, e.pos
"""
)


async def seats_of_many(
    conn: AsyncConnection, booking_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[SeatRef]]:
    """The seats each booking still holds (one read; a general-admission booking has none)."""
    out: dict[uuid.UUID, list[SeatRef]] = {b: [] for b in booking_ids}
    if booking_ids:
        for r in await conn.execute(_SEATS_OF_MANY, {"ids": booking_ids}):
            out[r.booking_id].append(_ref(r))
    return out


@dataclass(frozen=True)
class FreeRun:
    """A run of adjacent free seats of one row (``ids`` in seat order, the first at
    ``first_pos``); ``last_pos``: the row's last position (its centre is half of it)."""

    section_rank: int
    row_rank: int
    first_pos: int
    last_pos: int
    ids: list[str]


def _blocks(runs: list[FreeRun], q: int) -> list[list[str]]:
    """Candidate blocks of ``q`` adjacent free seats, best first (see the module's docstring)."""
    scored: list[tuple[tuple[Any, ...], list[str]]] = []
    for run in runs:
        n = len(run.ids)
        if n < q:
            continue
        centre = run.last_pos / 2
        for s in sorted({0, n - q}):  # against an edge of the run
            left, right = s, n - q - s
            orphan = left == 1 or right == 1
            mid = run.first_pos + s + (q - 1) / 2
            key = (orphan, run.section_rank, run.row_rank, abs(mid - centre), s)
            scored.append((key, run.ids[s : s + q]))
    scored.sort(key=lambda x: x[0])
    return [b for _, b in scored]


async def _candidates(
    conn: AsyncConnection, event_id: uuid.UUID, category: str | None, q: int, together: bool
) -> list[list[str]]:
    params = {"event_id": event_id, "category": category, "q": q}
    runs = [FreeRun(*r) for r in await conn.execute(_FREE_RUNS, params)]
    blocks = _blocks(runs, q)
    if blocks or together:
        return blocks
    free = [r.seat_id for r in await conn.execute(_FIRST_FREE, params)]
    return [free] if len(free) == q else []


async def take(
    conn: AsyncConnection,
    event_id: uuid.UUID,
    booking_id: uuid.UUID,
    ids: list[str],
) -> list[TakenSeat] | None:
    """Take exactly these seats (inside a savepoint: a refusal leaves no lock behind)."""
    sp = await conn.begin_nested()
    rows = (
        await conn.execute(
            _TAKE,
            {"event_id": event_id, "booking_id": booking_id, "ids": ids, "n": len(ids)},
        )
    ).all()
    if len(rows) != len(ids):
        await sp.rollback()
        return None
    await sp.commit()
    return [TakenSeat(r.seat_id, r.section, r.row, r.label, r.category) for r in rows]


# the first block whose seats are all free and not locked, taken (migration 0020seattake: each
# block tried in a subtransaction of its own, server-side; no row: every block was skipped)
_TAKE_FIRST = text(
    """
SELECT t_seat_id AS seat_id, t_section AS section, t_row AS row, t_label AS label,
       t_category AS category
FROM evently_take_first_block(:event_id, :booking_id, CAST(:ids AS text[]), :size)
"""
)


async def take_first(
    conn: AsyncConnection, event_id: uuid.UUID, booking_id: uuid.UUID, blocks: list[list[str]]
) -> list[TakenSeat] | None:
    """The first of ``blocks`` (all of one size, best first) whose seats are all free and not
    locked by another buyer, taken — in one round trip; None when every one was skipped."""
    params = {
        "event_id": event_id,
        "booking_id": booking_id,
        "ids": [i for b in blocks for i in b],
        "size": len(blocks[0]),
    }
    rows = (await conn.execute(_TAKE_FIRST, params)).all()
    if not rows:
        return None
    return [TakenSeat(r.seat_id, r.section, r.row, r.label, r.category) for r in rows]


async def pick(
    conn: AsyncConnection,
    event_id: uuid.UUID,
    booking_id: uuid.UUID,
    category: str | None,
    q: int,
    together: bool,
) -> list[TakenSeat] | None:
    """The best free block of ``q`` seats of ``category`` (None: any), taken; ``[]`` when the
    committed seats have no such block (a true refusal: the API may note it, evently/inventory/
    gate.py), None when it gave up after MAX_ROUNDS of contention (blocks may be left)."""
    for _ in range(MAX_ROUNDS):
        candidates = await _candidates(conn, event_id, category, q, together)
        if not candidates:
            return []
        got = await take_first(conn, event_id, booking_id, candidates[:SKIP_TRIES])
        if got is not None:
            return got
        # all skipped or gone: wait for the best one (its holder commits or rolls back)
        got = await take(conn, event_id, booking_id, candidates[0])
        if got is not None:
            return got
    return None


async def types(conn: AsyncConnection, event_id: uuid.UUID) -> tuple[dict[str, uuid.UUID], Any]:
    by_category: dict[str, uuid.UUID] = {}
    default: uuid.UUID | None = None
    for r in await conn.execute(_TYPES, {"event_id": event_id}):
        if r.is_default:
            default = r.id
        elif r.seat_category not in by_category:
            by_category[r.seat_category] = r.id
    return by_category, default


_TAKE_AGAIN = text(
    """
WITH mine AS (
    SELECT seat_id, event_id FROM booking_seats WHERE booking_id = :booking_id
), c AS (
    SELECT e.seat_id FROM event_seats e JOIN mine ON e.event_id = mine.event_id
         AND e.seat_id = mine.seat_id
    WHERE e.booking_id IS NULL AND NOT e.blocked
    ORDER BY e.seat_id FOR UPDATE OF e
), upd AS (
    UPDATE event_seats e SET booking_id = :booking_id FROM c, mine
    WHERE e.event_id = mine.event_id AND e.seat_id = c.seat_id
      AND (SELECT count(*) FROM c) = (SELECT count(*) FROM mine)
    RETURNING e.seat_id
), back AS (
    UPDATE booking_seats s SET released_at = NULL FROM upd
    WHERE s.booking_id = :booking_id AND s.seat_id = upd.seat_id
)
SELECT (SELECT count(*) FROM mine) AS asked, (SELECT count(*) FROM upd) AS got
"""
)


async def take_again(conn: AsyncConnection, booking_id: uuid.UUID) -> bool:
    """A late payment of an expired seated booking: its very seats again, all or none (False:
    some were sold meanwhile; the payment is refunded). A booking without seats: True."""
    row = (await conn.execute(_TAKE_AGAIN, {"booking_id": booking_id})).one()
    return bool(row.asked == row.got)
