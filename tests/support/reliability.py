"""Helpers of the reliability suite (tests/reliability): its short hold window and call timeout,
sales made straight in Postgres, bounded waits and the invariant checks."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.common import BenchStack, asyncpg_dsn, create_buyers, create_event
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
