"""Data retention (issue 33, evently/retention.py) on real rows: EVENTLY_RETENTION_DAYS after
an event ends, its attendees and answers, transfer addresses, guest access keys, guest buyers
and the mail log are gone; amounts, payments and tickets stay; a second run removes nothing;
a guest who also booked a recent event keeps their row."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from evently import retention
from evently.infra.resources import Resources
from tests.support.factories import make_event, unique_email
from tests.support.tickets import confirmed_booking, tickets_of

pytestmark = pytest.mark.usefixtures("running_workers")


async def _guest_buys(client: httpx.AsyncClient, event_id: Any, email: str) -> str:
    r = await client.post(
        "/api/v1/bookings/reserve",
        json={"event_id": str(event_id), "quantity": 1, "buyer": {"email": email, "name": "G"}},
    )
    assert r.status_code == 201, r.text
    held = r.json()
    r = await client.post(
        "/api/v1/bookings/confirm",
        json={"booking_id": held["booking_id"], "payment_method": "pm_card_visa"},
        headers={"Evently-Booking-Key": held["access_key"]},
    )
    assert r.status_code == 200, r.text
    return str(held["booking_id"])


async def _one(res: Resources, sql: str, **params: Any) -> Any:
    async with res.engine.connect() as conn:
        return (await conn.execute(text(sql), params)).one()


async def test_personal_data_goes_after_the_retention_period_and_accounting_stays(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    res = resources
    old = await make_event(res, capacity=20, price=Decimal("30.00"))
    recent = await make_event(res, capacity=20)
    bought = await confirmed_booking(client, res, quantity=2, event=old)
    r = await client.put(
        f"/api/v1/bookings/{bought.booking_id}/attendees",
        json={"attendees": [{"name": "Ada", "email": unique_email("ada")}, {"name": "Bob"}]},
        headers=bought.buyer.headers,
    )
    assert r.status_code == 200, r.text
    first, _ = await tickets_of(client, bought)
    r = await client.post(
        f"/api/v1/bookings/{bought.booking_id}/tickets/{first['id']}/transfer",
        json={"name": "Carol", "email": unique_email("carol")},
        headers=bought.buyer.headers,
    )
    assert r.status_code == 200, r.text
    only_old, both = unique_email("guest-old"), unique_email("guest-both")
    guest_booking = await _guest_buys(client, old.id, only_old)
    both_booking = await _guest_buys(client, old.id, both)
    await _guest_buys(client, recent.id, both)
    old_bookings = [bought.booking_id, guest_booking, both_booking]
    async with res.engine.begin() as conn:
        # the event ended 40 days ago; its mail went out then
        await conn.execute(
            text(
                "UPDATE events SET starts_at = now() - interval '40 days', "
                "ends_at = now() - interval '40 days' + interval '3 hours' WHERE id = :e"
            ),
            {"e": old.id},
        )
        await conn.execute(
            text(
                "UPDATE notifications SET created_at = now() - interval '40 days', "
                "mail_status = 'sent' WHERE booking_id = ANY(CAST(:b AS uuid[]))"
            ),
            {"b": old_bookings},
        )
    accounting = (
        "SELECT sum(amount) AS amount, string_agg(status || currency, ',') AS kinds, "
        "(SELECT count(*) FROM tickets WHERE booking_id = ANY(CAST(:b AS uuid[]))) AS tickets, "
        "(SELECT count(*) FROM payments WHERE booking_id = ANY(CAST(:b AS uuid[]))) AS payments "
        "FROM bookings WHERE id = ANY(CAST(:b AS uuid[]))"
    )
    before = await _one(res, accounting, b=old_bookings)

    async with res.engine.begin() as conn:
        pruned = await retention.prune(conn, days=30)
    assert pruned.attendees >= 1
    assert pruned.transfers >= 1
    assert pruned.access_keys >= 2
    assert pruned.guests >= 1
    assert pruned.notifications >= 3

    assert await _one(res, accounting, b=old_bookings) == before  # accounting keeps all
    left = await _one(
        res,
        "SELECT (SELECT count(*) FROM booking_attendees WHERE booking_id = :b) AS attendees, "
        "(SELECT string_agg(name || email, '') FROM ticket_transfers WHERE booking_id = :b) "
        "AS transfer, "
        "(SELECT count(*) FROM booking_access_keys WHERE booking_id = ANY(CAST(:all AS uuid[])))"
        " AS keys, "
        "(SELECT count(*) FROM notifications WHERE booking_id = ANY(CAST(:all AS uuid[]))) "
        "AS notices, "
        "(SELECT count(*) FROM audit_log WHERE action = 'ticket.transferred' "
        " AND details->>'booking_id' = CAST(:b AS text) AND details ? 'to') AS audit_to",
        b=bought.booking_id,
        all=old_bookings,
    )
    assert tuple(left) == (0, "", 0, 0, 0)
    gone = await _one(
        res,
        "SELECT u.id, email, full_name, is_active FROM users u JOIN bookings b ON b.user_id = u.id "
        "WHERE b.id = :b",
        b=guest_booking,
    )
    assert gone.email == f"removed-{gone.id}@invalid"
    assert (gone.full_name, gone.is_active) == ("", False)
    kept = await _one(res, "SELECT full_name, is_active FROM users WHERE email = :e", e=both)
    assert tuple(kept) == ("G", True)  # their recent booking still needs them
    buyer = await _one(res, "SELECT email FROM users WHERE id = :u", u=bought.buyer.user.id)
    assert buyer.email == bought.buyer.user.email  # an account is not a booking's data

    async with res.engine.begin() as conn:
        again = await retention.prune(conn, days=30)
    assert again.total == 0
