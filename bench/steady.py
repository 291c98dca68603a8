"""Steady-state benchmark: a fixed offered load of reserve → pay and reserve → expire, and the
counted cost of one confirmed booking.

    evently bench steady [--rate 8] [--seconds 30] [--pay-ratio 0.5] [--hold-seconds 5]

Same throwaway stack as the flash sale (bench/common.py), with pg_stat_statements loaded.

1. **Cost phase**: ``--cost-samples`` bookings, one after the other, each reserved and paid;
   the deltas of pg_stat_statements (statements), Redis ``INFO commandstats`` (commands,
   including those run inside Lua scripts) and each booking's Temporal history (events by
   type) are divided by the number of bookings.
2. **Load phase**: an open loop starts ``--rate`` new buyers per second for ``--seconds``;
   each reserves, then pays (``pm_card_visa``) with probability ``--pay-ratio`` or lets the
   hold expire. Reports confirmed bookings/s, p50/p99 of each step, and waits until every
   hold has ended (expired holds released by their workflow's timer).
Prints ONE JSON line.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from typing import Any

import httpx

from bench.common import (
    BenchStack,
    CpuMeter,
    asyncpg_dsn,
    bench_stack,
    console,
    create_buyers,
    create_event,
    percentile,
)

RESERVE = "/api/v1/bookings/reserve"
CONFIRM = "/api/v1/bookings/confirm"


async def _redis_commands(url: str) -> Counter[str]:
    from evently.infra.resources import make_redis

    r = make_redis(url)
    try:
        stats = await r.info("commandstats")
    finally:
        await r.aclose()
    return Counter(
        {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items() if "calls" in v}
    )


async def _pg_statements(conn: Any) -> tuple[int, dict[str, int]]:
    """Statements executed (pg_stat_statements, every database), and the top ones."""
    rows = await conn.fetch(
        """SELECT calls, left(regexp_replace(query, '\\s+', ' ', 'g'), 70) AS q
           FROM pg_stat_statements WHERE query NOT ILIKE '%pg_stat%'"""
    )
    return sum(r["calls"] for r in rows), {r["q"]: r["calls"] for r in rows}


async def _reserve(
    http: httpx.AsyncClient, token: str, event_id: uuid.UUID
) -> tuple[httpx.Response, float]:
    t0 = time.perf_counter()
    r = await http.post(
        RESERVE,
        json={"event_id": str(event_id), "quantity": 1},
        headers={"Authorization": f"Bearer {token}"},
    )
    return r, (time.perf_counter() - t0) * 1000


async def _confirm(
    http: httpx.AsyncClient, token: str, booking_id: str
) -> tuple[httpx.Response, float]:
    t0 = time.perf_counter()
    r = await http.post(
        CONFIRM,
        json={"booking_id": booking_id, "payment_method": "pm_card_visa"},
        headers={"Authorization": f"Bearer {token}"},
    )
    return r, (time.perf_counter() - t0) * 1000


async def _history_counts(st: BenchStack, booking_ids: list[str]) -> Counter[str]:
    from workflows.booking.contract import booking_workflow_id
    from workflows.connection import connect

    assert st.settings.temporal_address
    client = await connect(st.settings.temporal_address, st.settings.temporal_namespace)
    counts: Counter[str] = Counter()
    for bid in booking_ids:
        history = await client.get_workflow_handle(
            booking_workflow_id(uuid.UUID(bid))
        ).fetch_history()
        for ev in history.events:
            counts[ev.WhichOneof("attributes") or "unknown"] += 1
    return counts


async def cost_phase(
    st: BenchStack, http: httpx.AsyncClient, accounts: list[tuple[uuid.UUID, str]], n: int
) -> dict[str, Any]:
    import asyncpg

    conn = await asyncpg.connect(asyncpg_dsn(st.database_url))
    try:
        event_id = await create_event(conn, n, name="Cost")
        await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        assert st.settings.redis_url
        # one booking first: caches, prepared statements and the gate are warm
        r, _ = await _reserve(http, accounts[0][1], event_id)
        r.raise_for_status()
        (await _confirm(http, accounts[0][1], r.json()["booking_id"]))[0].raise_for_status()
        await asyncio.sleep(1)
        await conn.execute("SELECT pg_stat_statements_reset()")
        redis0 = await _redis_commands(st.settings.redis_url)
        booking_ids = []
        for _, token in accounts[1:n]:
            r, _ = await _reserve(http, token, event_id)
            assert r.status_code == 201, r.text
            booking_ids.append(r.json()["booking_id"])
            c, _ = await _confirm(http, token, booking_ids[-1])
            assert c.status_code == 200, c.text
        await asyncio.sleep(1)  # the confirm activity's cache write-through lands
        statements, top = await _pg_statements(conn)
        redis1 = await _redis_commands(st.settings.redis_url)
    finally:
        await conn.close()
    redis = redis1 - redis0
    redis["info"] = 0
    redis = +redis
    history = await _history_counts(st, booking_ids)
    k = len(booking_ids)
    return {
        "cost_samples": k,
        "pg_statements_per_confirmed": round(statements / k, 2),
        "pg_top_statements": dict(sorted(top.items(), key=lambda kv: -kv[1])[:12]),
        "redis_commands_per_confirmed": round(sum(redis.values()) / k, 2),
        "redis_commands": {name: round(v / k, 2) for name, v in redis.most_common()},
        "temporal_history_events_per_confirmed": round(sum(history.values()) / k, 2),
        "temporal_events": {
            name.removesuffix("_event_attributes"): round(v / k, 2)
            for name, v in history.most_common()
        },
    }


async def load_phase(
    st: BenchStack,
    http: httpx.AsyncClient,
    accounts: list[tuple[uuid.UUID, str]],
    rate: float,
    seconds: float,
    pay_ratio: float,
) -> dict[str, Any]:
    import asyncpg

    conn = await asyncpg.connect(asyncpg_dsn(st.database_url))
    n = int(rate * seconds)
    try:
        event_id = await create_event(conn, n * 2, name="Steady")
    finally:
        await conn.close()
    rng = random.Random(11)
    reserve_ms: list[float] = []
    confirm_ms: list[float] = []
    outcomes: Counter[str] = Counter()

    async def one(i: int, pay: bool) -> None:
        token = accounts[i][1]
        try:
            r, ms = await _reserve(http, token, event_id)
        except httpx.HTTPError as exc:
            outcomes[f"reserve:{type(exc).__name__}"] += 1
            return
        reserve_ms.append(ms)
        if r.status_code != 201:
            outcomes[f"reserve:{r.status_code}"] += 1
            return
        outcomes["held"] += 1
        if not pay:
            return
        try:
            c, ms = await _confirm(http, token, r.json()["booking_id"])
        except httpx.HTTPError as exc:
            outcomes[f"confirm:{type(exc).__name__}"] += 1
            return
        confirm_ms.append(ms)
        outcomes["confirmed" if c.status_code == 200 else f"confirm:{c.status_code}"] += 1

    meter = CpuMeter(st.pids())
    meter.start()
    tasks = []
    t0 = time.perf_counter()
    for i in range(n):  # open loop: arrivals do not wait for earlier answers
        delay = t0 + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, rng.random() < pay_ratio)))
    await asyncio.gather(*tasks)
    busy = time.perf_counter() - t0
    cpu = meter.stop()

    # every unpaid hold ends on its timer: wait for it, then check the invariants
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    from evently.invariants import check

    engine = create_async_engine(st.database_url)
    deadline = time.monotonic() + st.settings.hold_seconds + 60
    try:
        while True:
            async with engine.connect() as c:
                rows: dict[str, int] = dict(
                    (
                        await c.execute(
                            text(
                                "SELECT status, count(*) FROM bookings WHERE event_id = :e "
                                "GROUP BY status"
                            ),
                            {"e": event_id},
                        )
                    ).all()
                )
                if rows.get("held", 0) == 0 or time.monotonic() > deadline:
                    violations = [str(v) for v in await check(c, event_id)]
                    break
            await asyncio.sleep(0.5)
        ended = time.perf_counter() - t0
    finally:
        await engine.dispose()
    confirmed = outcomes.get("confirmed", 0)
    return {
        "offered_rps": rate,
        "seconds": seconds,
        "pay_ratio": pay_ratio,
        "bookings": n,
        "confirmed_per_second": round(confirmed / busy, 2),
        "reserve_p50_ms": round(percentile(reserve_ms, 50), 1),
        "reserve_p99_ms": round(percentile(reserve_ms, 99), 1),
        "confirm_p50_ms": round(percentile(confirm_ms, 50), 1),
        "confirm_p99_ms": round(percentile(confirm_ms, 99), 1),
        "outcomes": dict(outcomes),
        "final_statuses": rows,
        "all_holds_ended_after_seconds": round(ended, 1),
        "cpu_seconds": cpu,
        "cpu_seconds_per_booking": round(sum(cpu.values()) / max(n, 1), 4),
        "invariants": "ok" if not violations else violations[:20],
    }


async def steady(
    st: BenchStack, rate: float, seconds: float, pay_ratio: float, cost_samples: int
) -> dict[str, Any]:
    import asyncpg

    n = int(rate * seconds)
    conn = await asyncpg.connect(asyncpg_dsn(st.database_url))
    try:
        accounts = await create_buyers(conn, st.settings, n + cost_samples + 1)
    finally:
        await conn.close()
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with httpx.AsyncClient(base_url=st.api_url, limits=limits, timeout=30) as http:
        cost = await cost_phase(st, http, accounts[: cost_samples + 1], cost_samples + 1)
        console.log(f"cost phase: {cost['pg_statements_per_confirmed']} statements/booking")
        load = await load_phase(st, http, accounts[cost_samples + 1 :], rate, seconds, pay_ratio)
    return {"bench": "steady", **load, **cost}


def run_steady(
    *, rate: float, seconds: float, pay_ratio: float, hold_seconds: int, cost_samples: int
) -> dict[str, Any]:
    with bench_stack(hold_seconds=hold_seconds, pg_stat_statements=True) as st:
        st.start_api()
        st.start_worker()
        st.wait_ready()
        return asyncio.run(steady(st, rate, seconds, pay_ratio, cost_samples))
