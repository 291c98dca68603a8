"""Cloning an event to a new date (issue 30): ``POST /organizations/{org}/events/{id}/clone``
gives a draft at the same venue with the same types (sales windows shifted by the same offset,
nothing sold) and codes (validity shifted, uses reset); owners and managers only; another
organization's event is 404; the source is untouched."""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx
import pytest

from evently.infra.resources import Resources
from tests.api.events.conftest import assert_problem
from tests.api.organizations.helpers import confirmed_booking, make_org, org_event, org_venue
from tests.factories import Account, make_account, make_accounts

pytestmark = pytest.mark.usefixtures("running_workers")


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def test_clone_copies_venue_types_and_codes_to_a_new_date(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    admin = await make_account(resources, "admin")
    org = await make_org(client, resources, admin)
    other = await make_org(client, resources, admin, roles=("owner",))
    venue = await org_venue(client, org)
    event = await org_event(client, org, venue, capacity=50, price="30.00")
    base = org.url(f"/events/{event['id']}")
    starts = _at(event["starts_at"])
    owner = org.owner.headers
    r = await client.post(
        f"{base}/ticket-types",
        json={
            "name": "VIP",
            "price": "90.00",
            "capacity": 5,
            "max_per_booking": 2,
            "sales_start": (starts - timedelta(days=3)).isoformat(),
            "sales_end": (starts - timedelta(hours=1)).isoformat(),
        },
        headers=owner,
    )
    assert r.status_code == 201, r.text
    vip = r.json()
    r = await client.post(
        f"{base}/promo-codes",
        json={
            "code": "friends",
            "percent_off": "10",
            "max_uses": 3,
            "valid_until": (starts - timedelta(days=1)).isoformat(),
            "ticket_type_ids": [vip["id"]],
        },
        headers=owner,
    )
    assert r.status_code == 201, r.text
    await client.post(f"{base}/publish", headers=owner)
    (buyer,) = await make_accounts(resources, 1)
    await confirmed_booking(client, buyer, event["id"])  # a sale the copy must not inherit

    offset = timedelta(days=30, hours=2)
    new_starts, new_ends = starts + offset, starts + offset + timedelta(hours=4)
    body = {"starts_at": new_starts.isoformat(), "ends_at": new_ends.isoformat()}
    r = await client.post(f"{base}/clone", json=body, headers=org.members["manager"].headers)
    assert r.status_code == 201, r.text
    copy = r.json()
    assert copy["id"] != event["id"]
    assert copy["status"] == "draft"
    for key in ("name", "description", "event_type", "capacity", "price", "currency"):
        assert copy[key] == event[key], key
    assert copy["venue_id"] == venue["id"]
    assert _at(copy["starts_at"]) == new_starts
    assert _at(copy["ends_at"]) == new_ends
    assert (copy["available"], copy["sold"]) == (50, 0)

    types = (await client.get(org.url(f"/events/{copy['id']}/ticket-types"), headers=owner)).json()
    by_name = {t["name"]: t for t in types["items"]}
    assert set(by_name) == {
        t["name"] for t in (await client.get(f"{base}/ticket-types", headers=owner)).json()["items"]
    }
    vip_copy = by_name["VIP"]
    assert vip_copy["id"] != vip["id"]
    assert (vip_copy["price"], vip_copy["capacity"], vip_copy["max_per_booking"]) == (
        "90.00",
        5,
        2,
    )
    assert _at(vip_copy["sales_start"]) == _at(vip["sales_start"]) + offset
    assert _at(vip_copy["sales_end"]) == _at(vip["sales_end"]) + offset
    assert all(t["sold"] == 0 and t["held"] == 0 for t in types["items"])

    codes = (await client.get(org.url(f"/events/{copy['id']}/promo-codes"), headers=owner)).json()
    (code,) = codes["items"]
    assert (code["code"], code["uses"], code["max_uses"]) == ("FRIENDS", 0, 3)
    assert code["ticket_type_ids"] == [vip_copy["id"]]
    assert _at(code["valid_until"]) == starts - timedelta(days=1) + offset

    # the source is untouched: still published, its sale still counted
    source = (await client.get(base, headers=owner)).json()
    assert source["status"] == "published"
    assert source["sold"] == 1

    # finance and door may not clone; another organization does not see the event
    for role in ("finance", "door"):
        refused = await client.post(f"{base}/clone", json=body, headers=org.members[role].headers)
        assert_problem(refused, 403, "organization_role_required")
    stranger: Account = other.owner
    assert_problem(
        await client.post(
            other.url(f"/events/{event['id']}/clone"), json=body, headers=stranger.headers
        ),
        404,
        "event_not_found",
    )
    backwards = {"starts_at": new_ends.isoformat(), "ends_at": new_starts.isoformat()}
    assert_problem(
        await client.post(f"{base}/clone", json=backwards, headers=owner), 422, "invalid_schedule"
    )
