"""The door on the real stack: first scan wins under concurrency, a replayed nonce gets the same
answer, offline uploads are admitted or reported as conflicts, revoked tickets are refused."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from evently.infra.resources import Resources
from tests.api.organizations.helpers import confirmed_booking as org_booking
from tests.api.organizations.helpers import make_org, org_event, org_venue
from tests.api.tickets.helpers import Confirmed, confirmed_booking, new_nonce, tickets_of
from tests.factories import Account, make_account
from tests.support.door import door_member

pytestmark = pytest.mark.usefixtures("running_workers")

REDEEM = "/api/v1/checkin/redeem"


async def door(res: Resources) -> Account:
    """Door staff of the default organization (where `make_event`'s events live)."""
    return await door_member(res)


def scan(secret: str, device: str = "gate-1", **extra: Any) -> dict[str, Any]:
    return {"secret": secret, "nonce": new_nonce(), "device_id": device, **extra}


async def one_ticket(client: httpx.AsyncClient, res: Resources) -> tuple[Confirmed, dict[str, Any]]:
    c = await confirmed_booking(client, res, quantity=1)
    (ticket,) = await tickets_of(client, c)
    return c, ticket


async def test_twenty_concurrent_scans_admit_exactly_once(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    c, ticket = await one_ticket(client, resources)
    staff = await door(resources)

    answers = await asyncio.gather(
        *(
            client.post(REDEEM, json=scan(ticket["secret"], f"gate-{i}"), headers=staff.headers)
            for i in range(20)
        )
    )

    statuses = sorted(r.status_code for r in answers)
    assert statuses == [200] + [409] * 19, [r.text for r in answers]
    (winner,) = [r.json() for r in answers if r.status_code == 200]
    assert winner["result"] == "admitted"
    assert winner["ticket"]["id"] == ticket["id"]
    assert winner["ticket"]["seat"] == ticket["seat"]
    for r in answers:
        if r.status_code == 409:
            body = r.json()
            assert r.headers["content-type"].startswith("application/problem+json")
            assert body["code"] == "already_checked_in"
            assert body["device_id"] == winner["device_id"]  # when and where it was admitted
            assert body["checked_in_at"] == winner["checked_in_at"]
            assert body["conflict"] is False
    async with resources.engine.connect() as conn:
        scans = await conn.scalar(
            text("SELECT count(*) FROM checkin_scans WHERE ticket_id = :t"), {"t": ticket["id"]}
        )
    assert scans == 20
    (after,) = await tickets_of(client, c)
    assert after["checked_in_at"] is not None


async def test_a_replayed_nonce_gets_the_same_answer(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    _, ticket = await one_ticket(client, resources)
    staff = await door(resources)
    first = scan(ticket["secret"], "gate-a")

    r1 = await client.post(REDEEM, json=first, headers=staff.headers)
    assert r1.status_code == 200, r1.text
    r2 = await client.post(REDEEM, json=first, headers=staff.headers)  # the network retried
    assert r2.status_code == 200, r2.text
    assert r2.json() == {**r1.json(), "replay": True}

    refused = scan(ticket["secret"], "gate-b")
    r3 = await client.post(REDEEM, json=refused, headers=staff.headers)
    r4 = await client.post(REDEEM, json=refused, headers=staff.headers)
    assert r3.status_code == r4.status_code == 409
    assert r4.json() == {**r3.json(), "replay": True}

    # concurrent retries of one new scan: one answer
    again = scan(ticket["secret"], "gate-c")
    answers = await asyncio.gather(
        *(client.post(REDEEM, json=again, headers=staff.headers) for _ in range(5))
    )
    assert {r.status_code for r in answers} == {409}
    assert len({r.json()["checked_in_at"] for r in answers}) == 1

    # the nonce of one scan used for another ticket or device is refused, not answered
    _, other = await one_ticket(client, resources)
    r = await client.post(REDEEM, json={**first, "secret": other["secret"]}, headers=staff.headers)
    assert r.status_code == 409
    assert r.json()["code"] == "nonce_reused"


async def test_scans_key_on_the_ticket_not_the_text(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    _, ticket = await one_ticket(client, resources)
    staff = await door(resources)
    r = await client.post(REDEEM, json=scan(ticket["secret"].lower()), headers=staff.headers)
    assert r.status_code == 200, r.text
    r = await client.post(REDEEM, json=scan(f"  {ticket['secret']}\n"), headers=staff.headers)
    assert r.status_code == 409
    assert r.json()["code"] == "already_checked_in"


async def test_offline_uploads_are_admitted_or_reported_as_conflicts(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    c = await confirmed_booking(client, resources, quantity=2)
    first, second = await tickets_of(client, c)
    staff = await door(resources)
    admin = await make_account(resources, role="admin")
    earlier = datetime.now(UTC) - timedelta(minutes=20)

    # an offline device admitted `first` 20 minutes ago; nobody else has: admitted, its time
    r = await client.post(
        REDEEM,
        json=scan(first["secret"], "handheld-7", scanned_at=earlier.isoformat()),
        headers=staff.headers,
    )
    assert r.status_code == 200, r.text
    assert r.json()["offline"] is True
    assert datetime.fromisoformat(r.json()["checked_in_at"]) == earlier

    # `second` was admitted online; an offline device had let a copy in too: conflict
    online = await client.post(REDEEM, json=scan(second["secret"], "gate-1"), headers=staff.headers)
    assert online.status_code == 200
    upload = scan(second["secret"], "handheld-7", scanned_at=earlier.isoformat())
    r = await client.post(REDEEM, json=upload, headers=staff.headers)
    assert r.status_code == 409
    body = r.json()
    assert body["code"] == "already_checked_in"
    assert body["conflict"] is True
    assert body["device_id"] == "gate-1"
    assert "conflicts" in body["detail"]
    # the online admission stands: the server never rewrites an answer it gave
    (_, after) = await tickets_of(client, c)
    assert after["checked_in_at"] == online.json()["checked_in_at"]

    stats = await client.get(f"/api/v1/admin/events/{c.event.id}/checkins", headers=admin.headers)
    assert stats.status_code == 200, stats.text
    successor = f"/api/v1/organizations/{c.event.organization_id}/events/{c.event.id}/checkins"
    assert stats.headers["deprecation"] == "true"
    assert stats.headers["link"] == f'<{successor}>; rel="successor-version"'
    # the organization route (the platform admin may read any organization's) says the same
    org_stats = await client.get(successor, headers=admin.headers)
    assert org_stats.status_code == 200, org_stats.text
    assert org_stats.json() == stats.json()
    s = stats.json()
    assert s["tickets"] == {
        "issued": 2,
        "valid": 2,
        "revoked": 0,
        "checked_in": 2,
        "not_checked_in": 0,
    }
    assert s["scans"]["total"] == 3
    assert s["scans"]["admitted"] == 2
    assert s["scans"]["already_checked_in"] == 1
    assert s["scans"]["offline"] == 2
    assert s["scans"]["conflicts"] == 1
    assert s["latest"][0]["device_id"] == "handheld-7"
    assert s["latest"][0]["conflict"] is True
    (conflict,) = s["latest_conflicts"]
    assert conflict["ticket_id"] == second["id"]
    assert conflict["checked_in_device"] == "gate-1"

    future = datetime.now(UTC) + timedelta(hours=1)
    r = await client.post(
        REDEEM, json=scan(first["secret"], scanned_at=future.isoformat()), headers=staff.headers
    )
    assert r.status_code == 422
    assert r.json()["code"] == "invalid_scan_time"


async def test_a_cancelled_bookings_ticket_is_refused_at_the_door(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    c, ticket = await one_ticket(client, resources)
    staff = await door(resources)
    r = await client.delete(f"/api/v1/bookings/{c.booking_id}", headers=c.buyer.headers)
    assert r.status_code == 200, r.text

    r = await client.post(REDEEM, json=scan(ticket["secret"]), headers=staff.headers)
    assert r.status_code == 409, r.text
    assert r.json()["code"] == "ticket_revoked"
    assert r.json()["ticket"]["id"] == ticket["id"]
    (after,) = await tickets_of(client, c)
    assert after["checked_in_at"] is None


async def test_refusals(client: httpx.AsyncClient, resources: Resources) -> None:
    c, ticket = await one_ticket(client, resources)
    staff = await door(resources)

    # only the organization's door staff and admins scan; to anyone else the ticket does not
    # exist (issue 30)
    r = await client.post(REDEEM, json=scan(ticket["secret"]), headers=c.buyer.headers)
    assert r.status_code == 404, r.text
    assert r.json()["code"] == "ticket_not_found"
    assert (await client.post(REDEEM, json=scan(ticket["secret"]))).status_code == 401

    # a forged or damaged secret
    secret = ticket["secret"]
    tampered = secret[:-3] + ("AAA" if not secret.endswith("AAA") else "BBB")
    for bad in ("hello", "EVT1.", tampered, secret[:-8]):
        r = await client.post(REDEEM, json=scan(bad), headers=staff.headers)
        assert r.status_code == 422, (bad, r.text)
        assert r.json()["code"] == "invalid_ticket"

    # the door of another event
    r = await client.post(
        REDEEM, json=scan(secret, event_id=str(uuid.uuid4())), headers=staff.headers
    )
    assert r.status_code == 409
    assert r.json()["code"] == "wrong_event"
    r = await client.post(
        REDEEM, json=scan(secret, event_id=str(c.event.id)), headers=staff.headers
    )
    assert r.status_code == 200, r.text


async def test_keys_and_stats_access(client: httpx.AsyncClient, resources: Resources) -> None:
    keys = await client.get("/api/v1/checkin/keys")
    assert keys.status_code == 200
    body = keys.json()
    assert body["format"] == "EVT1"
    (key,) = body["keys"]
    assert key["algorithm"] == "Ed25519"
    assert key["current"] is True
    assert key["pem"].startswith("-----BEGIN PUBLIC KEY-----")
    assert "max-age" in keys.headers["cache-control"]

    staff = await door(resources)
    r = await client.get(f"/api/v1/admin/events/{uuid.uuid4()}/checkins", headers=staff.headers)
    assert r.status_code == 403
    assert r.headers["deprecation"] == "true"
    admin = await make_account(resources, role="admin")
    r = await client.get(f"/api/v1/admin/events/{uuid.uuid4()}/checkins", headers=admin.headers)
    assert r.status_code == 404
    assert r.json()["code"] == "event_not_found"
    assert r.headers["deprecation"] == "true"


async def test_an_organizations_members_read_its_check_in_counts(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    """``GET /organizations/{org_id}/events/{event_id}/checkins``: every member (owner,
    manager, finance, door); outsiders get 404 as if the organization did not exist."""
    admin = await make_account(resources, role="admin")
    org = await make_org(client, resources, admin)
    event = await org_event(client, org, await org_venue(client, org), publish=True)
    buyer = await make_account(resources)
    booking = await org_booking(client, buyer, event["id"], quantity=2)
    r = await client.get(f"/api/v1/bookings/{booking}/tickets", headers=buyer.headers)
    assert r.status_code == 200, r.text
    first, _ = r.json()["tickets"]
    staff = org.members["door"]  # the organization's own door member scans (issue 30)
    r = await client.post(REDEEM, json=scan(first["secret"]), headers=staff.headers)
    assert r.status_code == 200, r.text

    url = org.url(f"/events/{event['id']}/checkins")
    answers = []
    for role, member in org.members.items():
        r = await client.get(url, params={"limit": 5}, headers=member.headers)
        assert r.status_code == 200, (role, r.text)
        assert "deprecation" not in r.headers
        answers.append(r.json())
    assert all(a == answers[0] for a in answers)
    assert answers[0]["event_id"] == event["id"]
    assert answers[0]["tickets"]["issued"] == 2
    assert answers[0]["tickets"]["checked_in"] == 1
    assert answers[0]["tickets"]["not_checked_in"] == 1
    assert answers[0]["scans"]["admitted"] == 1
    assert answers[0]["latest"][0]["ticket_id"] == first["id"]

    # an account of no organization, and another organization's owner: no such organization
    other = await make_org(client, resources, admin, roles=("owner",))
    for outsider in (buyer, other.owner):
        r = await client.get(url, headers=outsider.headers)
        assert r.status_code == 404, r.text
        assert r.json()["code"] == "organization_not_found"
    # a member naming an event of another organization: no such event
    theirs = await org_event(client, other, await org_venue(client, other))
    r = await client.get(org.url(f"/events/{theirs['id']}/checkins"), headers=org.owner.headers)
    assert r.status_code == 404
    assert r.json()["code"] == "event_not_found"
    r = await client.get(url, headers={})
    assert r.status_code == 401
