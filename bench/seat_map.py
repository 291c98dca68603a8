"""Seat-map benchmark (issue 34): a stadium's plan and its live seat state.

    evently bench seat-map [--seats 50000] [--requests 200] [--blocked-share 0.5]

A fresh stack (bench/common.py: embedded servers, the API as a uvicorn subprocess). A plan of
``--seats`` seats (the flash sale's layout: sections of 5 rows of 20) is imported and attached
to a published event through the core (evently/seating.py, as ``--seated`` does: the timing is
the parse, validation, import and attach, without HTTP); then ``GET /events/{id}/seats`` is
asked ``--requests`` times (10 at a time, gzip accepted, no ETag: every answer is a full one)
with every seat free and again with ``--blocked-share`` of the seats out of the free pool (a
taken or blocked seat costs the answer the same: its id in a list). Prints ONE JSON line.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx

from bench.common import asyncpg_dsn, bench_stack, console, create_event, percentile
from bench.flash_sale import seat_event


async def _gets(api_url: str, event_id: uuid.UUID, n: int) -> dict[str, Any]:
    latencies: list[float] = []
    sizes: list[int] = []
    raw: list[int] = []
    sem = asyncio.Semaphore(10)
    async with httpx.AsyncClient(base_url=api_url, timeout=30) as http:

        async def one() -> None:
            async with sem:
                t0 = time.perf_counter()
                r = await http.get(
                    f"/api/v1/events/{event_id}/seats", headers={"Accept-Encoding": "gzip"}
                )
                latencies.append((time.perf_counter() - t0) * 1000)
                r.raise_for_status()
                sizes.append(r.num_bytes_downloaded)
                raw.append(len(r.content))

        await asyncio.gather(*(one() for _ in range(n)))
    return {
        "gzip_bytes": max(sizes),
        "json_bytes": max(raw),
        "p50_ms": round(percentile(latencies, 50), 1),
        "p99_ms": round(percentile(latencies, 99), 1),
    }


async def _run(st: Any, seats: int, requests: int, blocked_share: float) -> dict[str, Any]:
    import asyncpg

    conn = await asyncpg.connect(asyncpg_dsn(st.database_url))
    try:
        event_id = await create_event(conn, seats, name="Stadium")
        t0 = time.perf_counter()
        await seat_event(st.database_url, conn, event_id, seats)
        import_seconds = time.perf_counter() - t0
        console.log(f"{seats} seats imported and attached in {import_seconds:.2f}s")
        free = await _gets(st.api_url, event_id, requests)
        n_blocked = int(seats * blocked_share)
        await conn.execute(
            "UPDATE event_seats SET blocked = true WHERE event_id = $1 AND seat_id IN ("
            "SELECT seat_id FROM event_seats WHERE event_id = $1 ORDER BY random() LIMIT $2)",
            event_id,
            n_blocked,
        )
        await conn.execute(
            "UPDATE events SET capacity = capacity - $2, available = available - $2 WHERE id = $1",
            event_id,
            n_blocked,
        )
        busy = await _gets(st.api_url, event_id, requests)
    finally:
        await conn.close()
    return {
        "bench": "seat-map",
        "seats": seats,
        "requests": requests,
        "import_seconds": round(import_seconds, 2),
        "all_free": free,
        "blocked_share": blocked_share,
        "with_blocked": busy,
    }


def run_seat_map(*, seats: int, requests: int, blocked_share: float) -> dict[str, Any]:
    with bench_stack() as st:
        st.start_api(1)
        st.start_worker()
        st.wait_ready()
        return asyncio.run(_run(st, seats, requests, blocked_share))
