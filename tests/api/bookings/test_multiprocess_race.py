"""The oversell race across processes (issue 35): two `evently api` processes (uvicorn over
TCP) and two `evently worker` processes, alone on a fresh Temporal namespace, sell 10 seats to
40 buyers at once. Exactly 10 holds, every other answer a true sold out, counters and
invariants exact: the gate and the conditional update hold across processes, not only within
one event loop."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
from sqlalchemy import text

from evently.infra.resources import Resources
from evently.invariants import check
from evently.settings import Settings
from tests.factories import make_accounts, make_event
from tests.servers import api_process

SEATS, BUYERS = 10, 40


def _env(settings: Settings, namespace: str) -> dict[str, str]:
    return {
        **os.environ,
        "EVENTLY_DATABASE_URL": settings.database_url or "",
        "EVENTLY_REDIS_URL": settings.redis_url or "",
        "EVENTLY_TEMPORAL_ADDRESS": settings.temporal_address or "",
        "EVENTLY_TEMPORAL_NAMESPACE": namespace,
        "EVENTLY_JWT_SECRET": settings.jwt_secret,
        "EVENTLY_STATE_DIR": str(settings.state_path),
        "EVENTLY_LOG_LEVEL": "WARNING",
        # a stopped worker does not wait for in-flight tasks (none are left by then)
        "EVENTLY_WORKER_GRACEFUL_SHUTDOWN_SECONDS": "1",
    }


@contextlib.contextmanager
def worker_processes(settings: Settings, namespace: str, n: int) -> Iterator[list[Path]]:
    """``n`` `evently worker` processes for the booking and payments queues; yields their logs."""
    logs = [Path(tempfile.mkdtemp(prefix="evently-worker-")) / "worker.log" for _ in range(n)]
    procs = []
    for log in logs:
        with log.open("ab") as out:
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "cli.main", "worker", "--queues", "booking,payments"],
                    env=_env(settings, namespace),
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            )
    try:
        yield logs
        for proc, log in zip(procs, logs, strict=True):
            assert proc.poll() is None, log.read_text()[-3000:]
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


async def test_two_apis_and_two_workers_never_oversell(
    resources: Resources, settings: Settings, namespace: str
) -> None:
    event = await make_event(resources, capacity=SEATS)
    buyers = await make_accounts(resources, BUYERS)
    with (
        worker_processes(settings, namespace, 2),
        api_process(settings, EVENTLY_TEMPORAL_NAMESPACE=namespace) as one,
        api_process(settings, EVENTLY_TEMPORAL_NAMESPACE=namespace) as two,
    ):
        assert one.pid != two.pid
        start = asyncio.Event()
        async with httpx.AsyncClient(timeout=60) as http:
            # warm both processes up (their Temporal and Postgres connections) on another
            # event, so the race is between two ready servers
            warm = await make_event(resources, capacity=2)
            for i, base in enumerate((one, two)):
                r = await http.post(
                    f"{base}/api/v1/bookings/reserve",
                    json={"event_id": str(warm.id), "quantity": 1},
                    headers=buyers[i].headers,
                )
                assert r.status_code == 201, r.text

            async def reserve(i: int) -> tuple[str, httpx.Response]:
                base = (one, two)[i % 2]
                await start.wait()
                r = await http.post(
                    f"{base}/api/v1/bookings/reserve",
                    json={"event_id": str(event.id), "quantity": 1},
                    headers=buyers[i].headers,
                )
                return base, r

            tasks = [asyncio.create_task(reserve(i)) for i in range(BUYERS)]
            await asyncio.sleep(0.05)
            start.set()
            answers = await asyncio.gather(*tasks)

    codes = [(r.status_code, r.json().get("code")) for _, r in answers]
    held = [r for _, r in answers if r.status_code == 201]
    assert len(held) == SEATS, codes
    assert sorted(codes, key=str).count((409, "sold_out")) == BUYERS - SEATS, codes
    # both processes answered the race (each buyer's request went to one of them)
    by_api = {base: sorted(r.status_code for b, r in answers if b == base) for base in (one, two)}
    print(f"\n[2 APIs, 2 workers] answers per API: {by_api}")
    assert all(len(a) == BUYERS // 2 for a in by_api.values())
    async with resources.engine.connect() as conn:
        counters = (
            await conn.execute(
                text("SELECT available, held, sold FROM events WHERE id = :e"), {"e": event.id}
            )
        ).one()
        booked = await conn.scalar(
            text("SELECT count(*) FROM bookings WHERE event_id = :e AND status = 'held'"),
            {"e": event.id},
        )
        assert await check(conn, event.id) == []
    assert tuple(counters) == (0, SEATS, 0)
    assert booked == SEATS
    assert {r.json()["booking_id"] for r in held} == {
        str(b) for b in await _ids(resources, event.id)
    }


async def _ids(res: Resources, event_id: object) -> list[object]:
    async with res.engine.connect() as conn:
        return list(
            await conn.scalars(text("SELECT id FROM bookings WHERE event_id = :e"), {"e": event_id})
        )
