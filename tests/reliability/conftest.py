"""A private stack for the reliability suite: its OWN embedded Postgres, Redis and
file-persisted Temporal dev server, the API as a uvicorn subprocess and a worker subprocess.
Tests here kill and restart these (never the session fixtures' servers other tests use).

Short hold window (HOLD_SECONDS) and reserve timeout, so expiries and failures happen within a
test; every client call is bounded by CALL_TIMEOUT.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bench.common import BenchStack, asyncpg_dsn, bench_stack, create_buyers, create_event
from evently.invariants import check

HOLD_SECONDS = 12
RESERVE_TIMEOUT = 3.0
CALL_TIMEOUT = 15.0  # no API call may take longer than this (they must fail fast instead)


@pytest.fixture(scope="module")
def rstack() -> Iterator[BenchStack]:
    with bench_stack(
        hold_seconds=HOLD_SECONDS,
        force_embedded=True,
        extra_env={
            "EVENTLY_RESERVE_TIMEOUT_SECONDS": str(RESERVE_TIMEOUT),
            "EVENTLY_WORKER_GRACEFUL_SHUTDOWN_SECONDS": "2",
        },
    ) as st:
        st.start_api()
        st.start_worker()
        st.wait_ready()
        yield st


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


@pytest.fixture
async def api(rstack: BenchStack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=rstack.api_url, timeout=CALL_TIMEOUT) as client:
        yield client


@pytest.fixture
async def db(rstack: BenchStack) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(rstack.database_url, pool_pre_ping=True)
    yield engine
    await engine.dispose()


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


def assert_problem(r: httpx.Response) -> None:
    """A 4xx/5xx answer is RFC 9457 problem+json with a code, never a 500."""
    assert r.status_code != 500, r.text
    if r.status_code >= 400:
        assert r.headers["content-type"].startswith("application/problem+json"), r.text
        assert r.json().get("code"), r.text
