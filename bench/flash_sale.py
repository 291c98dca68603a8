"""Flash-sale benchmark: B buyers race for C seats of one event through the real HTTP API.

    evently bench flash-sale [--buyers 5000] [--seats 500] [--connections 100]

A fresh stack (bench/common.py): embedded Postgres/Redis + the file-persisted Temporal dev
server, the API as a uvicorn subprocess, the workers as subprocesses. B buyers are inserted in
bulk with minted access tokens; after a warm-up every buyer sends ONE reserve request at once
(an httpx client with ``--connections`` pooled connections); a ``503 overloaded`` answer is
retried after its Retry-After, as a well-behaved client would. Prints ONE JSON line; every
field is defined in docs/performance.md.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import multiprocessing
import os
import random
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil  # type: ignore[import-untyped]

from bench.common import (
    BenchStack,
    CpuMeter,
    SelfCpu,
    asyncpg_dsn,
    bench_stack,
    console,
    create_buyers,
    create_event,
    percentile,
    pg_ceiling,
)
from bench.wire import WireClient, WireError

RESERVE = "/api/v1/bookings/reserve"


@dataclass
class Attempt:
    buyer: int
    sent: float  # wall clock (time.time()), comparable with Postgres now()
    received: float
    latency_ms: float
    status: int  # 0 = transport error / timeout
    code: str
    booking_id: str | None
    kind: str = "reserve"  # or, with --queue: join, poll


HttpClient = httpx.AsyncClient | WireClient
HTTP_ERRORS = (httpx.HTTPError, WireError)


async def reserve_once(
    http: HttpClient,
    token: str,
    event_id: uuid.UUID,
    buyer: int,
    request_timeout: float,
    admission_token: str | None = None,
    body: dict[str, Any] | None = None,
) -> tuple[Attempt, float]:
    """One request; returns the attempt and the Retry-After it was given (0 if none)."""
    sent = time.time()
    t0 = time.perf_counter()
    headers = {"Authorization": f"Bearer {token}"}
    if admission_token is not None:
        headers["Admission-Token"] = admission_token
    try:
        r = await http.post(
            RESERVE,
            json=body if body is not None else {"event_id": str(event_id), "quantity": 1},
            headers=headers,
            timeout=request_timeout,
        )
    except HTTP_ERRORS as exc:
        return (
            Attempt(
                buyer,
                sent,
                time.time(),
                (time.perf_counter() - t0) * 1000,
                0,
                type(exc).__name__,
                None,
            ),
            0.0,
        )
    latency = (time.perf_counter() - t0) * 1000
    code = ""
    booking_id = None
    if r.status_code == 201:
        code, booking_id = "held", r.json()["booking_id"]
    else:
        try:
            code = str(r.json().get("code", ""))
        except ValueError:
            code = "not_json"
    retry_after = float(r.headers.get("retry-after", 0) or 0)
    return Attempt(buyer, sent, time.time(), latency, r.status_code, code, booking_id), retry_after


async def fire(
    api_url: str,
    tokens: list[str],
    event_id: uuid.UUID,
    connections: int,
    request_timeout: float,
    max_attempts: int = 100,
    buyer_ids: list[int] | None = None,
    bodies: list[dict[str, Any]] | None = None,
) -> list[Attempt]:
    """Every buyer at once; at most ``connections`` requests on the wire. The connections are
    spread over small httpx clients (8 each): httpcore's pool does work proportional to
    connections x waiting requests on every response, which made one 100-connection client
    the bottleneck (measured: the load generator, not the API, was saturated)."""
    attempts: list[Attempt] = []
    per_client = 8
    n_clients = max(1, -(-connections // per_client))
    sems = [asyncio.Semaphore(per_client) for _ in range(n_clients)]
    limits = httpx.Limits(max_connections=per_client, max_keepalive_connections=per_client)
    clients = [
        httpx.AsyncClient(base_url=api_url, limits=limits, timeout=request_timeout)
        for _ in range(n_clients)
    ]
    try:

        async def buyer(i: int) -> None:
            http, sem = clients[i % n_clients], sems[i % n_clients]
            who = buyer_ids[i] if buyer_ids is not None else i
            for _ in range(max_attempts):
                async with sem:
                    attempt, retry_after = await reserve_once(
                        http,
                        tokens[i],
                        event_id,
                        who,
                        request_timeout,
                        body=None if bodies is None else bodies[i],
                    )
                attempts.append(attempt)
                if attempt.status == 503 and attempt.code == "overloaded":
                    await asyncio.sleep(retry_after * (0.5 + random.random()))
                    continue
                return

        await asyncio.gather(*(buyer(i) for i in range(len(tokens))))
    finally:
        for http in clients:
            await http.aclose()
    return attempts


def oversold(capacity: int, available: int, held: int, sold: int) -> int:
    """Seats sold or held beyond capacity, plus any below zero available: 0 in a correct sale
    (the counters the reserve statement keeps; ``evently check`` also ties them to the
    bookings)."""
    return max(held + sold - capacity, 0) + max(-available, 0)


def spurious_rejections(
    attempts: list[Attempt], holds: list[tuple[str, float]], capacity: int
) -> tuple[int, int]:
    """(spurious sold_out answers, seats never taken).

    A ``sold_out`` answer received at time t is spurious when, at t, fewer than ``capacity``
    seats were claimed, counting as claimed every seat of a booking that took seats (booking
    records, status not ``rejected``) whose request had been SENT by t — committed or still
    in flight (an in-flight request holds its gate seat and will commit it). Nothing is
    released during the sale (holds last 300 s), so free-at-t means free when the sold_out
    decision was made. Quantity is 1 for every request here.
    """
    sent_by_booking = {a.booking_id: a.sent for a in attempts if a.booking_id}
    # a held booking whose 201 the client never saw (a timeout): its commit time bounds it
    claim_times = sorted(sent_by_booking.get(bid, created) for bid, created in holds)
    spurious = 0
    import bisect

    for a in attempts:
        if a.code == "sold_out":
            claimed = bisect.bisect_right(claim_times, a.received)
            if capacity - claimed >= 1:
                spurious += 1
    return spurious, max(capacity - len(holds), 0)


async def loadgen_probe(api_url: str, n: int, connections: int, *, wire: bool = False) -> float:
    """Requests/s the same client set-up gets from a trivial endpoint (GET /healthz) of the
    same API process: when it is far above reserve_rps, the load generator is not what limits
    the sale. ``wire``: the lean client of the queued sale (bench/wire.py)."""
    if wire:
        lean = WireClient(api_url, connections)
        try:
            t0 = time.perf_counter()
            found = await asyncio.gather(*(lean.get("/healthz") for _ in range(n)))
            elapsed = time.perf_counter() - t0
        finally:
            await lean.aclose()
        if any(r.status_code != 200 for r in found):
            raise RuntimeError("GET /healthz failed during the probe")
        return n / elapsed
    per_client = 8
    n_clients = max(1, -(-connections // per_client))
    limits = httpx.Limits(max_connections=per_client, max_keepalive_connections=per_client)
    clients = [
        httpx.AsyncClient(base_url=api_url, limits=limits, timeout=30) for _ in range(n_clients)
    ]
    sems = [asyncio.Semaphore(per_client) for _ in range(n_clients)]

    async def one(i: int) -> None:
        async with sems[i % n_clients]:
            (await clients[i % n_clients].get("/healthz")).raise_for_status()

    try:
        t0 = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(n)))
        return n / (time.perf_counter() - t0)
    finally:
        for c in clients:
            await c.aclose()


async def warm_up(api_url: str, tokens: list[str], event_id: uuid.UUID) -> None:
    """A few reservations on a separate event: connections, caches, workflow code paths."""
    async with httpx.AsyncClient(base_url=api_url, timeout=30) as http:
        for chunk in range(0, len(tokens), 10):
            await asyncio.gather(
                *(reserve_once(http, t, event_id, -1, 30) for t in tokens[chunk : chunk + 10])
            )


async def sale(
    st: BenchStack,
    buyers: int,
    seats: int,
    connections: int,
    request_timeout: float,
    *,
    queue: bool = False,
    loadgen_processes: int = 1,
    seated: bool = False,
    quantity: int = 1,
    pay: bool = False,
) -> dict[str, Any]:
    import asyncpg
    from sqlalchemy.ext.asyncio import create_async_engine

    from evently.invariants import check

    dsn = asyncpg_dsn(st.database_url)
    conn = await asyncpg.connect(dsn)
    try:
        event_id = await create_event(conn, seats)
        if seated:
            await seat_event(st.database_url, conn, event_id, seats)
        warm_event = await create_event(conn, 10_000, name="Warm-up")
        # the waiting room: on with --queue; off without (the direct reserve path, as before
        # the waiting room existed: buyers here do not know how to queue)
        for eid, mode in ((event_id, "on" if queue else "off"), (warm_event, "off")):
            await conn.execute("UPDATE events SET queue = $2 WHERE id = $1", eid, mode)
        t = time.monotonic()
        accounts = await create_buyers(conn, st.settings, buyers)
        console.log(f"{buyers} buyers in {time.monotonic() - t:.1f}s")
    finally:
        await conn.close()
    tokens = [tok for _, tok in accounts]
    await warm_up(st.api_url, tokens[:30], warm_event)
    ceiling = await pg_ceiling(dsn, [uid for uid, _ in accounts], seats, min(connections, 100))
    console.log(f"postgres ceiling {ceiling['pg_ceiling_rps']} holds/s")
    probe_rps = await loadgen_probe(st.api_url, 2000, connections, wire=queue)
    console.log(f"load generator vs GET /healthz: {probe_rps:.0f} requests/s")
    await asyncio.sleep(1)

    meter = CpuMeter(st.pids())
    me = SelfCpu()
    meter.start()
    me.start()
    t0 = time.time()
    if loadgen_processes > 1:
        attempts, loadgen_cpu, loadgen_share = await asyncio.to_thread(
            fire_processes,
            loadgen_processes,
            st.api_url,
            tokens,
            event_id,
            connections,
            request_timeout,
            queued=queue,
        )
        t0 = min((a.sent for a in attempts), default=t0)
    elif queue:
        attempts = await fire_queue(
            st.api_url, tokens, list(range(len(tokens))), event_id, connections, request_timeout
        )
    else:
        bodies = seated_bodies(event_id, seats, buyers) if seated else None
        if quantity > 1:
            bodies = [{"event_id": str(event_id), "quantity": quantity}] * buyers
        attempts = await fire(
            st.api_url, tokens, event_id, connections, request_timeout, bodies=bodies
        )
    wall = time.time() - t0
    cpu = meter.stop()
    if loadgen_processes <= 1:
        loadgen_cpu, loadgen_share = me.stop()
    paid = await pay_holds(st.api_url, tokens, attempts, connections) if pay else None

    engine = create_async_engine(st.database_url)
    try:
        async with engine.connect() as c:
            from sqlalchemy import text

            rows = (
                await c.execute(
                    text(
                        "SELECT id, extract(epoch from created_at) AS created FROM bookings "
                        "WHERE event_id = :e AND status <> 'rejected'"
                    ),
                    {"e": event_id},
                )
            ).all()
            rejected_rows = await c.scalar(
                text("SELECT count(*) FROM bookings WHERE event_id = :e AND status = 'rejected'"),
                {"e": event_id},
            )
            ev = (
                await c.execute(
                    text("SELECT capacity, available, held, sold FROM events WHERE id = :e"),
                    {"e": event_id},
                )
            ).one()
            violations = [str(v) for v in await check(c, event_id)]
            double = await double_sold(c, event_id) if seated else None
            seat_claims = await seats_of_bookings(c, event_id) if seated else {}
            layout = await seat_layout(c, event_id) if seated else []
            fairness = await fairness_error(c, event_id) if queue else None
            invoiced = await invoice_numbers(c, event_id) if pay else None
    finally:
        await engine.dispose()

    holds = [(str(r.id), float(r.created)) for r in rows]
    dump = os.environ.get("EVENTLY_BENCH_DUMP")
    if dump:  # every attempt and hold, for looking into a run
        Path(dump).write_text(  # noqa: ASYNC240 (once, after the run)
            json.dumps({"t0": t0, "attempts": [asdict(a) for a in attempts], "holds": holds})
        )
    held_attempts = [a for a in attempts if a.status == 201]
    spurious, unsold = spurious_rejections(
        [a for a in attempts if a.kind == "reserve"], holds, seats // PAIR if seated else seats
    )
    if quantity > 1:
        spurious, unsold = spurious_rejections(attempts, holds, seats // quantity)
    if seated and bodies is not None:
        spurious = seated_spurious(attempts, bodies, holds, seat_claims, layout)
        unsold = len(layout) - sum(len(v) for v in seat_claims.values())
    sellout = (max(a.received for a in held_attempts) - t0) if held_attempts else wall
    if queue and held_attempts:
        # through the waiting room, selling starts at the first admitted reserve (the rush of
        # joins before it is the queue's work, reported by queue_p99_ms)
        first = min(a.sent for a in attempts if a.kind == "reserve")
        sellout = max(a.received for a in held_attempts) - first
    latencies = [a.latency_ms for a in attempts]
    by_code = Counter(a.code for a in attempts)

    def p(code: str, q: float) -> float:
        return round(percentile([a.latency_ms for a in attempts if a.code == code], q), 1)

    stack_cpu = sum(cpu.values())
    n_holds = len(holds)
    held_rps = n_holds / sellout if sellout > 0 else 0.0
    return {
        "bench": "flash-sale",
        "buyers": buyers,
        "seats": seats,
        "connections": connections,
        "api_processes": st.env.get("BENCH_API_PROCESSES", "1"),
        "worker_processes": len(st.workers),
        "reserve_max_in_flight": st.env.get("EVENTLY_RESERVE_MAX_IN_FLIGHT", "default"),
        "requests": len(attempts),
        "wall_seconds": round(wall, 2),
        "reserve_rps": round(len(attempts) / wall, 1),
        "held_rps": round(held_rps, 1),
        "sellout_seconds": round(sellout, 2),
        "p50_ms": round(percentile(latencies, 50), 1),
        "p95_ms": round(percentile(latencies, 95), 1),
        "p99_ms": round(percentile(latencies, 99), 1),
        "max_ms": round(max(latencies), 1) if latencies else 0,
        "held_p50_ms": p("held", 50),
        "held_p99_ms": p("held", 99),
        "sold_out_p50_ms": p("sold_out", 50),
        "sold_out_p99_ms": p("sold_out", 99),
        "shed_p99_ms": p("overloaded", 99),
        "sold": n_holds,
        "held_answers": len(held_attempts),
        "sold_out_answers": by_code.get("sold_out", 0),
        "oversold": oversold(ev.capacity, ev.available, ev.held, ev.sold),
        "spurious_rejections": spurious,
        "unsold_seats": unsold,
        "errors": sum(
            1 for a in attempts if a.status == 0 or (a.status >= 500 and a.code != "overloaded")
        ),
        "shed": by_code.get("overloaded", 0),
        # refusals that went through a booking workflow (a rejected row); the rest were
        # answered at the API
        "workflow_refusals": int(rejected_rows or 0),
        "answers": dict(Counter(f"{a.status}:{a.code}" for a in attempts)),
        "cpu_seconds_per_hold": round(stack_cpu / n_holds, 4) if n_holds else None,
        "cpu_seconds": cpu,
        "stack_cpu_seconds": round(stack_cpu, 2),
        "loadgen_cpu_seconds": loadgen_cpu,
        "loadgen_core_share": loadgen_share,
        "loadgen_healthz_rps": round(probe_rps, 1),
        **ceiling,
        "ratio_to_pg_ceiling": round(held_rps / ceiling["pg_ceiling_rps"], 4)
        if ceiling["pg_ceiling_rps"]
        else None,
        "invariants": "ok" if not violations else violations[:20],
        "queue": queue,
        "loadgen_processes": loadgen_processes,
        "quantity": PAIR if seated else quantity,
        **(
            {
                "seated": True,
                "held_seats_rps": round(held_rps * PAIR, 1),
                "seats_taken": by_code.get("seats_taken", 0),
                "double_sold": double,
            }
            if seated
            else {}
        ),
        **(
            {
                "queue_p99_ms": round(
                    percentile([a.latency_ms for a in attempts if a.kind != "reserve"], 99), 1
                ),
                "queue_requests": sum(1 for a in attempts if a.kind != "reserve"),
                "fairness_error": fairness,
                "admitted": sum(
                    1 for a in attempts if a.kind != "reserve" and a.code == "admitted"
                ),
            }
            if queue
            else {}
        ),
        **({**paid, **invoiced} if paid is not None and invoiced is not None else {}),
    }


# ---- --pay (issue 31): the holds paid after the sale; money checked -----------------------

PAY_RETRIES = 20


async def pay_holds(
    api_url: str, tokens: list[str], attempts: list[Attempt], connections: int
) -> dict[str, Any]:
    """Every held booking paid by card (the simulated provider's ``pm_card_visa``), at most
    ``connections`` at once; a 503 (the booking busy, the payment worker slow) is paid again
    after a moment. Latency is of the answered call."""
    held = [a for a in attempts if a.status == 201 and a.booking_id]
    answers: Counter[str] = Counter()
    latencies: list[float] = []
    sem = asyncio.Semaphore(connections)
    t0 = time.monotonic()
    async with httpx.AsyncClient(base_url=api_url, timeout=60) as http:

        async def one(a: Attempt) -> None:
            for _ in range(PAY_RETRIES):
                async with sem:
                    started = time.perf_counter()
                    r = await http.post(
                        "/api/v1/bookings/confirm",
                        json={"booking_id": a.booking_id, "payment_method": "pm_card_visa"},
                        headers={"Authorization": f"Bearer {tokens[a.buyer]}"},
                    )
                    latency = (time.perf_counter() - started) * 1000
                if r.status_code != 503:
                    break
                await asyncio.sleep(0.5)
            latencies.append(latency)
            code = r.json().get("code") if r.status_code >= 400 else r.json().get("status")
            answers[f"{r.status_code}:{code}"] += 1

        await asyncio.gather(*(one(a) for a in held))
    return {
        "paid": answers.get("200:confirmed", 0),
        "pay_answers": dict(answers),
        "pay_seconds": round(time.monotonic() - t0, 2),
        "pay_p50_ms": round(percentile(latencies, 50), 1),
        "pay_p99_ms": round(percentile(latencies, 99), 1),
    }


async def invoice_numbers(conn: Any, event_id: uuid.UUID) -> dict[str, Any]:
    """The event's invoices (one per confirmed booking?) and the gaps or duplicates in its
    organization's numbering (must be none: ``n`` is 1..count per organization and year)."""
    from sqlalchemy import text

    one_each = await conn.scalar(
        text(
            "SELECT count(*) FROM bookings b WHERE b.event_id = :e AND b.status = 'confirmed' "
            "AND (SELECT count(*) FROM invoices i WHERE i.booking_id = b.id "
            "AND i.kind = 'invoice') <> 1"
        ),
        {"e": event_id},
    )
    invoices = await conn.scalar(
        text(
            "SELECT count(*) FROM invoices i JOIN bookings b ON b.id = i.booking_id "
            "WHERE b.event_id = :e AND i.kind = 'invoice'"
        ),
        {"e": event_id},
    )
    gaps = await conn.scalar(
        text(
            "SELECT coalesce(sum(abs(max_n - n_count) + (n_count - distinct_n)), 0) FROM ("
            "SELECT max(n) AS max_n, count(*) AS n_count, count(DISTINCT n) AS distinct_n "
            "FROM invoices WHERE organization_id = "
            "(SELECT organization_id FROM events WHERE id = :e) GROUP BY year) AS y"
        ),
        {"e": event_id},
    )
    return {
        "invoices": int(invoices or 0),
        "confirmed_without_one_invoice": int(one_each or 0),
        "invoice_gaps": int(gaps or 0),
    }


async def fairness_error(conn: Any, event_id: uuid.UUID) -> float:
    """The share of admitted places that came out of join order: admitted before an earlier
    place was, or while an earlier place never was (join order: the place, handed out by one
    Redis INCR; admission time: ``queue_entries.admitted_at``)."""
    from sqlalchemy import text

    rows = (
        await conn.execute(
            text(
                "SELECT position, extract(epoch from admitted_at) AS at FROM queue_entries "
                "WHERE event_id = :e ORDER BY position"
            ),
            {"e": event_id},
        )
    ).all()
    admitted = [r for r in rows if r.at is not None]
    if not admitted:
        return 0.0
    # a place is out of order when an earlier place was admitted after it, or never
    out_of_order = 0
    latest_before = float("-inf")
    unadmitted_before = False
    for r in rows:
        if r.at is None:
            unadmitted_before = True
            continue
        at = float(r.at)  # compare floats with floats (a Decimal and its float differ)
        if unadmitted_before or at < latest_before:
            out_of_order += 1
        latest_before = max(latest_before, at)
    return round(out_of_order / len(admitted), 4)


def run_flash_sale(
    *,
    buyers: int,
    seats: int,
    connections: int = 100,
    api_processes: int = 1,
    workers: int = 1,
    max_in_flight: int | None = None,
    timeout: float = 15.0,
    queue: bool = False,
    loadgen_processes: int = 1,
    seated: bool = False,
    quantity: int = 1,
    pay: bool = False,
) -> dict[str, Any]:
    if seated and (queue or loadgen_processes > 1):
        raise ValueError("--seated runs with one load-generator process, without --queue")
    if quantity > 1 and (seated or queue or loadgen_processes > 1):
        raise ValueError("--quantity is for the plain general-admission sale")
    extra = {"BENCH_API_PROCESSES": str(api_processes)}
    if max_in_flight is not None:
        extra["EVENTLY_RESERVE_MAX_IN_FLIGHT"] = str(max_in_flight)
    with bench_stack(extra_env=extra) as st:
        st.start_api(api_processes)
        st.start_worker()
        for _ in range(workers - 1):
            st.start_worker("booking")
        st.wait_ready()
        console.log(f"stack ready: API {st.api_url}, {workers} worker(s)")
        return asyncio.run(
            sale(
                st,
                buyers,
                seats,
                connections,
                timeout,
                queue=queue,
                loadgen_processes=loadgen_processes,
                seated=seated,
                quantity=quantity,
                pay=pay,
            )
        )


# ---- reserved seating (--seated, issue 34) --------------------------------------------------
# The event sells a plan of ``--seats`` seats: sections of ROWS_PER_SECTION rows of
# SEATS_PER_ROW seats (section A is the best). Every buyer asks for a pair: most for the best
# available pair (``quantity: 2`` on a seated event: adjacent seats, no orphan), a share
# (SPECIFIC_SHARE) for a specific adjacent pair of section A, as a rush does. ``seats_taken``
# counts those refusals; ``double_sold`` the seats held by two live bookings (read from each
# booking's seat records, not from the one-owner column: must be 0).

SEATS_PER_ROW = 20
ROWS_PER_SECTION = 5
SPECIFIC_SHARE = 0.2
PAIR = 2


def seated_plan(seats: int) -> dict[str, Any]:
    """A plan body (evently/seating.py's JSON form) of ``seats`` seats."""
    sections: list[dict[str, Any]] = []
    for start in range(0, seats, SEATS_PER_ROW):
        n_row = start // SEATS_PER_ROW
        section_no, row_no = divmod(n_row, ROWS_PER_SECTION)
        if row_no == 0:
            sections.append({"name": _section_name(section_no), "rows": []})
        count = min(SEATS_PER_ROW, seats - start)
        sections[-1]["rows"].append(
            {
                "label": str(row_no + 1),
                "seats": [
                    {"label": str(k + 1), "x": float(k), "y": float(n_row), "category": "std"}
                    for k in range(count)
                ],
            }
        )
    return {"name": "Bench hall", "sections": sections}


def _section_name(n: int) -> str:
    return chr(ord("A") + n % 26) + (str(n // 26) if n >= 26 else "")


async def seat_event(database_url: str, conn: Any, event_id: uuid.UUID, seats: int) -> None:
    """The published bench event becomes a seated one: its plan imported and attached (as a
    draft, then published again)."""
    from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

    from evently import seating
    from evently.db.models import DEFAULT_ORGANIZATION_ID

    venue_id = await conn.fetchval("SELECT venue_id FROM events WHERE id = $1", event_id)
    await conn.execute("UPDATE events SET status = 'draft' WHERE id = $1", event_id)
    engine = create_async_engine(database_url)
    try:
        async with AsyncSession(engine) as session, session.begin():
            plan_id, _ = await seating.create_plan(
                session, DEFAULT_ORGANIZATION_ID, venue_id, seating.parse_json(seated_plan(seats))
            )
            await seating.attach_plan(session, event_id, plan_id)
    finally:
        await engine.dispose()
    await conn.execute("UPDATE events SET status = 'published' WHERE id = $1", event_id)


def seated_bodies(event_id: uuid.UUID, seats: int, buyers: int) -> list[dict[str, Any]]:
    """Each buyer's reserve body: a best-available pair, or (SPECIFIC_SHARE) a specific
    adjacent pair of section A (deterministic: the same run asks the same)."""
    rng = random.Random(34)
    best = min(seats, SEATS_PER_ROW * ROWS_PER_SECTION)
    pairs = [(k, k + 1) for k in range(best - 1) if k // SEATS_PER_ROW == (k + 1) // SEATS_PER_ROW]
    out: list[dict[str, Any]] = []
    for _ in range(buyers):
        if pairs and rng.random() < SPECIFIC_SHARE:
            a, b = rng.choice(pairs)
            ids = [f"A-{a // SEATS_PER_ROW + 1}-{a % SEATS_PER_ROW + 1}"]
            ids.append(f"A-{b // SEATS_PER_ROW + 1}-{b % SEATS_PER_ROW + 1}")
            out.append({"event_id": str(event_id), "seats": ids})
        else:
            out.append({"event_id": str(event_id), "quantity": PAIR})
    return out


async def seats_of_bookings(conn: Any, event_id: uuid.UUID) -> dict[str, list[str]]:
    """Each booking's seats (every booking that took seats: nothing is released in the sale)."""
    from sqlalchemy import text

    rows = await conn.execute(
        text("SELECT booking_id, seat_id FROM booking_seats WHERE event_id = :e"), {"e": event_id}
    )
    out: dict[str, list[str]] = collections.defaultdict(list)
    for r in rows:
        out[str(r.booking_id)].append(r.seat_id)
    return dict(out)


async def seat_layout(conn: Any, event_id: uuid.UUID) -> list[tuple[str, int, int, int]]:
    """(seat id, section rank, row rank, position) of every unblocked seat of the event."""
    from sqlalchemy import text

    rows = await conn.execute(
        text(
            "SELECT seat_id, section_rank, row_rank, pos FROM event_seats "
            "WHERE event_id = :e AND NOT blocked"
        ),
        {"e": event_id},
    )
    return [(r.seat_id, r.section_rank, r.row_rank, r.pos) for r in rows]


def seated_spurious(
    attempts: list[Attempt],
    bodies: list[dict[str, Any]],
    holds: list[tuple[str, float]],
    seat_claims: dict[str, list[str]],
    layout: list[tuple[str, int, int, int]],
) -> int:
    """Refusals (``seats_taken`` or ``sold_out``) that were not true when answered.

    As for general admission (:func:`spurious_rejections`), a seat counts as claimed at t when
    the request of the booking that holds it was SENT by t (committed or in flight); nothing
    is released during the sale. A refusal received at t is spurious when, at t, the asked
    seats (a request by id) were all unclaimed, or (best available, ``quantity`` q) a block of
    q adjacent unclaimed seats in one row existed (``sold_out``: q unclaimed seats at all)."""
    sent_by_booking = {a.booking_id: a.sent for a in attempts if a.booking_id}
    claims = sorted(
        (sent_by_booking.get(bid, created), bid) for bid, created in holds if bid in seat_claims
    )
    rows = rows_of(layout)
    free = {seat_id for seat_id, *_ in layout}
    spurious = 0
    k = 0
    for a in sorted(attempts, key=lambda x: x.received):
        while k < len(claims) and claims[k][0] <= a.received:
            free.difference_update(seat_claims[claims[k][1]])
            k += 1
        if a.code not in ("seats_taken", "sold_out") or a.buyer < 0:
            continue
        body = bodies[a.buyer]
        if "seats" in body:
            spurious += all(s in free for s in body["seats"])
        elif a.code == "sold_out":
            spurious += len(free) >= body["quantity"]
        else:
            spurious += has_block(rows, free, body["quantity"])
    return spurious


Rows = dict[tuple[int, int], dict[int, str]]  # (section rank, row rank) -> position -> seat id


def rows_of(layout: list[tuple[str, int, int, int]]) -> Rows:
    """:func:`seat_layout`'s seats by row, for :func:`has_block`."""
    rows: Rows = collections.defaultdict(dict)
    for seat_id, section, row, pos in layout:
        rows[(section, row)][pos] = seat_id
    return rows


def has_block(rows: Rows, free: set[str], q: int) -> bool:
    """Are ``q`` adjacent seats of one row all in ``free``?"""
    for seats_by_pos in rows.values():
        run, prev = 0, None
        for pos in sorted(seats_by_pos):
            if seats_by_pos[pos] not in free:
                run = 0
            elif run and prev is not None and pos == prev + 1:
                run += 1
            else:
                run = 1
            prev = pos
            if run >= q:
                return True
    return False


async def double_sold(conn: Any, event_id: uuid.UUID) -> int:
    """Seats recorded for two or more live bookings (held or confirmed): 0 in a correct sale."""
    from sqlalchemy import text

    n = await conn.scalar(
        text(
            """
SELECT count(*) FROM (
    SELECT s.seat_id FROM booking_seats s JOIN bookings b ON b.id = s.booking_id
    WHERE s.event_id = :e AND s.released_at IS NULL AND b.status IN ('held', 'confirmed')
    GROUP BY s.seat_id HAVING count(*) > 1) d
"""
        ),
        {"e": event_id},
    )
    return int(n or 0)


# ---- through the waiting room (--queue) and from several processes (--loadgen-processes) ---
# The flash sale through the waiting room (``evently bench flash-sale --queue``), and the
# multi-process load generator (``--loadgen-processes N``).
#
# With ``--queue`` the event's queue is ``on`` and every buyer does what a browser does: join
# (``POST /events/{id}/queue``), ask again after the ``poll_after_seconds`` it was given
# (``GET /events/{id}/queue/{ticket}``) until admitted, sold out or expired, and once admitted
# reserve with its token (a ``503 overloaded`` is retried after Retry-After, with the same
# token). ``queue_p99_ms`` is the p99 of the waiting room's own answers (joins and polls);
# ``fairness_error`` is read from Postgres afterwards: the share of admitted places that were
# admitted before an earlier place (or while an earlier place never was).
#
# ``--loadgen-processes N`` splits the buyers over N processes (each its own event loop and
# httpx clients; the connections are split too) and reports the generator's CPU as a share of
# its cores.

QUEUE = "/api/v1/events/{event_id}/queue"


async def _timed(
    http: HttpClient, method: str, url: str, token: str, buyer: int, kind: str
) -> tuple[Attempt, Any]:
    sent = time.time()
    t0 = time.perf_counter()
    try:
        r = await http.request(method, url, headers={"Authorization": f"Bearer {token}"})
    except HTTP_ERRORS as exc:
        latency = (time.perf_counter() - t0) * 1000
        return Attempt(buyer, sent, time.time(), latency, 0, type(exc).__name__, None, kind), None
    latency = (time.perf_counter() - t0) * 1000
    body = r.json() if r.headers.get("content-type", "").startswith("application/") else {}
    code = str(body.get("state") or body.get("code") or "")
    return Attempt(buyer, sent, time.time(), latency, r.status_code, code, None, kind), (
        body if r.status_code == 200 else None
    )


class Slots:
    """At most ``n`` requests on the wire; when one ends, a waiting follow-up (a poll or a
    reserve of a buyer already in the line) goes before a waiting join. Each browser has its
    own connection: a buyer who joined never waits at the client behind other buyers' joins
    (with one FIFO, the 20,000 joins of the rush delayed every first poll by the whole rush,
    ~25 s, so the sale started late and slow for the generator's sake, not the server's)."""

    def __init__(self, n: int) -> None:
        self.free = n
        self.waiting: tuple[collections.deque[asyncio.Future[None]], ...] = (
            collections.deque(),
            collections.deque(),
        )

    @contextlib.asynccontextmanager
    async def slot(self, follow_up: bool) -> Any:
        if self.free > 0 and not self.waiting[0] and not self.waiting[1]:
            self.free -= 1
        else:
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self.waiting[0 if follow_up else 1].append(fut)
            await fut  # the slot was handed over by release()
        try:
            yield
        finally:
            self._release()

    def _release(self) -> None:
        for line in self.waiting:
            while line:
                fut = line.popleft()
                if not fut.done():
                    fut.set_result(None)
                    return
        self.free += 1


async def fire_queue(
    api_url: str,
    tokens: list[str],
    buyer_ids: list[int],
    event_id: uuid.UUID,
    connections: int,
    request_timeout: float,
    max_attempts: int = 100,
) -> list[Attempt]:
    """Every buyer joins at once (at most ``connections`` requests on the wire, follow-ups
    first), then polls and reserves as told. The lean client (bench/wire.py): httpx cost more
    CPU per request than the API answering it."""
    attempts: list[Attempt] = []
    slots = Slots(connections)
    http = WireClient(api_url, connections, timeout=request_timeout)
    base = QUEUE.format(event_id=event_id)
    try:

        async def buyer(i: int) -> None:
            who, token = buyer_ids[i], tokens[i]
            state: Any = None
            for n in range(max_attempts):  # join (retried on errors)
                async with slots.slot(follow_up=n > 0):
                    attempt, state = await _timed(http, "POST", base, token, who, "join")
                attempts.append(attempt)
                if state is not None:
                    break
                await asyncio.sleep(1 + random.random())
            if state is None:
                return
            ticket = state["queue_ticket"]
            while state["state"] == "waiting":
                await asyncio.sleep(state["poll_after_seconds"] * (0.9 + 0.2 * random.random()))
                async with slots.slot(follow_up=True):
                    attempt, found = await _timed(
                        http, "GET", f"{base}/{ticket}", token, who, "poll"
                    )
                attempts.append(attempt)
                state = found if found is not None else state
            if state["state"] != "admitted":
                return  # sold out (a browser would offer the waitlist) or expired
            for _ in range(max_attempts):
                async with slots.slot(follow_up=True):
                    attempt, retry_after = await reserve_once(
                        http,
                        token,
                        event_id,
                        who,
                        request_timeout,
                        admission_token=state["admission_token"],
                    )
                attempts.append(attempt)
                if attempt.status == 503 and attempt.code == "overloaded":
                    await asyncio.sleep(retry_after * (0.5 + random.random()))
                    continue
                return

        await asyncio.gather(*(buyer(i) for i in range(len(tokens))))
    finally:
        await http.aclose()
    return attempts


def _child(args: tuple[str, list[str], list[int], str, int, float, bool, float]) -> Any:
    """One load-generator process: its share of the buyers; (attempts, its CPU seconds)."""
    api_url, tokens, ids, event_id, connections, timeout, queued, start_at = args
    proc = psutil.Process()

    async def run() -> list[Attempt]:
        await asyncio.sleep(max(0.0, start_at - time.time()))  # every process starts together
        if queued:
            return await fire_queue(api_url, tokens, ids, uuid.UUID(event_id), connections, timeout)
        return await fire(api_url, tokens, uuid.UUID(event_id), connections, timeout, buyer_ids=ids)

    c0 = sum(proc.cpu_times()[:2])
    attempts = asyncio.run(run())
    return [asdict(a) for a in attempts], sum(proc.cpu_times()[:2]) - c0


def fire_processes(
    processes: int,
    api_url: str,
    tokens: list[str],
    event_id: uuid.UUID,
    connections: int,
    timeout: float,
    *,
    queued: bool,
) -> tuple[list[Attempt], float, float]:
    """The buyers split over ``processes`` processes: (attempts, the generator's CPU seconds,
    its share of the cores it had: CPU / (wall x processes))."""
    ctx = multiprocessing.get_context("spawn")
    shares = [list(range(k, len(tokens), processes)) for k in range(processes)]
    start_at = time.time() + 3.0  # after the processes are up
    jobs = [
        (
            api_url,
            [tokens[i] for i in share],
            share,
            str(event_id),
            max(1, connections // processes),
            timeout,
            queued,
            start_at,
        )
        for share in shares
    ]
    with ctx.Pool(processes) as pool:
        results = pool.map(_child, jobs)
    wall = max(time.time() - start_at, 1e-9)
    attempts = [Attempt(**a) for part, _ in results for a in part]
    cpu = sum(c for _, c in results)
    return attempts, round(cpu, 3), round(cpu / (wall * processes), 3)
