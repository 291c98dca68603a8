"""Crashes and outages on a private stack (tests/reliability/conftest.py): a worker killed
with holds open, the Temporal dev server and Postgres restarted mid-sale, Redis down.

Afterwards nothing is lost or doubled: every hold ends exactly once (confirmed or released),
the invariant checker passes, and no buyer got two bookings for one Idempotency-Key.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.common import BenchStack
from tests.support.problems import assert_handled
from tests.support.reliability import (
    HOLD_SECONDS,
    Sale,
    assert_invariants,
    counters,
    new_sale,
    new_seated_sale,
    statuses,
    wait_until,
)

pytestmark = pytest.mark.reliability

RESERVE = "/api/v1/bookings/reserve"


@dataclass
class Answers:
    """Every answer the buyers got, with its latency."""

    seen: list[tuple[int, str, float]] = field(default_factory=list)  # status, code, seconds
    booking_of: dict[int, set[str]] = field(default_factory=dict)  # buyer -> booking ids
    final: dict[int, str] = field(default_factory=dict)  # buyer -> held / sold_out

    def check_fast_and_clean(self) -> None:
        for status, code, seconds in self.seen:
            assert status != 500, code
            assert status in (201, 202, 409, 503), (status, code)
            # a call slower than CALL_TIMEOUT raised in buy() (recorded as status 0); the
            # latency itself is not asserted (a busy 2-core machine is slow, not broken)
            assert status != 0, (status, code, seconds)


async def buy(
    api: httpx.AsyncClient,
    sale: Sale,
    i: int,
    answers: Answers,
    deadline: float,
    key: str | None = None,
) -> None:
    """One buyer: the same Idempotency-Key until a definitive answer (201 or 409)."""
    key = key or f"buyer-{i}-{uuid.uuid4().hex[:6]}"
    while time.monotonic() < deadline:
        t0 = time.monotonic()
        try:
            r = await api.post(
                RESERVE,
                json={"event_id": str(sale.event_id), "quantity": 1},
                headers={**sale.headers(i), "Idempotency-Key": key},
            )
        except httpx.TimeoutException as exc:  # a hang: fails check_fast_and_clean
            answers.seen.append((0, type(exc).__name__, time.monotonic() - t0))
            raise
        except httpx.TransportError:
            await asyncio.sleep(0.5)
            continue
        assert_handled(r)
        code = "held" if r.status_code == 201 else r.json().get("code", "")
        answers.seen.append((r.status_code, code, time.monotonic() - t0))
        if r.status_code == 201:
            answers.booking_of.setdefault(i, set()).add(r.json()["booking_id"])
            answers.final[i] = "held"
            return
        if r.status_code == 409:
            assert code == "sold_out", r.text
            answers.final[i] = "sold_out"
            return
        await asyncio.sleep(0.5)
    raise AssertionError(f"buyer {i} got no definitive answer")


async def sale_with_outage(
    api: httpx.AsyncClient,
    sale: Sale,
    stop: Callable[[], None],
    start: Callable[[], None],
    *,
    spread: float = 3.0,
    budget: float = 90.0,
) -> Answers:
    """Buyers arrive over ``spread`` seconds; a server is stopped for ~2 s meanwhile. The last
    buyer is the probe: it reserves during the outage (a fast 503 problem, never a hang or a
    500) and retries with the same Idempotency-Key afterwards."""
    answers = Answers()
    deadline = time.monotonic() + budget
    probe = len(sale.buyers) - 1

    async def late_buyer(i: int) -> None:
        await asyncio.sleep(spread * i / probe)
        await buy(api, sale, i, answers, deadline)

    buyers = asyncio.gather(*(late_buyer(i) for i in range(probe)))
    await asyncio.sleep(0.5)
    await asyncio.to_thread(stop)
    t0 = time.monotonic()
    r = await api.post(
        RESERVE,
        json={"event_id": str(sale.event_id), "quantity": 1},
        headers={**sale.headers(probe), "Idempotency-Key": "probe"},
    )
    assert r.status_code in (202, 503), r.text  # pending (may be held later) or not started
    assert_handled(r)
    # no wall-clock bound here (issue 35: it flaked on a busy 2-core machine): the client's
    # CALL_TIMEOUT (15 s) fails a hang, and a handled 202/503 problem is the server's own
    # answer (its request deadline, 10 s, answers 503 deadline_exceeded), not a dropped call
    await asyncio.sleep(max(0.0, 2 - (time.monotonic() - t0)))
    await asyncio.to_thread(start)
    await buyers
    await buy(api, sale, probe, answers, deadline, key="probe")
    return answers


async def assert_nothing_lost_or_doubled(
    db: AsyncEngine, sale: Sale, answers: Answers, *, settle: float = 60
) -> None:
    # one booking per Idempotency-Key, whatever the retries
    assert all(len(ids) == 1 for ids in answers.booking_of.values()), answers.booking_of
    held = sum(1 for v in answers.final.values() if v == "held")
    assert held == min(sale.capacity, len(sale.buyers)), answers.final
    assert len(answers.final) == len(sale.buyers)
    # every hold ends (expired: nobody pays here) and its seat comes back exactly once
    await wait_until(
        lambda: _no_holds(db, sale.event_id), settle + HOLD_SECONDS, "every hold to end"
    )
    await assert_invariants(db, sale.event_id)
    st = await statuses(db, sale.event_id)
    assert st.get("expired", 0) == held, st
    assert await counters(db, sale.event_id) == (sale.capacity, 0, 0)


async def _no_holds(db: AsyncEngine, event_id: uuid.UUID) -> bool:
    return (await statuses(db, event_id)).get("held", 0) == 0


def kill_workers(rstack: BenchStack) -> None:
    """kill -9 every Temporal worker of the stack (reaped: it is our child)."""
    for w in rstack.workers:
        os.kill(w.pid, signal.SIGKILL)
        w.wait(10)
    rstack.workers.clear()


async def hold_all(
    api: httpx.AsyncClient, sale: Sale, n: int, key: str, sem: asyncio.Semaphore
) -> list[str]:
    """Buyers 0..n-1 each hold one seat (201), retrying a 503 or a 202 ``pending`` (not
    answered within the request deadline on a busy machine) with the same Idempotency-Key
    (``{key}-{i}``), at most ``sem`` at once; their booking ids in buyer order."""

    async def hold(i: int) -> str:
        for _ in range(40):
            async with sem:
                r = await api.post(
                    RESERVE,
                    json={"event_id": str(sale.event_id), "quantity": 1},
                    headers={**sale.headers(i), "Idempotency-Key": f"{key}-{i}"},
                )
            assert_handled(r)
            if r.status_code not in (202, 503):
                break
            await asyncio.sleep(0.3)
        assert r.status_code == 201, r.text
        return str(r.json()["booking_id"])

    return list(await asyncio.gather(*(hold(i) for i in range(n))))


# ---------------------------------------------------------------------------------------------


async def test_worker_killed_with_100_holds_open(
    rstack: BenchStack, api: httpx.AsyncClient, db: AsyncEngine
) -> None:
    sale = await new_sale(rstack, capacity=120, buyers=100)
    booking_ids = await hold_all(api, sale, 100, "hold", asyncio.Semaphore(20))

    async def pay(i: int) -> None:
        r = await api.post(
            "/api/v1/bookings/confirm",
            json={"booking_id": booking_ids[i], "payment_method": "pm_card_visa"},
            headers=sale.headers(i),
        )
        assert r.status_code == 200, r.text

    await asyncio.gather(*(pay(i) for i in range(20)))
    st = await statuses(db, sale.event_id)
    assert st.get("confirmed") == 20
    assert st.get("held", 0) >= 1, st  # the window is short: some may already have ended

    # kill -9 every worker while holds are open; the hold timers keep running on the server
    kill_workers(rstack)
    await asyncio.sleep(HOLD_SECONDS + 1)
    assert (await statuses(db, sale.event_id)).get("held", 0) >= 1  # nobody released them

    rstack.start_worker()
    await wait_until(lambda: _no_holds(db, sale.event_id), 60, "the new worker to end holds")
    st = await statuses(db, sale.event_id)
    assert st == {"confirmed": 20, "expired": 80}, st
    assert await counters(db, sale.event_id) == (100, 0, 20)
    await assert_invariants(db, sale.event_id)


async def test_temporal_restarted_mid_sale(
    rstack: BenchStack, api: httpx.AsyncClient, db: AsyncEngine
) -> None:
    assert rstack.embedded is not None
    assert rstack.embedded.temporal is not None
    temporal = rstack.embedded.temporal
    sale = await new_sale(rstack, capacity=30, buyers=45)
    answers = await sale_with_outage(api, sale, temporal.stop, temporal.start)
    answers.check_fast_and_clean()
    await assert_nothing_lost_or_doubled(db, sale, answers)


async def test_postgres_restarted_mid_sale(
    rstack: BenchStack, api: httpx.AsyncClient, db: AsyncEngine
) -> None:
    assert rstack.embedded is not None
    assert rstack.embedded.postgres is not None
    pg = rstack.embedded.postgres
    sale = await new_sale(rstack, capacity=30, buyers=45)
    answers = await sale_with_outage(api, sale, pg.stop, pg.start)
    answers.check_fast_and_clean()
    await assert_nothing_lost_or_doubled(db, sale, answers)


async def test_redis_down_bookings_work_and_cache_recovers(
    rstack: BenchStack, api: httpx.AsyncClient, db: AsyncEngine
) -> None:
    assert rstack.embedded is not None
    assert rstack.embedded.redis is not None
    redis = rstack.embedded.redis
    sale = await new_sale(rstack, capacity=20, buyers=30)

    async def availability() -> dict[str, int]:
        r = await api.get(f"/api/v1/events/{sale.event_id}/availability")
        assert r.status_code == 200, r.text
        body = r.json()
        return {k: body[k] for k in ("available", "held", "sold")}

    async def reserve(i: int) -> httpx.Response:
        return await api.post(
            RESERVE,
            json={"event_id": str(sale.event_id), "quantity": 1},
            headers=sale.headers(i),
        )

    answers = Answers()
    deadline = time.monotonic() + 60
    for i in range(5):  # the gate and the cache are warm
        await buy(api, sale, i, answers, deadline)
    assert all(v == "held" for v in answers.final.values())
    await asyncio.to_thread(redis.stop)
    try:
        answers = Answers()
        await asyncio.gather(*(buy(api, sale, i, answers, deadline) for i in range(5, 25)))
        answers.check_fast_and_clean()
        assert sorted(answers.final) == list(range(5, 25))
        held = sum(1 for v in answers.final.values() if v == "held")
        assert held >= 15, answers.final  # more if an early hold already ended
        # Postgres answers while the cache is gone
        a, h, s = await counters(db, sale.event_id)
        assert await availability() == {"available": a, "held": h, "sold": s}
    finally:
        await asyncio.to_thread(redis.start)
    # holds end while Redis is back; the cache follows every change again
    await wait_until(lambda: _no_holds(db, sale.event_id), 30 + HOLD_SECONDS, "holds to end")
    assert await availability() == {"available": 20, "held": 0, "sold": 0}
    answers = Answers()
    await buy(api, sale, 25, answers, time.monotonic() + 30)
    assert answers.final == {25: "held"}
    assert await availability() == {"available": 19, "held": 1, "sold": 0}
    await assert_invariants(db, sale.event_id)


async def test_seated_sale_with_every_worker_killed_mid_sale(
    rstack: BenchStack, api: httpx.AsyncClient, db: AsyncEngine
) -> None:
    """Issue 34: a reserved-seating sale (120 seats, rows of 20; 80 buyers each asking for the
    best available pair) with every worker killed -9 while pairs are being reserved and
    started again a moment later. One booking per Idempotency-Key; each 201's seats are an
    adjacent pair and exactly its booking's live seats, no seat in two live bookings; every
    hold ends once and every seat ends free (the invariant checker's seat invariants)."""
    sale = await new_seated_sale(rstack, seats=120, buyers=80)
    held: dict[int, tuple[str, list[dict[str, str]]]] = {}  # buyer -> booking id, its seats
    refused: dict[int, str] = {}
    deadline = time.monotonic() + 90

    async def buyer(i: int) -> None:
        await asyncio.sleep(2.0 * i / 80)  # arrivals over 2 s: the kill lands mid-sale
        while time.monotonic() < deadline:
            try:
                r = await api.post(
                    RESERVE,
                    json={"event_id": str(sale.event_id), "quantity": 2},
                    headers={**sale.headers(i), "Idempotency-Key": f"seated-{i}"},
                )
            except httpx.TransportError:
                await asyncio.sleep(0.5)
                continue
            assert_handled(r)
            if r.status_code == 201:
                held[i] = (r.json()["booking_id"], r.json()["seats"])
                return
            if r.status_code == 409:
                refused[i] = r.json()["code"]
                return
            assert r.status_code in (202, 503), r.text  # pending or not started: retried
            await asyncio.sleep(0.5)
        raise AssertionError(f"buyer {i} got no definitive answer")

    buyers = asyncio.gather(*(buyer(i) for i in range(80)))
    await asyncio.sleep(0.6)
    assert len(held) + len(refused) < 80  # the kill is mid-sale
    kill_workers(rstack)
    await asyncio.sleep(1.5)
    rstack.start_worker()
    await buyers

    assert len(held) + len(refused) == 80
    assert set(refused.values()) <= {"seats_taken", "sold_out"}, refused
    for _, seats in held.values():  # an adjacent pair in one row
        a, b = seats
        assert (a["section"], a["row"]) == (b["section"], b["row"]), seats
        assert abs(int(a["label"]) - int(b["label"])) == 1, seats
    ended_before = (await statuses(db, sale.event_id)).get("expired", 0)
    async with db.connect() as c:
        live = (
            await c.execute(
                text(
                    "SELECT s.booking_id, s.seat_id FROM booking_seats s "
                    "JOIN bookings b ON b.id = s.booking_id "
                    "WHERE s.event_id = :e AND s.released_at IS NULL AND b.status = 'held'"
                ),
                {"e": sale.event_id},
            )
        ).all()
    ended_after = (await statuses(db, sale.event_id)).get("expired", 0)
    seat_owners = Counter(r.seat_id for r in live)
    assert not [s for s, n in seat_owners.items() if n > 1]  # 0 double-sold
    if ended_before == ended_after == 0:  # no hold ended during the sale: it is exact
        assert len(held) == 60, (len(held), refused)
        assert len(refused) == 20, (len(held), refused)
        by_booking: dict[str, set[str]] = {}
        for r in live:
            by_booking.setdefault(str(r.booking_id), set()).add(r.seat_id)
        assert by_booking == {b: {s["id"] for s in seats} for b, seats in held.values()}
        assert len(seat_owners) == 120  # every seat in one booking: no orphan single left
    # nobody pays: every hold ends once, every seat comes back; and every booking that held
    # seats was answered 201 (a retry once answered 409 from the seated notes while its own
    # booking, started by a request that took no gate seats, held a pair: fixed by
    # Gate.mark_started)
    await wait_until(lambda: _no_holds(db, sale.event_id), 60 + HOLD_SECONDS, "holds to end")
    st = await statuses(db, sale.event_id)
    assert st.get("expired", 0) == len({b for b, _ in held.values()}), st
    assert await counters(db, sale.event_id) == (120, 0, 0)
    await assert_invariants(db, sale.event_id)


async def test_invoices_stay_gap_free_with_every_worker_killed_mid_payment(
    rstack: BenchStack, api: httpx.AsyncClient, db: AsyncEngine
) -> None:
    """Issue 31 with the real Temporal worker: 60 holds paid at once while every worker is
    killed -9 and a new one started a moment later; the buyers retry what was not answered.
    Every booking ends confirmed or expired; each confirmed booking has exactly one invoice
    and no other booking any; the organization's numbers stay 1..n per year, no gap and no
    duplicate (a confirmation that died with the worker rolled its number back); and
    ``evently check`` (money included) is clean."""
    sale = await new_sale(rstack, capacity=60, buyers=60)
    booking_ids = await hold_all(api, sale, 60, "paid", asyncio.Semaphore(60))
    answered: dict[int, tuple[int, str]] = {}
    in_flight_at_kill: list[int] = []
    sent: set[int] = set()
    deadline = time.monotonic() + 60

    async def pay(i: int) -> None:
        while time.monotonic() < deadline:
            sent.add(i)
            try:
                r = await api.post(
                    "/api/v1/bookings/confirm",
                    json={"booking_id": booking_ids[i], "payment_method": "pm_card_visa"},
                    headers=sale.headers(i),
                )
            except httpx.TransportError:
                await asyncio.sleep(0.5)
                continue
            finally:
                sent.discard(i)
            assert_handled(r)
            # confirmed, or no longer held: each checked against how the booking ended below.
            # Before the pay-after-settlement patch a retry answered 409 hold_expired for a
            # booking whose first charge went through before the kill and which the
            # late-payment rule then confirmed (3 of 60 in one run); now the workflow answers
            # such a retry once the charge is settled
            if r.status_code in (200, 409):
                answered[i] = (r.status_code, r.json().get("code", r.json().get("status", "")))
                return
            assert r.status_code in (202, 503), r.text  # not answered in time: pay again
            await asyncio.sleep(0.5)
        raise AssertionError(f"buyer {i}'s payment got no definitive answer")

    payments = asyncio.gather(*(pay(i) for i in range(60)))
    await asyncio.sleep(0.3)
    in_flight_at_kill.extend(sent)
    kill_workers(rstack)
    await asyncio.sleep(1.0)
    rstack.start_worker()
    await payments
    assert in_flight_at_kill, "the kill hit no payment in flight"

    await wait_until(lambda: _no_holds(db, sale.event_id), 60 + HOLD_SECONDS, "holds to end")
    st = await statuses(db, sale.event_id)
    assert st.get("confirmed", 0) + st.get("expired", 0) == 60, st
    assert st.get("confirmed", 0) >= 1, st
    async with db.connect() as c:
        confirmed = {
            str(r.id)
            for r in await c.execute(
                text("SELECT id FROM bookings WHERE event_id = :e AND status = 'confirmed'"),
                {"e": sale.event_id},
            )
        }
        invoiced = (
            await c.execute(
                text(
                    "SELECT i.booking_id, count(*) AS n FROM invoices i "
                    "JOIN bookings b ON b.id = i.booking_id "
                    "WHERE b.event_id = :e AND i.kind = 'invoice' GROUP BY i.booking_id"
                ),
                {"e": sale.event_id},
            )
        ).all()
        numbers = (
            await c.execute(
                text(
                    "SELECT year, array_agg(n ORDER BY n) AS ns FROM invoices "
                    "WHERE organization_id = (SELECT organization_id FROM events WHERE id = :e) "
                    "GROUP BY year"
                ),
                {"e": sale.event_id},
            )
        ).all()
    assert {str(r.booking_id) for r in invoiced} == confirmed
    # every final answer is true of how the booking ended: 200 only for a confirmed booking,
    # 409 (hold_expired) only for one that did not end confirmed
    lies = [
        (i, answer)
        for i, answer in answered.items()
        if (answer[0] == 200) != (booking_ids[i] in confirmed)
    ]
    assert not lies, lies
    assert all(r.n == 1 for r in invoiced), invoiced
    for r in numbers:  # every invoice and credit note of the organization: 1..n
        assert r.ns == list(range(1, len(r.ns) + 1)), (r.year, r.ns)
    await assert_invariants(db, sale.event_id)
