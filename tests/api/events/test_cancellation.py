"""Cancelling an event: sales stop at once, every held and confirmed booking is cancelled
(confirmed ones refunded) by the booking workflows, buyers are notified, the event ends
`cancelled`."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from temporalio.client import Client
from temporalio.testing import ActivityEnvironment

from activities.events import EventActivities
from api.app import create_app
from evently.db.models import Event
from evently.infra.resources import Resources, open_resources
from evently.settings import Settings
from tests.support.events import ADMIN, EVENTS, event_row
from tests.support.factories import Account, make_account, make_event
from tests.support.histories import record
from tests.support.problems import assert_problem
from workflows.event_cancellation import client as cancellation_client
from workflows.event_cancellation.contract import (
    BookingPageInput,
    CancelBookingsInput,
    EventRef,
    NotifyInput,
)
from workflows.event_cancellation.workflow import EventCancellationWorkflow

WAIT = 90  # seconds: generous for a loaded 2-core CI machine


async def _bookings(res: Resources, event_id: uuid.UUID) -> dict[str, str]:
    async with res.engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT id, status FROM bookings WHERE event_id = :e"), {"e": event_id}
        )
        return {str(r.id): r.status for r in rows}


async def _notices(res: Resources, event_id: uuid.UUID) -> list[Any]:
    async with res.engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT user_id, kind, dedupe_key, payload FROM notifications"
                " WHERE dedupe_key LIKE :k ORDER BY user_id"
            ),
            {"k": f"event_cancelled:{event_id}:%"},
        )
        return list(rows)


async def _insert_booking(
    res: Resources, event: Event, user_id: uuid.UUID, status: str
) -> uuid.UUID:
    booking_id = uuid.uuid4()
    async with res.engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO bookings (id, event_id, user_id, quantity, amount, currency, status,"
                " workflow_id) VALUES (:id, :e, :u, 1, 10, 'EUR', :s, :w)"
            ),
            {"id": booking_id, "e": event.id, "u": user_id, "s": status, "w": f"t-{booking_id}"},
        )
    return booking_id


async def test_cancelling_an_event_without_bookings(
    client: httpx.AsyncClient,
    resources: Resources,
    admin: Account,
    temporal_client: Client,
    running_workers: None,
) -> None:
    event = await make_event(resources, capacity=20)
    assert (await client.get(f"{EVENTS}/{event.id}/availability")).json()["status"] == "published"

    r = await client.delete(f"{ADMIN}/events/{event.id}", headers=admin.headers)
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["workflow_id"] == f"event-cancel-{event.id}"
    assert body["status"] == "cancelled"
    # sales stop at once: the row and the cached availability say so before the workflow ends
    row = await event_row(resources, event.id)
    assert row is not None
    assert row["status"] == "cancelled"
    assert row["cancelled_at"] is not None
    assert (await client.get(f"{EVENTS}/{event.id}/availability")).json()["status"] == "cancelled"

    handle = temporal_client.get_workflow_handle_for(
        EventCancellationWorkflow.run, body["workflow_id"]
    )
    result = await asyncio.wait_for(handle.result(), WAIT)
    assert result.bookings_cancelled == 0
    assert result.stuck_booking_ids == []

    before = await event_row(resources, event.id)
    assert_problem(
        await client.delete(f"{ADMIN}/events/{event.id}", headers=admin.headers),
        409,
        "invalid_transition",
    )
    assert_problem(
        await client.post(f"{ADMIN}/events/{event.id}/publish", headers=admin.headers),
        409,
        "invalid_transition",
    )
    assert await event_row(resources, event.id) == before


async def test_cancelling_an_event_cancels_and_refunds_every_booking(
    client: httpx.AsyncClient,
    resources: Resources,
    admin: Account,
    temporal_client: Client,
    running_workers: None,
) -> None:
    """End to end through the real booking API and workflows."""
    event = await make_event(resources, capacity=10)
    holder, payer = await make_account(resources), await make_account(resources)

    r = await client.post(
        "/api/v1/bookings/reserve",
        json={"event_id": str(event.id), "quantity": 2},
        headers=holder.headers,
    )
    assert r.status_code == 201, r.text
    held_id = r.json()["booking_id"]
    r = await client.post(
        "/api/v1/bookings/reserve",
        json={"event_id": str(event.id), "quantity": 3},
        headers=payer.headers,
    )
    assert r.status_code == 201, r.text
    paid_id = r.json()["booking_id"]
    r = await client.post(
        "/api/v1/bookings/confirm",
        json={"booking_id": paid_id, "payment_method": "pm_card_visa"},
        headers=payer.headers,
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "confirmed"
    a = (await client.get(f"{EVENTS}/{event.id}/availability")).json()
    assert (a["available"], a["held"], a["sold"]) == (5, 2, 3)

    r = await client.delete(f"{ADMIN}/events/{event.id}", headers=admin.headers)
    assert r.status_code == 202, r.text
    # no new reservation once the DELETE answered
    r = await client.post(
        "/api/v1/bookings/reserve",
        json={"event_id": str(event.id), "quantity": 1},
        headers=holder.headers,
    )
    assert r.status_code != 201, r.text
    assert r.headers["content-type"].startswith("application/problem+json")

    handle = temporal_client.get_workflow_handle_for(
        EventCancellationWorkflow.run, f"event-cancel-{event.id}"
    )
    result = await asyncio.wait_for(handle.result(), WAIT)
    assert result.bookings_cancelled == 2
    assert result.stuck_booking_ids == []

    statuses = await _bookings(resources, event.id)
    assert statuses[held_id] == "cancelled"
    assert statuses[paid_id] == "cancelled"
    assert not set(statuses.values()) & {"held", "confirmed"}
    async with resources.engine.connect() as conn:
        refunds = await conn.scalar(
            text(
                "SELECT count(*) FROM payments WHERE booking_id = :b AND kind = 'refund'"
                " AND status = 'succeeded'"
            ),
            {"b": paid_id},
        )
    assert refunds == 1
    row = await event_row(resources, event.id)
    assert row is not None
    assert (row["status"], row["available"], row["held"], row["sold"]) == ("cancelled", 10, 0, 0)
    a = (await client.get(f"{EVENTS}/{event.id}/availability")).json()
    assert (a["status"], a["available"], a["held"], a["sold"]) == ("cancelled", 10, 0, 0)

    notices = await _notices(resources, event.id)
    assert sorted(str(n.user_id) for n in notices) == sorted([str(holder.id), str(payer.id)])
    assert all(n.kind == "event_cancelled" for n in notices)
    assert notices[0].payload["event_id"] == str(event.id)


async def test_activities_page_bookings_and_notify_once(
    resources: Resources, temporal_client: Client, running_workers: None
) -> None:
    event = await make_event(resources, capacity=10)
    users = [await make_account(resources) for _ in range(3)]
    active = [
        await _insert_booking(resources, event, users[0].id, "held"),
        await _insert_booking(resources, event, users[1].id, "confirmed"),
        await _insert_booking(resources, event, users[2].id, "held"),
    ]
    await _insert_booking(resources, event, users[2].id, "expired")
    acts = EventActivities(resources, temporal_client)
    env = ActivityEnvironment()

    seen: list[uuid.UUID] = []
    after = None
    while True:
        page = await env.run(
            acts.list_event_bookings, BookingPageInput(event_id=event.id, after=after, limit=2)
        )
        if not page.bookings:
            break
        assert len(page.bookings) <= 2
        seen += [b.booking_id for b in page.bookings]
        after = page.bookings[-1].booking_id
    assert seen == sorted(active)

    notify = NotifyInput(event_id=event.id, user_ids=[u.id for u in users] + [users[0].id])
    assert await env.run(acts.notify_event_cancelled, notify) == 3
    assert await env.run(acts.notify_event_cancelled, notify) == 0  # a retry adds nothing
    assert len(await _notices(resources, event.id)) == 3

    # bookings without a workflow: one still active (reported as failed, retried later),
    # one already over (nothing to do)
    over = await _insert_booking(resources, event, users[0].id, "expired")
    result = await env.run(
        acts.cancel_event_bookings,
        CancelBookingsInput(event_id=event.id, booking_ids=[active[0], over]),
    )
    assert result.failed == [active[0]]
    assert result.already_ended == [over]
    assert result.cancelled == []


async def test_marking_cancelled_stops_reservations_and_is_idempotent(
    resources: Resources, buyer: Account, temporal_client: Client
) -> None:
    from activities.inventory import InventoryActivities
    from workflows.booking.contract import BookingInput

    event = await make_event(resources, capacity=10)
    acts = EventActivities(resources, temporal_client)
    env = ActivityEnvironment()
    assert await env.run(acts.mark_event_cancelled, EventRef(event_id=event.id)) is True
    assert await env.run(acts.mark_event_cancelled, EventRef(event_id=event.id)) is True
    outcome = await env.run(
        InventoryActivities(resources, temporal_client).reserve_seats,
        BookingInput(booking_id=uuid.uuid4(), event_id=event.id, user_id=buyer.id, quantity=1),
    )
    assert outcome.status == "rejected"
    row = await event_row(resources, event.id)
    assert row is not None
    assert (row["status"], row["available"]) == ("cancelled", 10)
    # a draft is not cancelled by the activity (the API refuses that transition)
    draft = await make_event(resources, status="draft")
    assert await env.run(acts.mark_event_cancelled, EventRef(event_id=draft.id)) is False


async def test_with_temporal_down_delete_is_503_and_changes_nothing(
    settings: Settings, resources: Resources, admin: Account
) -> None:
    from evently.infra.embedded import free_port
    from workflows.connection import connect

    event = await make_event(resources, capacity=10)
    before = await event_row(resources, event.id)
    dead = await connect(f"127.0.0.1:{free_port()}", settings.temporal_namespace, lazy=True)
    async with open_resources(settings) as res:
        app = create_app(settings, res, dead)
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            r = await client.delete(f"{ADMIN}/events/{event.id}", headers=admin.headers)
    assert_problem(r, 503, "service_unavailable")
    assert await event_row(resources, event.id) == before


async def test_patch_to_cancelled_runs_the_same_cancellation(
    client: httpx.AsyncClient,
    resources: Resources,
    admin: Account,
    temporal_client: Client,
    running_workers: None,
) -> None:
    event = await make_event(resources, capacity=5)
    r = await client.patch(
        f"{ADMIN}/events/{event.id}", json={"status": "cancelled"}, headers=admin.headers
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "cancelled"
    handle = temporal_client.get_workflow_handle_for(
        EventCancellationWorkflow.run, f"event-cancel-{event.id}"
    )
    result = await asyncio.wait_for(handle.result(), WAIT)
    assert result.event_id == event.id
    assert result.stuck_booking_ids == []


@pytest.mark.parametrize("max_history", [10_000, 20], ids=["one-run", "continued-as-new"])
async def test_a_cancellation_pages_through_many_bookings(
    client: httpx.AsyncClient,
    resources: Resources,
    temporal_client: Client,
    running_workers: None,
    max_history: int,
) -> None:
    """Two bookings per page, five bookings: every page is cancelled, every buyer told once —
    in one run, or over several when the history passes its budget (100,000 bookings do)."""
    event = await make_event(resources, capacity=10)
    buyers = [await make_account(resources) for _ in range(5)]
    for buyer in buyers:
        r = await client.post(
            "/api/v1/bookings/reserve",
            json={"event_id": str(event.id), "quantity": 1},
            headers=buyer.headers,
        )
        assert r.status_code == 201, r.text
    workflow_id = await cancellation_client.start(
        temporal_client, event.id, requested_by="test", page_size=2, max_history=max_history
    )
    handle = temporal_client.get_workflow_handle_for(EventCancellationWorkflow.run, workflow_id)
    result = await asyncio.wait_for(handle.result(), WAIT)
    assert (result.bookings_cancelled, result.buyers_notified) == (5, 5)
    assert result.stuck_booking_ids == []
    statuses = await _bookings(resources, event.id)
    assert set(statuses.values()) == {"cancelled"}
    row = await event_row(resources, event.id)
    assert row is not None
    assert (row["status"], row["available"], row["held"]) == ("cancelled", 10, 0)
    runs = [e async for e in temporal_client.list_workflows(f"WorkflowId = '{workflow_id}'")]
    if max_history == 20:
        assert len(runs) >= 2, "the cancellation should have continued as new"
        first = min(runs, key=lambda r: r.start_time)
        await record(
            temporal_client,
            workflow_id,
            "event-cancellation-continued-first-run",
            run_id=first.run_id,
        )
        await record(temporal_client, workflow_id, "event-cancellation-continued-last-run")
    else:
        assert len(runs) == 1
        await record(temporal_client, workflow_id, "event-cancellation-several-pages")
