"""The CSV exports stream in flat memory: 100,000 bookings exported through a real API process
(uvicorn over TCP) while its resident memory is sampled every 20 ms."""

from __future__ import annotations

import asyncio
import csv
import io
import time
import uuid
from collections.abc import Iterator

import httpx
import psutil
import pytest
from sqlalchemy import text

from evently.infra.resources import Resources
from evently.settings import Settings
from tests.support.factories import make_account
from tests.support.organizations import make_org, org_event, org_venue
from tests.support.servers import ApiURL, api_process

ROWS = 100_000
BUYERS = 1_000


@pytest.fixture(scope="module")
def api(settings: Settings) -> Iterator[ApiURL]:
    with api_process(settings) as url:
        yield url


async def fill(res: Resources, event_id: str, rows: int) -> None:
    """``rows`` confirmed one-seat bookings of ``BUYERS`` buyers, in a few statements."""
    tag = uuid.uuid4().hex[:8]
    async with res.engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO users (id, email, password_hash, full_name, role) "
                "SELECT gen_random_uuid(), 'csv-' || :tag || '-' || i || '@example.com', 'x', "
                "'Buyer ' || i, 'buyer' FROM generate_series(1, :n) AS i"
            ),
            {"tag": tag, "n": BUYERS},
        )
        await conn.execute(
            text("UPDATE events SET capacity = :r, available = 0, sold = :r WHERE id = :e"),
            {"r": rows, "e": event_id},
        )
        await conn.execute(
            text(
                """
                WITH buyers AS (
                    SELECT id, row_number() OVER (ORDER BY id) - 1 AS k FROM users
                    WHERE email LIKE 'csv-' || :tag || '-%'
                )
                INSERT INTO bookings (id, event_id, user_id, quantity, amount, currency, status,
                                      workflow_id, created_at, confirmed_at)
                SELECT gen_random_uuid(), :e, buyers.id, 1, 25.00, 'EUR', 'confirmed',
                       'booking-csv-' || :tag || '-' || i,
                       now() - make_interval(secs => :r - i), now()
                FROM generate_series(1, :r) AS i
                JOIN buyers ON buyers.k = i % :buyers
                """
            ),
            {"tag": tag, "e": event_id, "r": rows, "buyers": BUYERS},
        )


async def download(url: str, headers: dict[str, str], pid: int) -> tuple[bytes, int, int]:
    """The body, the server's resident memory before it, and its peak while streaming."""
    proc = psutil.Process(pid)
    baseline = proc.memory_info().rss
    peak = baseline
    done = False

    async def sample() -> None:
        nonlocal peak
        while not done:
            peak = max(peak, proc.memory_info().rss)
            await asyncio.sleep(0.02)

    sampler = asyncio.create_task(sample())
    chunks = []
    try:
        async with (
            httpx.AsyncClient(timeout=120) as http,
            http.stream("GET", url, headers=headers) as response,
        ):
            assert response.status_code == 200, await response.aread()
            async for chunk in response.aiter_bytes():
                chunks.append(chunk)
    finally:
        done = True
        await sampler
    return b"".join(chunks), baseline, peak


async def test_a_100000_row_export_streams_in_flat_memory(
    api: ApiURL, client: httpx.AsyncClient, resources: Resources
) -> None:
    admin = await make_account(resources, "admin")
    org = await make_org(client, resources, admin, roles=("owner",))
    venue = await org_venue(client, org, capacity=1_000_000)
    small = await org_event(client, org, venue, publish=True, capacity=10)
    big = await org_event(client, org, venue, publish=True, capacity=10)
    await fill(resources, small["id"], 10)
    started = time.monotonic()
    await fill(resources, big["id"], ROWS)
    fill_seconds = time.monotonic() - started

    base = f"{api}/api/v1/organizations/{org.id}/events"
    # warm up: the route, its imports and the connection pool
    warm, _, _ = await download(f"{base}/{small['id']}/bookings.csv", org.owner.headers, api.pid)
    assert len(warm.splitlines()) == 11

    started = time.monotonic()
    body, baseline, peak = await download(
        f"{base}/{big['id']}/bookings.csv", org.owner.headers, api.pid
    )
    seconds = time.monotonic() - started
    lines = body.decode().splitlines()
    assert len(lines) == ROWS + 1
    rows = list(csv.DictReader(io.StringIO(body.decode())))
    assert len({r["booking_id"] for r in rows}) == ROWS
    assert [r["created_at"] for r in rows] == sorted(r["created_at"] for r in rows)
    grown = peak - baseline
    print(
        f"\nCSV export of {ROWS} bookings: {len(body) / 1e6:.1f} MB in {seconds:.1f} s; "
        f"API process RSS {baseline / 1e6:.0f} MB before, peak {peak / 1e6:.0f} MB "
        f"(+{grown / 1e6:.1f} MB); {fill_seconds:.1f} s to insert the rows"
    )
    # the whole export is ~13 MB of CSV (and ~100 MB as Python objects): the process holds
    # one 2,000-row page at a time
    assert grown < 25e6, f"the export grew the API process by {grown / 1e6:.1f} MB"

    started = time.monotonic()
    people, baseline, peak = await download(
        f"{base}/{big['id']}/attendees.csv", org.owner.headers, api.pid
    )
    assert len(people.splitlines()) == ROWS + 1
    print(
        f"attendees.csv: {len(people) / 1e6:.1f} MB in {time.monotonic() - started:.1f} s, "
        f"peak +{(peak - baseline) / 1e6:.1f} MB"
    )
    assert peak - baseline < 25e6
