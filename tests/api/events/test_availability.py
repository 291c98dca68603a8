"""The availability cache: write-through from the inventory activities, Postgres fallback
when Redis is empty or down, versioned writes that never go back in time."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from prometheus_client import REGISTRY
from sqlalchemy import text
from temporalio.client import Client
from temporalio.testing import ActivityEnvironment

from activities.inventory import InventoryActivities
from api.app import create_app
from evently.infra.resources import Resources, open_resources
from evently.inventory import availability
from evently.inventory.types import Counters
from evently.settings import Settings
from tests.support.events import ADMIN, EVENTS, take_seats
from tests.support.factories import Account, make_account, make_event
from tests.support.problems import assert_problem
from workflows.booking.contract import BookingInput, ReleaseInput


def _lookups(result: str) -> float:
    return REGISTRY.get_sample_value("evently_availability_cache_total", {"result": result}) or 0.0


async def _availability(client: httpx.AsyncClient, event_id: uuid.UUID) -> dict[str, Any]:
    r = await client.get(f"{EVENTS}/{event_id}/availability")
    assert r.status_code == 200, r.text
    return dict(r.json())


async def test_an_inventory_change_is_visible_at_once_from_the_cache(
    client: httpx.AsyncClient, resources: Resources, buyer: Account, temporal_client: Client
) -> None:
    event = await make_event(resources, capacity=100)
    first = await _availability(client, event.id)
    types = first.pop("ticket_types")
    assert [(t["name"], t["available"], t["is_default"], t["on_sale"]) for t in types] == [
        ("General admission", 100, True, True)
    ]
    assert first == {
        "event_id": str(event.id),
        "capacity": 100,
        "available": 100,
        "held": 0,
        "sold": 0,
        "waitlist_length": 0,
        "status": "published",
    }

    # the real reserve activity (one conditional UPDATE) writes the new counters through
    activities = InventoryActivities(resources, temporal_client)
    booking = BookingInput(booking_id=uuid.uuid4(), event_id=event.id, user_id=buyer.id, quantity=3)
    outcome = await ActivityEnvironment().run(activities.reserve_seats, booking)
    assert outcome.status == "held"

    hits, misses = _lookups("hit"), _lookups("miss")
    after = await _availability(client, event.id)
    assert (after["available"], after["held"], after["sold"]) == (97, 3, 0)
    assert (_lookups("hit"), _lookups("miss")) == (hits + 1, misses)  # served by Redis

    await ActivityEnvironment().run(
        activities.release_booking,
        ReleaseInput(
            booking_id=booking.booking_id,
            event_id=event.id,
            quantity=3,
            from_status="held",
            to_status="expired",
            actor="test",
            reason="hold ended",
        ),
    )
    after = await _availability(client, event.id)
    assert (after["available"], after["held"]) == (100, 0)
    assert _lookups("miss") == misses


async def test_a_miss_reads_postgres_and_repopulates(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    event = await make_event(resources, capacity=30)
    await take_seats(resources, event.id, held=2, sold=4)
    await resources.redis.delete(availability.cache_key(event.id))
    misses = _lookups("miss")
    body = await _availability(client, event.id)
    assert (body["available"], body["held"], body["sold"]) == (24, 2, 4)
    assert _lookups("miss") == misses + 1
    ttl = await resources.redis.ttl(availability.cache_key(event.id))
    assert 0 < ttl <= availability.TTL_SECONDS
    hits = _lookups("hit")
    await _availability(client, event.id)
    assert _lookups("hit") == hits + 1


async def test_with_redis_down_availability_still_answers_from_postgres(
    settings: Settings,
    state_dir: Path,
    temporal_client: Client,
    resources: Resources,
    admin: Account,
) -> None:
    event = await make_event(resources, capacity=50)
    await take_seats(resources, event.id, held=5, sold=10)
    broken = settings.model_copy(update={"redis_url": f"unix://{state_dir}/no-redis-here.sock"})
    errors = _lookups("error")
    async with open_resources(broken) as res:
        app = create_app(broken, res, temporal_client)
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            body = await _availability(client, event.id)
            assert (body["capacity"], body["available"], body["held"], body["sold"]) == (
                50,
                35,
                5,
                10,
            )
            assert _lookups("error") == errors + 1
            assert_problem(
                await client.get(f"{EVENTS}/{uuid.uuid4()}/availability"), 404, "event_not_found"
            )
            # organizer changes still work (the cache write is best effort) and show at once
            r = await client.patch(
                f"{ADMIN}/events/{event.id}", json={"capacity": 60}, headers=admin.headers
            )
            assert r.status_code == 200, r.text
            body = await _availability(client, event.id)
            assert (body["capacity"], body["available"]) == (60, 45)
            r = await client.get(EVENTS, params={"limit": 1})
            assert r.status_code == 200


async def test_an_older_snapshot_never_replaces_a_newer_one(resources: Resources) -> None:
    event = await make_event(resources, capacity=10)
    base = availability.Availability(
        event_id=event.id,
        capacity=10,
        available=10,
        held=0,
        sold=0,
        status="published",
        waitlist_length=0,
    )
    await availability.store(
        resources.redis, base.model_copy(update={"available": 4, "held": 6, "version": 200})
    )
    await availability.store(
        resources.redis, base.model_copy(update={"available": 9, "held": 1, "version": 100})
    )
    async with resources.sessionmaker() as session:
        got = await availability.read(resources.redis, session, event.id)
    assert got is not None
    assert (got.available, got.held) == (4, 6)
    # unversioned writes (counters from an inventory UPDATE) always apply
    await availability.store(resources.redis, base.model_copy(update={"available": 8, "held": 2}))
    async with resources.sessionmaker() as session:
        got = await availability.read(resources.redis, session, event.id)
    assert got is not None
    assert (got.available, got.held) == (8, 2)


async def test_admin_updates_carry_monotonic_versions(
    client: httpx.AsyncClient, resources: Resources, admin: Account
) -> None:
    event = await make_event(resources, capacity=10)
    versions = []
    for capacity in (11, 12, 13):
        r = await client.patch(
            f"{ADMIN}/events/{event.id}", json={"capacity": capacity}, headers=admin.headers
        )
        assert r.status_code == 200
        async with resources.engine.connect() as conn:
            snap = await availability.load(conn, event.id)
        assert snap is not None
        versions.append(snap.version)
    assert versions == sorted(versions)
    assert len(set(versions)) == 3


async def test_waitlist_length_is_counted_and_kept_by_counter_writes(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    event = await make_event(resources, capacity=5)
    statuses = ("waiting", "waiting", "offered", "left", "expired")
    for status in statuses:
        user = await make_account(resources)
        async with resources.engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO waitlist_entries (id, event_id, user_id, quantity, status)"
                    " VALUES (:id, :e, :u, 1, :s)"
                ),
                {"id": uuid.uuid4(), "e": event.id, "u": user.id, "s": status},
            )
    async with resources.engine.connect() as conn:
        snap = await availability.refresh(resources.redis, conn, event.id)
    assert snap is not None
    assert snap.waitlist_length == 3
    assert (await _availability(client, event.id))["waitlist_length"] == 3

    # what a seat statement returns from its UPDATE ... RETURNING (a newer version)
    counters = Counters(
        event_id=event.id,
        capacity=5,
        available=4,
        held=1,
        sold=0,
        status="published",
        updated_at=datetime.now(UTC),
    )
    await availability.store_counters(resources.redis, counters)
    body = await _availability(client, event.id)
    assert (body["available"], body["held"], body["waitlist_length"]) == (4, 1, 3)

    # counters for an event with nothing cached: without a waitlist length it is a miss,
    # answered from Postgres (never a made-up waitlist length)
    await resources.redis.delete(availability.cache_key(event.id))
    await availability.store_counters(resources.redis, counters)
    misses = _lookups("miss")
    body = await _availability(client, event.id)
    assert body["waitlist_length"] == 3
    assert _lookups("miss") == misses + 1
