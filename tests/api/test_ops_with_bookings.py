"""Ops features exercised through the real booking workflow (reserve via the API)."""

from __future__ import annotations

import uuid
from datetime import UTC
from decimal import Decimal
from typing import Any

import httpx
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from temporalio.client import Client

from evently.db.models import Booking, Event
from evently.infra.resources import Resources
from tests.support.factories import make_account, make_event
from tests.support.histories import record

# ---- through the real booking workflow ---------------------------------------------------


async def test_support_release_ends_the_hold_through_the_workflow_and_shows_in_history(
    client: httpx.AsyncClient, resources: Resources, running_workers: None, temporal_client: Client
) -> None:
    event = await make_event(resources, capacity=10)
    buyer = await make_account(resources)
    staff = await make_account(resources, "support")
    r = await client.post(
        "/api/v1/bookings/reserve",
        json={"event_id": str(event.id), "quantity": 3},
        headers=buyer.headers,
    )
    assert r.status_code == 201, r.text
    booking_id = r.json()["booking_id"]

    r = await client.post(
        f"/api/v1/support/bookings/{booking_id}/release",
        json={"reason": "buyer stuck at the bank page, asked us to free the seats"},
        headers=staff.headers,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "cancelled"
    assert body["released"] is True
    assert body["released_by"] == f"support:{staff.id}"

    async with resources.sessionmaker() as session:
        booking = await session.get(Booking, uuid.UUID(booking_id))
        ev = await session.get(Event, event.id)
    assert booking is not None
    assert ev is not None
    assert booking.status == "cancelled"
    assert booking.ended_by == f"support:{staff.id}"
    assert booking.end_reason == "buyer stuck at the bank page, asked us to free the seats"
    assert (ev.available, ev.held, ev.sold) == (10, 0, 0)

    # again: nothing left to release
    r = await client.post(f"/api/v1/support/bookings/{booking_id}/release", headers=staff.headers)
    assert (r.status_code, r.json()["code"]) == (409, "booking_not_held")
    await record(temporal_client, f"booking-{booking_id}", "booking-support-release")

    r = await client.get(f"/api/v1/support/bookings/{booking_id}/history", headers=staff.headers)
    assert r.status_code == 200, r.text
    story = r.json()
    assert story["booking_status"] == "cancelled"
    assert story["workflow_id"] == f"booking-{booking_id}"
    types = [e["type"] for e in story["events"]]
    assert types[0] == "WorkflowExecutionStarted"
    cancels = [
        e
        for e in story["events"]
        if e["type"] == "WorkflowExecutionUpdateAccepted" and e["details"]["update"] == "cancel"
    ]
    assert len(cancels) == 1
    assert cancels[0]["details"]["input"] == [
        {
            "actor": f"support:{staff.id}",
            "reason": "buyer stuck at the bank page, asked us to free the seats",
        }
    ]
    assert "WorkflowExecutionCompleted" in types


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_metrics_counters_move_as_bookings_happen(
    client: httpx.AsyncClient, resources: Resources, running_workers: None
) -> None:
    event = await make_event(resources, capacity=3)
    buyer = await make_account(resources)
    reserve_route = {"method": "POST", "route": "/api/v1/bookings/reserve"}

    def snapshot() -> dict[str, float]:
        return {
            "req_held": _value("evently_reserve_requests_total", outcome="held"),
            "req_refused": _value("evently_reserve_requests_total", outcome="sold_out")
            + _value("evently_reserve_requests_total", outcome="rejected"),
            "reserved": _value("evently_bookings_total", outcome="reserved"),
            "confirmed": _value("evently_bookings_total", outcome="confirmed"),
            "cancelled": _value("evently_bookings_total", outcome="cancelled"),
            "refunded": _value("evently_bookings_total", outcome="refunded"),
            "http_201": _value("evently_http_requests_total", **reserve_route, status="201"),
            "http_409": _value("evently_http_requests_total", **reserve_route, status="409"),
            "latency_n": _value("evently_http_request_duration_seconds_count", **reserve_route),
        }

    before = snapshot()
    r = await client.post(
        "/api/v1/bookings/reserve",
        json={"event_id": str(event.id), "quantity": 2},
        headers=buyer.headers,
    )
    assert r.status_code == 201, r.text
    booking_id = r.json()["booking_id"]
    r = await client.post(
        "/api/v1/bookings/reserve",
        json={"event_id": str(event.id), "quantity": 2},
        headers=buyer.headers,
    )
    assert (r.status_code, r.json()["code"]) == (409, "sold_out")
    r = await client.post(
        "/api/v1/bookings/confirm",
        json={"booking_id": booking_id, "payment_method": "pm_card_visa"},
        headers=buyer.headers,
    )
    assert r.status_code == 200, r.text
    r = await client.delete(f"/api/v1/bookings/{booking_id}", headers=buyer.headers)
    assert r.status_code in (200, 202, 204), r.text
    after = snapshot()

    # API-side counters are moved only by this test's requests: exact
    assert after["req_held"] == before["req_held"] + 1
    assert after["req_refused"] == before["req_refused"] + 1
    assert after["http_201"] == before["http_201"] + 1
    assert after["http_409"] == before["http_409"] + 1
    assert after["latency_n"] == before["latency_n"] + 2
    # booking outcomes are counted by the workers' activities (background workflows of other
    # tests may add to them, never take away)
    for outcome in ("reserved", "confirmed", "cancelled", "refunded"):
        assert after[outcome] >= before[outcome] + 1, outcome

    # and the scrape says the same
    scraped = (await client.get("/metrics")).text
    families = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(scraped)
        for s in f.samples
    }
    assert families[("evently_bookings_total", (("outcome", "confirmed"),))] >= after["confirmed"]


async def test_analytics_follow_a_sale_made_through_the_real_api(
    client: httpx.AsyncClient, resources: Resources, running_workers: None
) -> None:
    event = await make_event(resources, capacity=5, price=Decimal("25.00"), currency="EUR")
    buyer = await make_account(resources)
    staff = await make_account(resources, "support")
    admin = await make_account(resources, "admin")

    async def reserve(quantity: int) -> httpx.Response:
        return await client.post(
            "/api/v1/bookings/reserve",
            json={"event_id": str(event.id), "quantity": quantity},
            headers=buyer.headers,
        )

    async def pay(booking_id: str, method: str) -> httpx.Response:
        return await client.post(
            "/api/v1/bookings/confirm",
            json={"booking_id": booking_id, "payment_method": method},
            headers=buyer.headers,
        )

    async def analytics() -> dict[str, Any]:
        r = await client.get(f"/api/v1/admin/events/{event.id}/analytics", headers=admin.headers)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    paid = (await reserve(2)).json()["booking_id"]
    assert (await pay(paid, "pm_card_visa")).status_code == 200
    released = (await reserve(1)).json()["booking_id"]
    r = await client.post(f"/api/v1/support/bookings/{released}/release", headers=staff.headers)
    assert r.status_code == 200, r.text
    declined = (await reserve(1)).json()["booking_id"]
    assert (await pay(declined, "pm_card_chargeDeclined")).status_code == 402
    assert (await client.delete(f"/api/v1/bookings/{declined}", headers=buyer.headers)).is_success
    still_held = (await reserve(1)).json()["booking_id"]
    assert (await reserve(4)).status_code == 409  # sold out: 2 sold + 1 held of 5

    a = await analytics()
    assert (a["capacity"], a["sold"], a["held"], a["available"]) == (5, 2, 1, 2)
    assert a["holds"] == {
        "made": 4,
        "active": 1,
        "confirmed": 1,
        "expired": 0,
        "cancelled": 2,
        "rejected": 0,
    }
    assert a["conversion"] == 0.25
    assert a["gross_sales"] == {"amount": "50.00", "currency": "EUR"}
    assert a["revenue"] == {"amount": "50.00", "currency": "EUR"}
    assert a["refunds"] == {"count": 0, "amount": {"amount": "0.00", "currency": "EUR"}}
    async with resources.sessionmaker() as session:
        b = await session.get(Booking, uuid.UUID(paid))
    assert b is not None
    assert b.confirmed_at is not None
    hour = b.confirmed_at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    assert a["sales_per_hour"] == [
        {
            "hour": hour.isoformat().replace("+00:00", "Z"),
            "bookings": 1,
            "seats": 2,
            "revenue": {"amount": "50.00", "currency": "EUR"},
        }
    ]

    # the paid booking is cancelled: refunded, so revenue drops and the refund shows
    assert (await client.delete(f"/api/v1/bookings/{paid}", headers=buyer.headers)).is_success
    r = await client.post(f"/api/v1/support/bookings/{still_held}/release", headers=staff.headers)
    assert r.status_code == 200, r.text
    a = await analytics()
    assert (a["sold"], a["held"], a["available"]) == (0, 0, 5)
    assert a["revenue"] == {"amount": "0.00", "currency": "EUR"}
    assert a["gross_sales"] == {"amount": "50.00", "currency": "EUR"}
    assert a["refunds"] == {"count": 1, "amount": {"amount": "50.00", "currency": "EUR"}}
    assert a["holds"]["cancelled"] == 4
    assert a["holds"]["confirmed"] == 1
