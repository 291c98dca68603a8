"""Organizer analytics: numbers match a scripted sale exactly; admin only; hostile input."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import update

from evently.db.models import Booking, Event, Payment, WaitlistEntry
from evently.infra.resources import Resources
from tests.support.factories import make_account, make_event

H1 = datetime(2026, 1, 10, 10, 0, tzinfo=UTC)
H2 = H1 + timedelta(hours=1)


async def _script_sale(res: Resources) -> uuid.UUID:
    """A sale written straight into Postgres: every status, charges, a refund, a waitlist."""
    event = await make_event(res, capacity=100, price=Decimal("25.00"), currency="EUR")
    buyers = [await make_account(res) for _ in range(4)]
    u = buyers[0].id

    def booking(qty: int, status: str, confirmed_at: datetime | None = None) -> Booking:
        bid = uuid.uuid4()
        return Booking(
            id=bid,
            event_id=event.id,
            user_id=u,
            quantity=qty,
            amount=Decimal("25.00") * qty if status != "rejected" else Decimal("0"),
            currency="EUR",
            status=status,
            workflow_id=f"booking-{bid}",
            hold_expires_at=H1 + timedelta(minutes=5),
            confirmed_at=confirmed_at,
        )

    def payment(b: Booking, kind: str, status: str = "succeeded") -> Payment:
        return Payment(
            booking_id=b.id,
            kind=kind,
            status=status,
            provider="simulated",
            provider_payment_id=f"pi_{uuid.uuid4().hex}",
            idempotency_key=f"{b.id}-{kind}-{uuid.uuid4().hex[:6]}",
            payment_method="pm_card_visa",
            amount=b.amount,
            currency="EUR",
        )

    b1 = booking(2, "confirmed", H1 + timedelta(minutes=5))
    b2 = booking(1, "confirmed", H1 + timedelta(minutes=40))
    b3 = booking(4, "confirmed", H2 + timedelta(minutes=1))
    b4 = booking(3, "cancelled", H2 + timedelta(minutes=30))  # paid, then cancelled: refunded
    b5 = booking(2, "held")
    b6 = booking(1, "expired")
    b7 = booking(2, "expired")
    b8 = booking(1, "cancelled")  # cancelled while held
    b9 = booking(5, "rejected")
    bookings = [b1, b2, b3, b4, b5, b6, b7, b8, b9]
    payments = [
        payment(b1, "charge"),
        payment(b2, "charge"),
        payment(b3, "charge"),
        payment(b4, "charge"),
        payment(b4, "refund"),
        payment(b6, "charge", status="failed"),  # declined card: no money
    ]
    waitlist = [
        WaitlistEntry(event_id=event.id, user_id=buyers[0].id, quantity=1, status="waiting"),
        WaitlistEntry(
            event_id=event.id,
            user_id=buyers[1].id,
            quantity=2,
            status="offered",
            offered_quantity=2,
            offer_id=f"offer-{uuid.uuid4()}",
        ),
        WaitlistEntry(
            event_id=event.id,
            user_id=buyers[2].id,
            quantity=1,
            status="accepted",
            offered_quantity=1,
            offer_id=f"offer-{uuid.uuid4()}",
        ),
        WaitlistEntry(event_id=event.id, user_id=buyers[3].id, quantity=1, status="left"),
    ]
    async with res.sessionmaker() as session, session.begin():
        session.add_all(bookings)
        await session.flush()
        session.add_all(payments)
        session.add_all(waitlist)
        # inventory as the sale left it: 7 sold (b1..b3), 2 held (b5)
        await session.execute(
            update(Event).where(Event.id == event.id).values(available=91, held=2, sold=7)
        )
    return event.id


async def test_analytics_match_a_scripted_sale_exactly(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    event_id = await _script_sale(resources)
    admin = await make_account(resources, "admin")
    r = await client.get(f"/api/v1/admin/events/{event_id}/analytics", headers=admin.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["event_id"] == str(event_id)
    assert (body["capacity"], body["sold"], body["held"], body["available"]) == (100, 7, 2, 91)
    assert body["gross_sales"] == {"amount": "250.00", "currency": "EUR"}
    assert body["revenue"] == {"amount": "175.00", "currency": "EUR"}
    assert body["refunds"] == {"count": 1, "amount": {"amount": "75.00", "currency": "EUR"}}
    assert body["holds"] == {
        "made": 8,
        "active": 1,
        "confirmed": 4,
        "expired": 2,
        "cancelled": 2,
        "rejected": 1,
    }
    assert body["conversion"] == 0.5
    assert body["waitlist"] == {"joined": 4, "waiting": 1, "offered": 2, "converted": 1}
    assert body["sales_per_hour"] == [
        {
            "hour": "2026-01-10T10:00:00Z",
            "bookings": 2,
            "seats": 3,
            "revenue": {"amount": "75.00", "currency": "EUR"},
        },
        {
            "hour": "2026-01-10T11:00:00Z",
            "bookings": 2,
            "seats": 7,
            "revenue": {"amount": "175.00", "currency": "EUR"},
        },
    ]


async def test_analytics_of_an_event_without_sales(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    event = await make_event(resources, capacity=10, currency="NOK")
    admin = await make_account(resources, "admin")
    r = await client.get(f"/api/v1/admin/events/{event.id}/analytics", headers=admin.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["revenue"] == {"amount": "0.00", "currency": "NOK"}
    assert body["holds"]["made"] == 0
    assert body["conversion"] is None
    assert body["sales_per_hour"] == []
    assert body["available"] == 10


@pytest.mark.parametrize(
    ("role", "status", "code"),
    [(None, 401, "unauthorized"), ("buyer", 403, "forbidden"), ("support", 403, "forbidden")],
)
async def test_analytics_is_for_admins_only(
    client: httpx.AsyncClient, resources: Resources, role: str | None, status: int, code: str
) -> None:
    event = await make_event(resources)
    headers = (await make_account(resources, role)).headers if role else {}
    r = await client.get(f"/api/v1/admin/events/{event.id}/analytics", headers=headers)
    assert r.status_code == status
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == code


@pytest.mark.parametrize(
    ("path_id", "status", "code"),
    [
        (str(uuid.uuid4()), 404, "event_not_found"),
        ("not-a-uuid", 422, "validation_error"),
        ("1%27%20OR%201%3D1", 422, "validation_error"),
        ("x" * 5000, 422, "validation_error"),
    ],
)
async def test_analytics_hostile_ids_are_4xx_problems(
    client: httpx.AsyncClient, resources: Resources, path_id: str, status: int, code: str
) -> None:
    admin = await make_account(resources, "admin")
    r = await client.get(f"/api/v1/admin/events/{path_id}/analytics", headers=admin.headers)
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == code
