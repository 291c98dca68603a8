"""Support API: find bookings (stuck ones too), read their history, release holds."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import select
from temporalio.client import Client

from evently.db.models import Booking
from evently.infra.resources import Resources
from tests.support.factories import make_account, make_event

NOW = datetime.now(UTC)


async def _rows(res: Resources, event_id: uuid.UUID, user_id: uuid.UUID) -> dict[str, Booking]:
    """Bookings written straight into Postgres (the list endpoint only reads)."""
    specs = {
        "stuck": ("held", NOW - timedelta(hours=2), NOW - timedelta(hours=1)),
        "fresh_hold": ("held", NOW - timedelta(seconds=30), NOW + timedelta(minutes=4)),
        "confirmed": ("confirmed", NOW - timedelta(hours=3), NOW - timedelta(hours=2)),
        "expired": ("expired", NOW - timedelta(hours=4), NOW - timedelta(hours=3)),
    }
    out = {}
    async with res.sessionmaker() as session, session.begin():
        for name, (status, created, expires) in specs.items():
            bid = uuid.uuid4()
            b = Booking(
                id=bid,
                event_id=event_id,
                user_id=user_id,
                quantity=1,
                amount=Decimal("25.00"),
                currency="EUR",
                status=status,
                workflow_id=f"booking-{bid}",
                hold_expires_at=expires,
                created_at=created,
            )
            session.add(b)
            out[name] = b
    return out


async def test_list_filters_find_stuck_holds_with_temporal_links(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    event = await make_event(resources)
    buyer = await make_account(resources)
    rows = await _rows(resources, event.id, buyer.id)
    staff = await make_account(resources, "support")
    url = "/api/v1/support/bookings"

    r = await client.get(url, params={"event_id": str(event.id)}, headers=staff.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["total"] == 4
    # newest first
    assert [i["id"] for i in body["items"]] == [
        str(rows[n].id) for n in ("fresh_hold", "stuck", "confirmed", "expired")
    ]
    item = body["items"][1]
    assert item["stuck"] is True
    assert item["amount"] == "25.00"
    assert item["workflow_id"] == f"booking-{rows['stuck'].id}"
    ui = resources.endpoints.temporal_ui_url
    assert ui
    ns = resources.settings.temporal_namespace
    assert item["temporal_ui_url"] == f"{ui}/namespaces/{ns}/workflows/booking-{rows['stuck'].id}"

    r = await client.get(
        url, params={"event_id": str(event.id), "stuck": "true"}, headers=staff.headers
    )
    assert [i["id"] for i in r.json()["items"]] == [str(rows["stuck"].id)]

    r = await client.get(
        url,
        params={"event_id": str(event.id), "held_longer_than_seconds": 600},
        headers=staff.headers,
    )
    assert [i["id"] for i in r.json()["items"]] == [str(rows["stuck"].id)]

    r = await client.get(
        url, params={"user_id": str(buyer.id), "status": "confirmed"}, headers=staff.headers
    )
    assert [i["id"] for i in r.json()["items"]] == [str(rows["confirmed"].id)]

    # pagination
    r = await client.get(
        url, params={"event_id": str(event.id), "limit": 3, "page": 2}, headers=staff.headers
    )
    body = r.json()
    assert (body["total"], body["page"], body["limit"]) == (4, 2, 3)
    assert [i["id"] for i in body["items"]] == [str(rows["expired"].id)]

    # admins are support too
    admin = await make_account(resources, "admin")
    r = await client.get(url, params={"event_id": str(event.id)}, headers=admin.headers)
    assert r.json()["total"] == 4


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"status": "lost"}, "validation_error"),
        ({"event_id": "nope"}, "validation_error"),
        ({"user_id": "1 OR 1=1"}, "validation_error"),
        ({"limit": 0}, "validation_error"),
        ({"limit": 1000}, "validation_error"),
        ({"page": -1}, "validation_error"),
        ({"held_longer_than_seconds": -5}, "validation_error"),
        ({"stuck": "maybe"}, "validation_error"),
    ],
)
async def test_list_hostile_params_are_422(
    client: httpx.AsyncClient, resources: Resources, params: dict[str, object], code: str
) -> None:
    staff = await make_account(resources, "support")
    r = await client.get("/api/v1/support/bookings", params=params, headers=staff.headers)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == code


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/support/bookings"),
        ("POST", f"/api/v1/support/bookings/{uuid.uuid4()}/release"),
        ("GET", f"/api/v1/support/bookings/{uuid.uuid4()}/history"),
    ],
)
async def test_support_routes_need_the_support_role(
    client: httpx.AsyncClient, resources: Resources, method: str, path: str
) -> None:
    r = await client.request(method, path)
    assert r.status_code == 401
    buyer = await make_account(resources)
    r = await client.request(method, path, headers=buyer.headers)
    assert r.status_code == 403
    assert r.json()["code"] == "forbidden"


async def test_release_refuses_what_it_cannot_release_and_changes_nothing(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    event = await make_event(resources)
    buyer = await make_account(resources)
    rows = await _rows(resources, event.id, buyer.id)
    staff = await make_account(resources, "support")

    def release(bid: object, **kw: object) -> str:
        return f"/api/v1/support/bookings/{bid}/release"

    r = await client.post(release(uuid.uuid4()), headers=staff.headers)
    assert (r.status_code, r.json()["code"]) == (404, "booking_not_found")
    r = await client.post(release("not-a-uuid"), headers=staff.headers)
    assert (r.status_code, r.json()["code"]) == (422, "validation_error")
    r = await client.post(release(rows["confirmed"].id), headers=staff.headers)
    assert (r.status_code, r.json()["code"]) == (409, "booking_not_held")
    # a held row whose workflow does not exist: never "fixed" behind Temporal's back
    r = await client.post(release(rows["stuck"].id), headers=staff.headers)
    assert (r.status_code, r.json()["code"]) == (409, "workflow_not_running")
    for bad in [
        {"reason": ""},
        {"reason": "x" * 201},
        {"reason": 5},
        {"reason": "ok", "actor": "admin:1"},
        [1, 2],
    ]:
        r = await client.post(release(rows["stuck"].id), json=bad, headers=staff.headers)
        assert (r.status_code, r.json()["code"]) == (422, "validation_error"), (bad, r.text)
    r = await client.post(
        release(rows["stuck"].id),
        content=b"{not json",
        headers={**staff.headers, "content-type": "application/json"},
    )
    assert r.status_code in (400, 422)
    assert r.headers["content-type"].startswith("application/problem+json")

    async with resources.sessionmaker() as session:
        statuses = {
            b.id: (b.status, b.ended_by)
            for b in await session.scalars(select(Booking).where(Booking.event_id == event.id))
        }
    assert statuses[rows["stuck"].id] == ("held", None)
    assert statuses[rows["confirmed"].id] == ("confirmed", None)


async def test_history_of_a_booking_without_workflow_is_404(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    event = await make_event(resources)
    buyer = await make_account(resources)
    rows = await _rows(resources, event.id, buyer.id)
    staff = await make_account(resources, "support")
    r = await client.get(
        f"/api/v1/support/bookings/{rows['stuck'].id}/history", headers=staff.headers
    )
    assert (r.status_code, r.json()["code"]) == (404, "workflow_not_found")
    r = await client.get(f"/api/v1/support/bookings/{uuid.uuid4()}/history", headers=staff.headers)
    assert (r.status_code, r.json()["code"]) == (404, "booking_not_found")


async def test_support_reads_a_booking_at_a_glance(
    client: httpx.AsyncClient, resources: Resources, running_workers: None, temporal_client: Client
) -> None:
    """The workflow's summary (event, buyer, seats) and current details (held until ...,
    payment attempts) — the same lines the Temporal UI shows — without reading its history."""
    event = await make_event(resources, capacity=5)
    buyer = await make_account(resources)
    staff = await make_account(resources, "support")
    r = await client.post(
        "/api/v1/bookings/reserve",
        json={"event_id": str(event.id), "quantity": 2},
        headers=buyer.headers,
    )
    assert r.status_code == 201, r.text
    booking_id = r.json()["booking_id"]
    r = await client.post(
        "/api/v1/bookings/confirm",
        json={"booking_id": booking_id, "payment_method": "pm_card_chargeDeclined"},
        headers=buyer.headers,
    )
    assert r.status_code == 402, r.text
    r = await client.get(f"/api/v1/support/bookings/{booking_id}/history", headers=staff.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["summary"] == f"booking: 2 seats of event {event.id} for buyer {buyer.id}"
    assert body["current_details"].startswith("held until ")
    assert "2 seats, 50.00 EUR" in body["current_details"]
    assert body["current_details"].endswith("payment attempt 1 declined")
    desc = await temporal_client.get_workflow_handle(f"booking-{booking_id}").describe()
    assert await desc.static_summary() == body["summary"]
