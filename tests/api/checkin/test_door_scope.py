"""The door is the organization's (issue 30): a scanner admits a ticket only when it is a
``door``, ``owner`` or ``manager`` member of the organization whose event the ticket is for.
Anyone else — another organization's door, a platform ``door`` account without membership, a
``finance`` member — gets the unknown ticket's 404, and the door's offline list likewise."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from evently.infra.resources import Resources
from tests.api.organizations.helpers import confirmed_booking, make_org, org_event, org_venue
from tests.api.tickets.helpers import new_nonce
from tests.factories import Account, make_account
from tests.support.door import door_member

pytestmark = pytest.mark.usefixtures("running_workers")

REDEEM = "/api/v1/checkin/redeem"


def scan(secret: str, device: str = "gate-1") -> dict[str, Any]:
    return {"secret": secret, "nonce": new_nonce(), "device_id": device}


async def tickets(
    client: httpx.AsyncClient, buyer: Account, booking_id: str
) -> list[dict[str, Any]]:
    r = await client.get(f"/api/v1/bookings/{booking_id}/tickets", headers=buyer.headers)
    assert r.status_code == 200, r.text
    found: list[dict[str, Any]] = r.json()["tickets"]
    return found


async def test_a_door_member_admits_its_organizations_tickets_only(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    admin = await make_account(resources, role="admin")
    a = await make_org(client, resources, admin)
    b = await make_org(client, resources, admin)
    a_event = await org_event(client, a, await org_venue(client, a), publish=True)
    b_event = await org_event(client, b, await org_venue(client, b), publish=True)
    buyer = await make_account(resources)
    a_tickets = await tickets(
        client, buyer, await confirmed_booking(client, buyer, a_event["id"], 4)
    )
    (b_ticket,) = await tickets(
        client, buyer, await confirmed_booking(client, buyer, b_event["id"])
    )

    a_door = a.members["door"]
    platform_door = await make_account(resources, role="door")  # no membership anywhere
    unknown = {"code": "ticket_not_found", "status": 404}

    def refused_as_unknown(r: httpx.Response) -> None:
        assert r.status_code == 404, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert {k: r.json()[k] for k in unknown} == unknown

    # A's door admits A's ticket
    r = await client.post(REDEEM, json=scan(a_tickets[0]["secret"]), headers=a_door.headers)
    assert r.status_code == 200, r.text
    assert r.json()["ticket"]["id"] == a_tickets[0]["id"]

    # B's ticket at A's door: as if it did not exist (and it stays unadmitted)
    refused_as_unknown(
        await client.post(REDEEM, json=scan(b_ticket["secret"]), headers=a_door.headers)
    )
    # a platform door account without membership: nowhere, not even the default organization
    refused_as_unknown(
        await client.post(REDEEM, json=scan(a_tickets[1]["secret"]), headers=platform_door.headers)
    )
    refused_as_unknown(
        await client.post(REDEEM, json=scan(b_ticket["secret"]), headers=platform_door.headers)
    )
    # finance sells, it does not scan
    refused_as_unknown(
        await client.post(
            REDEEM, json=scan(a_tickets[1]["secret"]), headers=a.members["finance"].headers
        )
    )
    # a nonce answered for A's door tells an outsider nothing either
    first = scan(a_tickets[2]["secret"])
    assert (await client.post(REDEEM, json=first, headers=a_door.headers)).status_code == 200
    refused_as_unknown(await client.post(REDEEM, json=first, headers=platform_door.headers))

    # B's own door admits B's ticket: nobody else got to it
    r = await client.post(REDEEM, json=scan(b_ticket["secret"]), headers=b.members["door"].headers)
    assert r.status_code == 200, r.text

    # owners and managers work their door too; the platform admin everywhere
    r = await client.post(REDEEM, json=scan(a_tickets[1]["secret"]), headers=a.owner.headers)
    assert r.status_code == 200, r.text
    r = await client.post(
        REDEEM, json=scan(a_tickets[3]["secret"]), headers=a.members["manager"].headers
    )
    assert r.status_code == 200, r.text
    r = await client.post(REDEEM, json=scan(a_tickets[3]["secret"]), headers=admin.headers)
    assert r.status_code == 409, r.text
    assert r.json()["code"] == "already_checked_in"

    # a member of A who is also a door member of B: B's tickets at B's events only
    both = await door_member(resources, b.id, platform_role="buyer")
    refused_as_unknown(
        await client.post(REDEEM, json=scan(a_tickets[0]["secret"]), headers=both.headers)
    )


async def test_the_offline_list_is_scoped_like_redeem(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    admin = await make_account(resources, role="admin")
    a = await make_org(client, resources, admin)
    b = await make_org(client, resources, admin)
    a_event = await org_event(client, a, await org_venue(client, a), publish=True)
    buyer = await make_account(resources)
    (first,) = await tickets(client, buyer, await confirmed_booking(client, buyer, a_event["id"]))
    cancelled = await confirmed_booking(client, buyer, a_event["id"], 2)
    second, third = await tickets(client, buyer, cancelled)
    a_door = a.members["door"]
    r = await client.post(REDEEM, json=scan(first["secret"], "gate-2"), headers=a_door.headers)
    assert r.status_code == 200, r.text
    admitted_at = r.json()["checked_in_at"]

    url = f"/api/v1/checkin/events/{a_event['id']}/revocations"
    r = await client.get(url, headers=a_door.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert r.headers["cache-control"] == "no-store"
    assert body["event_id"] == a_event["id"]
    assert body["revoked"] == []
    assert body["checked_in"] == [
        {"ticket_id": first["id"], "checked_in_at": admitted_at, "device_id": "gate-2"}
    ]

    # a cancelled booking's tickets are revoked: on the list
    r = await client.delete(f"/api/v1/bookings/{cancelled}", headers=buyer.headers)
    assert r.status_code == 200, r.text
    r = await client.get(url, headers=a.members["manager"].headers)
    assert r.status_code == 200, r.text
    assert sorted(r.json()["revoked"]) == sorted([second["id"], third["id"]])
    assert [t["ticket_id"] for t in r.json()["checked_in"]] == [first["id"]]

    for outsider in (
        b.members["door"],
        a.members["finance"],
        await make_account(resources, role="door"),
        buyer,
    ):
        r = await client.get(url, headers=outsider.headers)
        assert r.status_code == 404, r.text
        assert r.json()["code"] == "event_not_found"
    r = await client.get(
        f"/api/v1/checkin/events/{uuid.uuid4()}/revocations", headers=admin.headers
    )
    assert r.status_code == 404
    assert (await client.get(url)).status_code == 401
