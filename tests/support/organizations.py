"""Organizations made through the API: the platform admin creates one with its owner, the
owner adds a member per role; venues, events and confirmed bookings of it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

from evently.infra.resources import Resources
from tests.support.events import event_body, unique
from tests.support.factories import Account, make_accounts

ORGS = "/api/v1/organizations"
ROLES = ("owner", "manager", "finance", "door")


@dataclass
class Org:
    id: str
    name: str
    members: dict[str, Account] = field(default_factory=dict)  # role -> account

    @property
    def owner(self) -> Account:
        return self.members["owner"]

    def url(self, path: str = "") -> str:
        return f"{ORGS}/{self.id}{path}"


async def make_org(
    client: httpx.AsyncClient,
    res: Resources,
    admin: Account,
    *,
    roles: tuple[str, ...] = ROLES,
    name: str | None = None,
) -> Org:
    accounts = await make_accounts(res, len(roles))
    by_role = dict(zip(roles, accounts, strict=True))
    owner = by_role.get("owner") or accounts[0]
    r = await client.post(
        ORGS,
        json={"name": name or unique("Org"), "owner_email": owner.user.email},
        headers=admin.headers,
    )
    assert r.status_code == 201, r.text
    org = Org(id=r.json()["id"], name=r.json()["name"], members={"owner": owner})
    for role, account in by_role.items():
        if account is owner:
            continue
        r = await client.post(
            org.url("/members"),
            json={"email": account.user.email, "role": role},
            headers=owner.headers,
        )
        assert r.status_code == 201, r.text
        org.members[role] = account
    return org


async def org_venue(
    client: httpx.AsyncClient, org: Org, *, capacity: int = 500, city: str = "Oslo"
) -> dict[str, Any]:
    r = await client.post(
        org.url("/venues"),
        json={"name": unique("Hall"), "address": "Main st 1", "city": city, "capacity": capacity},
        headers=org.owner.headers,
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


async def org_event(
    client: httpx.AsyncClient,
    org: Org,
    venue: dict[str, Any],
    *,
    publish: bool = False,
    **over: Any,
) -> dict[str, Any]:
    r = await client.post(
        org.url("/events"), json=event_body(venue["id"], **over), headers=org.owner.headers
    )
    assert r.status_code == 201, r.text
    event = dict(r.json())
    if publish:
        r = await client.post(org.url(f"/events/{event['id']}/publish"), headers=org.owner.headers)
        assert r.status_code == 200, r.text
        event = dict(r.json())
    return event


async def confirmed_booking(
    client: httpx.AsyncClient,
    buyer: Account,
    event_id: str | uuid.UUID,
    quantity: int = 1,
    *,
    seats: list[str] | None = None,
) -> str:
    """Reserve (``quantity``, or these ``seats`` of a seated event) and pay (needs the running
    workers)."""
    asked: dict[str, Any] = {"seats": seats} if seats else {"quantity": quantity}
    r = await client.post(
        "/api/v1/bookings/reserve",
        json={"event_id": str(event_id), **asked},
        headers={**buyer.headers, "Idempotency-Key": uuid.uuid4().hex},
    )
    assert r.status_code == 201, r.text
    booking_id = str(r.json()["booking_id"])
    r = await client.post(
        "/api/v1/bookings/confirm",
        json={"booking_id": booking_id, "payment_method": "pm_card_visa"},
        headers=buyer.headers,
    )
    assert r.status_code == 200, r.text
    return booking_id
