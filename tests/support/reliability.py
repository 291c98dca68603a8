"""Helpers of the reliability suite (tests/reliability): its short hold window and call timeout,
sales made straight in Postgres, bounded waits and the invariant checks."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.common import BenchStack, asyncpg_dsn, create_buyers, create_event
from bench.flash_sale import has_block, rows_of, seat_event
from evently.invariants import check

HOLD_SECONDS = 12


RESERVE_TIMEOUT = 3.0


CALL_TIMEOUT = 15.0  # no API call may take longer than this (they must fail fast instead)


@dataclass
class Sale:
    event_id: uuid.UUID
    capacity: int
    buyers: list[tuple[uuid.UUID, str]]

    def headers(self, i: int) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.buyers[i][1]}"}


async def new_sale(st: BenchStack, capacity: int, buyers: int) -> Sale:
    conn = await asyncpg.connect(asyncpg_dsn(st.database_url), timeout=10)
    try:
        event_id = await create_event(conn, capacity)
        accounts = await create_buyers(conn, st.settings, buyers)
    finally:
        await conn.close()
    return Sale(event_id, capacity, accounts)


async def new_seated_sale(st: BenchStack, seats: int, buyers: int) -> Sale:
    """A sale of a seated event (issue 34): bench's plan of ``seats`` seats in rows of 20."""
    sale = await new_sale(st, capacity=seats, buyers=buyers)
    conn = await asyncpg.connect(asyncpg_dsn(st.database_url), timeout=10)
    try:
        await seat_event(st.database_url, conn, sale.event_id, seats)
    finally:
        await conn.close()
    return sale


@dataclass(frozen=True)
class SeatClaim:
    """A booking's claim on a seat: from ``start`` (its request sent, or its row created,
    whichever is first) to ``end`` (the seat released; None: still held or sold)."""

    booking_id: str
    seat_id: str
    start: datetime
    end: datetime | None


def seated_refusal_true(
    ask: dict[str, Any],
    code: str,
    sent: datetime,
    received: datetime,
    own: str,
    claims: list[SeatClaim],
    layout: list[tuple[str, int, int, int]],
    grace: timedelta,
) -> bool:
    """Was a seated reserve's refusal (``ask``: its body; ``code``: ``seats_taken`` or
    ``sold_out``) true at some moment while it was being answered, between ``sent`` and
    ``received``? A seat counts as taken by another booking than ``own`` from its claim's
    start until ``grace`` after its release (the gate hears of a release just after it
    commits). True when, at such a moment: ``sold_out``, fewer seats free than asked; asked
    seats by id, one of them taken; best available, no block of ``quantity`` adjacent free
    seats in one row."""
    rows = rows_of(layout)
    every = {seat_id for seat_id, *_ in layout}
    asked = len(ask["seats"]) if "seats" in ask else ask["quantity"]
    others = [c for c in claims if c.booking_id != own]
    # the taken set only grows at a claim's start: those and ``sent`` are the moments to try
    for t in [sent, *sorted(c.start for c in others if sent < c.start <= received)]:
        taken = {c.seat_id for c in others if c.start <= t and (c.end is None or c.end + grace > t)}
        if code == "sold_out":
            true = len(every - taken) < asked
        elif "seats" in ask:
            true = any(s in taken for s in ask["seats"])
        else:
            true = not has_block(rows, every - taken, asked)
        if true:
            return True
    return False


async def wait_until(predicate: Any, timeout: float, what: str, interval: float = 0.3) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if await predicate():
                return
        except (OSError, asyncpg.PostgresError, httpx.HTTPError):
            pass  # a server is still coming back
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


async def statuses(engine: AsyncEngine, event_id: uuid.UUID) -> dict[str, int]:
    from sqlalchemy import text

    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT status, count(*) AS n FROM bookings WHERE event_id = :e GROUP BY status"),
            {"e": event_id},
        )
        return {r.status: r.n for r in rows}


async def counters(engine: AsyncEngine, event_id: uuid.UUID) -> tuple[int, int, int]:
    from sqlalchemy import text

    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text("SELECT available, held, sold FROM events WHERE id = :e"), {"e": event_id}
            )
        ).one()
    return row.available, row.held, row.sold


async def assert_invariants(engine: AsyncEngine, event_id: uuid.UUID) -> None:
    async with engine.connect() as conn:
        violations = await check(conn, event_id)
    assert not violations, [str(v) for v in violations]
