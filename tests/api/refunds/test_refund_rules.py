"""Refund rules on the real stack (issue 29): the event's refund policy (until / organizer_only /
none) refuses and allows exactly as stated, with the buyer's deadline tested on both sides;
nothing that was used is refunded (a scanned ticket blocks the buyer's and the organizer's
refund, the booking's unused line can still be refunded by the organizer); the organizer's
partial refund is audited; a ticket promised to an accepted refund is refused at the door,
even by a scan that raced the refund."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from evently import booking_changes
from evently.infra.resources import Resources
from evently.invariants import check
from tests.api.events.conftest import assert_problem
from tests.api.organizations.helpers import Org, make_org, org_event, org_venue
from tests.api.tickets.helpers import new_nonce, wait_for
from tests.factories import Account, make_account, make_accounts

pytestmark = pytest.mark.usefixtures("running_workers")

REDEEM = "/api/v1/checkin/redeem"
HOUR = timedelta(hours=1)


@pytest.fixture(scope="module")
async def admin(resources: Resources) -> Account:
    return await make_account(resources, "admin")


def _when(starts: datetime) -> dict[str, str]:
    return {"starts_at": starts.isoformat(), "ends_at": (starts + 3 * HOUR).isoformat()}


async def _event(
    client: httpx.AsyncClient, org: Org, policy: dict[str, Any] | None = None, **over: Any
) -> dict[str, Any]:
    venue = await org_venue(client, org)
    if policy is not None:
        over["refund_policy"] = policy
    return await org_event(client, org, venue, publish=True, capacity=20, **over)


async def _book(
    client: httpx.AsyncClient,
    buyer: Account,
    event_id: str,
    lines: list[tuple[str, int]] | None = None,
    *,
    pay: bool = True,
) -> str:
    body: dict[str, Any] = {"event_id": event_id}
    if lines:
        body["lines"] = [{"ticket_type_id": t, "quantity": q} for t, q in lines]
    else:
        body["quantity"] = 1
    r = await client.post(
        "/api/v1/bookings/reserve",
        json=body,
        headers={**buyer.headers, "Idempotency-Key": uuid.uuid4().hex},
    )
    assert r.status_code == 201, r.text
    booking = str(r.json()["booking_id"])
    if pay:
        r = await client.post(
            "/api/v1/bookings/confirm",
            json={"booking_id": booking, "payment_method": "pm_card_visa"},
            headers=buyer.headers,
        )
        assert r.status_code == 200, r.text
    return booking


async def _tickets(client: httpx.AsyncClient, buyer: Account, booking: str) -> list[dict[str, Any]]:
    r = await client.get(f"/api/v1/bookings/{booking}/tickets", headers=buyer.headers)
    assert r.status_code == 200, r.text
    return list(r.json()["tickets"])


async def _ticket_types(res: Resources, booking: str) -> dict[str, str]:
    """ticket id → its type's id"""
    async with res.engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT id, ticket_type_id FROM tickets WHERE booking_id = :b"), {"b": booking}
        )
        return {str(r.id): str(r.ticket_type_id) for r in rows}


def _scan(secret: str) -> dict[str, Any]:
    return {"secret": secret, "nonce": new_nonce(), "device_id": "gate-1"}


def _same_instant(a: str, b: str) -> bool:
    return datetime.fromisoformat(a.replace("Z", "+00:00")) == datetime.fromisoformat(
        b.replace("Z", "+00:00")
    )


async def test_a_scanned_ticket_is_never_refunded_but_the_unused_line_is(
    client: httpx.AsyncClient, resources: Resources, admin: Account
) -> None:
    org = await make_org(client, resources, admin)
    owner, finance = org.owner, org.members["finance"]
    door, buyer = org.members["door"], (await make_accounts(resources, 1))[0]
    event = await _event(client, org)
    base = org.url(f"/events/{event['id']}")
    vip = await client.post(
        f"{base}/ticket-types", json={"name": "VIP", "price": "60.00"}, headers=owner.headers
    )
    assert vip.status_code == 201, vip.text
    types = (await client.get(f"{base}/ticket-types", headers=owner.headers)).json()
    items = types["items"]
    (default,) = [t["id"] for t in items if t["is_default"]]
    booking = await _book(client, buyer, event["id"], [(default, 1), (vip.json()["id"], 1)])
    tickets = await _tickets(client, buyer, booking)
    type_of = await _ticket_types(resources, booking)
    (used,) = [t for t in tickets if type_of[t["id"]] == default]
    (unused,) = [t for t in tickets if type_of[t["id"]] == vip.json()["id"]]

    admitted = await client.post(REDEEM, json=_scan(used["secret"]), headers=door.headers)
    assert admitted.status_code == 200, admitted.text
    scanned_at = admitted.json()["checked_in_at"]

    def names_the_scan(body: dict[str, Any]) -> None:
        assert body["ticket_id"] == used["id"]
        assert _same_instant(body["checked_in_at"], scanned_at)

    # the buyer: neither the whole booking nor the used line
    names_the_scan(
        assert_problem(
            await client.delete(f"/api/v1/bookings/{booking}", headers=buyer.headers),
            409,
            "ticket_checked_in",
        )
    )
    names_the_scan(
        assert_problem(
            await client.post(
                f"/api/v1/bookings/{booking}/cancel-lines",
                json={"lines": [{"ticket_type_id": default, "quantity": 1}]},
                headers=buyer.headers,
            ),
            409,
            "ticket_checked_in",
        )
    )
    # the organizer: no full refund, no refund of the used line
    names_the_scan(
        assert_problem(
            await client.post(f"{base}/bookings/{booking}/refund", headers=finance.headers),
            409,
            "ticket_checked_in",
        )
    )
    organizer_lines = f"{base}/bookings/{booking}/cancel-lines"
    names_the_scan(
        assert_problem(
            await client.post(
                organizer_lines,
                json={"lines": [{"ticket_type_id": default, "quantity": 1}]},
                headers=finance.headers,
            ),
            409,
            "ticket_checked_in",
        )
    )
    # a manager may not refund at all
    assert_problem(
        await client.post(
            organizer_lines,
            json={"lines": [{"ticket_type_id": vip.json()["id"], "quantity": 1}]},
            headers=org.members["manager"].headers,
        ),
        403,
    )
    # the unused line: refunded by the organizer, audited
    r = await client.post(
        organizer_lines,
        json={"lines": [{"ticket_type_id": vip.json()["id"], "quantity": 1}]},
        headers=finance.headers,
    )
    assert r.status_code == 200, r.text
    assert r.json() == {
        "booking_id": booking,
        "status": "confirmed",
        "change": 1,
        "refunded": True,
        "refund_amount": "60.00",
    }
    after = {t["id"]: t for t in await _tickets(client, buyer, booking)}
    assert after[used["id"]]["status"] == "valid"
    assert after[unused["id"]]["status"] == "revoked"
    async with resources.engine.connect() as conn:
        assert await check(conn, uuid.UUID(event["id"])) == []
        payments = (
            await conn.execute(
                text(
                    "SELECT kind, amount FROM payments WHERE booking_id = :b "
                    "AND status = 'succeeded' ORDER BY created_at"
                ),
                {"b": booking},
            )
        ).all()
    assert [(k, str(a)) for k, a in payments] == [("charge", "85.00"), ("partial_refund", "60.00")]
    audit = await client.get(org.url("/audit"), headers=owner.headers)
    assert audit.status_code == 200, audit.text
    (entry,) = [e for e in audit.json()["items"] if e["action"] == "booking.lines_refunded"]
    assert entry["actor_user_id"] == str(finance.id)
    assert entry["target_id"] == booking
    assert entry["details"]["change"] == 1
    assert entry["details"]["refunded"] is True
    # the refunded ticket is refused at the door
    assert_problem(
        await client.post(REDEEM, json=_scan(unused["secret"]), headers=door.headers),
        409,
        "ticket_revoked",
    )


async def test_a_refund_accepted_first_wins_over_a_racing_scan(
    client: httpx.AsyncClient, resources: Resources, admin: Account
) -> None:
    """The tickets are locked and promised in the refund's transaction: a scan that arrives
    while it is open waits for it and is refused; a refund asked after a scan is refused."""
    org = await make_org(client, resources, admin)
    door, buyer = org.members["door"], (await make_accounts(resources, 1))[0]
    event = await _event(client, org)
    first, second = await _book(client, buyer, event["id"]), await _book(client, buyer, event["id"])
    (ticket,) = await _tickets(client, buyer, first)
    async with resources.sessionmaker() as session, session.begin():
        await booking_changes.seal_booking(session, uuid.UUID(ticket["booking_id"]))
        # the scan blocks on the ticket's row lock until the refund's transaction commits
        scan = asyncio.create_task(
            client.post(REDEEM, json=_scan(ticket["secret"]), headers=door.headers)
        )
        await asyncio.sleep(0.5)
        assert not scan.done()
    assert_problem(await scan, 409, "ticket_revoked")
    # the refund goes on as accepted
    r = await client.delete(f"/api/v1/bookings/{ticket['booking_id']}", headers=buyer.headers)
    assert r.status_code == 200, r.text
    assert r.json()["refunded"] is True

    # the other order: scanned first, the refund is refused and the ticket stays usable
    booking = second
    (ticket,) = await _tickets(client, buyer, booking)
    assert (
        await client.post(REDEEM, json=_scan(ticket["secret"]), headers=door.headers)
    ).is_success
    assert_problem(
        await client.delete(f"/api/v1/bookings/{booking}", headers=buyer.headers),
        409,
        "ticket_checked_in",
    )
    async with resources.engine.connect() as conn:
        promised = await conn.scalar(
            text(
                "SELECT count(*) FROM tickets WHERE booking_id = :b AND refund_change IS NOT NULL"
            ),
            {"b": booking},
        )
        assert promised == 0
        assert await check(conn, uuid.UUID(event["id"])) == []


async def test_organizer_only_and_none_refuse_and_allow_as_stated(
    client: httpx.AsyncClient, resources: Resources, admin: Account
) -> None:
    org = await make_org(client, resources, admin)
    finance = org.members["finance"]
    buyer = (await make_accounts(resources, 1))[0]

    # organizer_only: buyers never (their held bookings may still be cancelled); finance may
    event = await _event(client, org, {"mode": "organizer_only"})
    public = (await client.get(f"/api/v1/events/{event['id']}")).json()
    assert public["refund_policy"] == {"mode": "organizer_only"}
    assert public["refund_summary"] == "Refunds: only by the organizer"
    booking = await _book(client, buyer, event["id"])
    body = assert_problem(
        await client.delete(f"/api/v1/bookings/{booking}", headers=buyer.headers),
        409,
        "refund_not_allowed",
    )
    assert body["refund_policy"] == {"mode": "organizer_only"}
    types = (
        await client.get(org.url(f"/events/{event['id']}/ticket-types"), headers=org.owner.headers)
    ).json()
    items = types["items"]
    (default,) = [t["id"] for t in items if t["is_default"]]
    assert_problem(
        await client.post(
            f"/api/v1/bookings/{booking}/cancel-lines",
            json={"lines": [{"ticket_type_id": default, "quantity": 1}]},
            headers=buyer.headers,
        ),
        409,
        "refund_not_allowed",
    )
    held = await _book(client, buyer, event["id"], pay=False)
    r = await client.delete(f"/api/v1/bookings/{held}", headers=buyer.headers)
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["refunded"]) == ("cancelled", False)
    r = await client.post(
        org.url(f"/events/{event['id']}/bookings/{booking}/refund"), headers=finance.headers
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"booking_id": booking, "status": "cancelled", "refunded": True}

    # none: nobody through Evently; the event's cancellation still refunds everyone
    event = await _event(client, org, {"mode": "none"})
    base = org.url(f"/events/{event['id']}")
    booking = await _book(client, buyer, event["id"])
    for r in (
        await client.delete(f"/api/v1/bookings/{booking}", headers=buyer.headers),
        await client.post(f"{base}/bookings/{booking}/refund", headers=finance.headers),
        await client.post(f"{base}/bookings/{booking}/refund", headers=org.owner.headers),
    ):
        assert assert_problem(r, 409, "refund_not_allowed")["refund_policy"] == {"mode": "none"}
    types = (await client.get(f"{base}/ticket-types", headers=org.owner.headers)).json()
    items = types["items"]
    (default,) = [t["id"] for t in items if t["is_default"]]
    assert_problem(
        await client.post(
            f"{base}/bookings/{booking}/cancel-lines",
            json={"lines": [{"ticket_type_id": default, "quantity": 1}]},
            headers=finance.headers,
        ),
        409,
        "refund_not_allowed",
    )
    r = await client.delete(base, headers=org.owner.headers)
    assert r.status_code == 202, r.text

    async def refunded() -> bool:
        got = await client.get(f"/api/v1/bookings/{booking}", headers=buyer.headers)
        return bool(got.json()["status"] == "cancelled")

    await wait_for(refunded)
    async with resources.engine.connect() as conn:
        kinds = await conn.scalars(
            text(
                "SELECT kind FROM payments WHERE booking_id = :b AND status = 'succeeded' "
                "ORDER BY created_at"
            ),
            {"b": booking},
        )
        assert list(kinds) == ["charge", "refund"]


async def test_until_allows_the_buyer_until_the_deadline_and_not_after(
    client: httpx.AsyncClient, resources: Resources, admin: Account
) -> None:
    org = await make_org(client, resources, admin)
    buyer = (await make_accounts(resources, 1))[0]
    policy = {"mode": "until", "hours_before_start": 48}
    event = await _event(client, org, policy, **_when(datetime.now(UTC) + 60 * HOUR))
    base = org.url(f"/events/{event['id']}")
    public = (await client.get(f"/api/v1/events/{event['id']}")).json()
    assert public["refund_policy"] == policy
    assert public["refund_summary"] == "Refunds: until 48 h before the start"
    late, in_time = await _book(client, buyer, event["id"]), await _book(client, buyer, event["id"])

    # the deadline (48 h before the start) passed one second ago: refused, the policy shown
    r = await client.patch(
        base,
        json=_when(datetime.now(UTC) + 48 * HOUR - timedelta(seconds=1)),
        headers=org.owner.headers,
    )
    assert r.status_code == 200, r.text
    body = assert_problem(
        await client.delete(f"/api/v1/bookings/{late}", headers=buyer.headers),
        409,
        "refund_not_allowed",
    )
    assert body["refund_policy"] == policy
    # the organization's finance may still refund
    r = await client.post(f"{base}/bookings/{late}/refund", headers=org.members["finance"].headers)
    assert r.status_code == 200, r.text

    # the deadline is a few seconds ahead (the exact instant: tests/evently/test_refund_policy.py)
    r = await client.patch(
        base,
        json=_when(datetime.now(UTC) + 48 * HOUR + timedelta(seconds=5)),
        headers=org.owner.headers,
    )
    assert r.status_code == 200, r.text
    r = await client.delete(f"/api/v1/bookings/{in_time}", headers=buyer.headers)
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["refunded"]) == ("cancelled", True)


async def test_the_policy_is_validated_changed_and_audited(
    client: httpx.AsyncClient, resources: Resources, admin: Account
) -> None:
    org = await make_org(client, resources, admin)
    event = await _event(client, org)
    assert event["refund_policy"] == {"mode": "until", "hours_before_start": 0}
    assert event["refund_summary"] == "Refunds: until the start of the event"
    url = org.url(f"/events/{event['id']}")
    for bad in (
        {"mode": "sometimes"},
        {"mode": "until", "hours_before_start": -1},
        {"mode": "until", "hours_before_start": "48"},
        {"mode": "until", "hours_before_start": 48.5},
        {"mode": "none", "hours_before_start": 3},
        {"hours_before_start": 3},
        "none",
        None,
    ):
        assert_problem(
            await client.patch(url, json={"refund_policy": bad}, headers=org.owner.headers), 422
        )
    r = await client.patch(
        url,
        json={"refund_policy": {"mode": "until", "hours_before_start": 24}},
        headers=org.members["manager"].headers,
    )
    assert r.status_code == 200, r.text
    assert r.json()["refund_policy"] == {"mode": "until", "hours_before_start": 24}
    audit = (await client.get(org.url("/audit"), headers=org.owner.headers)).json()["items"]
    (entry,) = [
        e for e in audit if e["action"] == "event.updated" and "refund_policy" in e["details"]
    ]
    assert entry["details"]["refund_policy"] == {
        "from": {"mode": "until", "hours_before_start": 0},
        "to": {"mode": "until", "hours_before_start": 24},
    }
    # the deprecated /admin alias takes the same body
    r = await client.patch(
        f"/api/v1/admin/events/{event['id']}",
        json={"refund_policy": {"mode": "none"}},
        headers=admin.headers,
    )
    assert r.status_code == 200, r.text
    assert r.json()["refund_policy"] == {"mode": "none"}
