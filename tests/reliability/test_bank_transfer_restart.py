"""A booking awaiting a bank transfer (issue 29) survives a full stack restart: with its
3-day hold open, the API, the workers, the Temporal server and Postgres are all stopped and
started again; the booking is still awaiting its transfer, its workflow still waits, and
finance's mark-paid then confirms it with its tickets."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.common import BenchStack, asyncpg_dsn
from evently import bank_transfer
from tests.support.reliability import assert_invariants, counters, new_sale, wait_until

pytestmark = pytest.mark.reliability


async def _shown(db: AsyncEngine, booking_id: str) -> str:
    async with db.connect() as conn:
        shown: str = await conn.scalar(
            text(f"SELECT {bank_transfer.SHOWN_STATUS_SQL} FROM bookings b WHERE b.id = :b"),
            {"b": booking_id},
        )
    return shown


async def test_awaiting_transfer_survives_a_full_restart_and_mark_paid_confirms(
    rstack: BenchStack, api: httpx.AsyncClient, db: AsyncEngine
) -> None:
    sale = await new_sale(rstack, capacity=4, buyers=2)
    finance = sale.buyers[1]
    conn = await asyncpg.connect(asyncpg_dsn(rstack.database_url), timeout=10)
    try:
        org_id = await conn.fetchval(
            "SELECT organization_id FROM events WHERE id = $1", sale.event_id
        )
        await conn.execute(
            "UPDATE events SET bank_transfer_days = 3, queue = 'off' WHERE id = $1", sale.event_id
        )
        await conn.execute(
            "UPDATE organizations SET bank_account_holder = 'Hall', "
            "bank_iban = 'DE89370400440532013000' WHERE id = $1",
            org_id,
        )
        await conn.execute(
            "INSERT INTO organization_members (organization_id, user_id, role) "
            "VALUES ($1, $2, 'finance')",
            org_id,
            finance[0],
        )
    finally:
        await conn.close()

    key = uuid.uuid4().hex
    answer: dict[str, str] = {}

    async def awaiting() -> bool:  # a cold stack may answer "pending" first: same key again
        r = await api.post(
            "/api/v1/bookings/reserve",
            json={
                "event_id": str(sale.event_id),
                "quantity": 2,
                "payment_method": "bank_transfer",
            },
            headers={**sale.headers(0), "Idempotency-Key": key},
        )
        assert r.status_code == 202, r.text
        answer.update(r.json())
        return r.json()["status"] == "awaiting_transfer"

    await wait_until(awaiting, 30, "the bank-transfer hold")
    booking_id = answer["booking_id"]

    # everything down, everything up again
    assert rstack.embedded is not None
    temporal, pg = rstack.embedded.temporal, rstack.embedded.postgres
    assert temporal is not None
    assert pg is not None
    await asyncio.to_thread(rstack.stop_processes)
    rstack.workers.clear()  # stopped: their replacements are started below
    await asyncio.to_thread(temporal.stop)
    await asyncio.to_thread(pg.stop)
    await asyncio.to_thread(pg.start)
    await asyncio.to_thread(temporal.start)
    rstack.start_api()
    rstack.start_worker()
    await asyncio.to_thread(rstack.wait_ready)

    assert await _shown(db, booking_id) == "awaiting_transfer"
    assert await counters(db, sale.event_id) == (2, 2, 0)  # the seats still held
    mark = f"/api/v1/organizations/{org_id}/events/{sale.event_id}/bookings/{booking_id}/mark-paid"
    headers = {"Authorization": f"Bearer {finance[1]}"}

    async def confirmed() -> bool:
        r = await api.post(mark, headers=headers)
        assert r.status_code in (200, 202, 503), r.text
        return r.status_code == 200 and r.json()["status"] == "confirmed"

    await wait_until(confirmed, 60, "mark-paid to confirm the booking")
    assert await counters(db, sale.event_id) == (2, 0, 2)
    async with db.connect() as c:
        tickets = await c.scalar(
            text("SELECT count(*) FROM tickets WHERE booking_id = :b AND status = 'valid'"),
            {"b": booking_id},
        )
    assert tickets == 2
    await assert_invariants(db, sale.event_id)
