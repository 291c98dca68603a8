"""Organizations end to end: the platform admin makes one with its owner, owners manage members,
members read what their organization owns (drafts, bookings, attendees, CSV exports), finance
refunds, owners read the audit log; the default organization keeps what existed before."""

from __future__ import annotations

import csv
import io
import uuid

import httpx
import pytest
from sqlalchemy import text

from evently.db.models import DEFAULT_ORGANIZATION_ID
from evently.infra.resources import Resources
from tests.support.events import create_event, create_venue, event_body, unique
from tests.support.factories import Account, make_account, make_accounts
from tests.support.organizations import (
    ORGS,
    confirmed_booking,
    make_org,
    org_event,
    org_venue,
)
from tests.support.problems import assert_problem

pytestmark = pytest.mark.usefixtures("running_workers")


@pytest.fixture(scope="module")
async def admin(resources: Resources) -> Account:
    return await make_account(resources, "admin")


async def test_the_platform_admin_creates_an_organization_with_its_owner(
    client: httpx.AsyncClient, resources: Resources, admin: Account
) -> None:
    owner, buyer = await make_accounts(resources, 2)
    name = unique("Concerts AS")
    r = await client.post(
        ORGS, json={"name": name, "owner_email": owner.user.email.upper()}, headers=admin.headers
    )
    assert r.status_code == 201, r.text
    org = r.json()
    assert org["name"] == name
    assert org["is_default"] is False
    assert uuid.UUID(org["id"])

    mine = await client.get(ORGS, headers=owner.headers)
    assert [(o["id"], o["role"]) for o in mine.json()["items"]] == [(org["id"], "owner")]
    assert (await client.get(ORGS, headers=buyer.headers)).json()["items"] == []
    everything = await client.get(ORGS, params={"limit": 100}, headers=admin.headers)
    assert everything.json()["total"] >= 2  # the default organization and this one
    got = await client.get(f"{ORGS}/{org['id']}", headers=owner.headers)
    assert got.status_code == 200
    assert got.json()["role"] == "owner"

    # only the platform admin creates organizations; the owner must be an account
    refused = await client.post(
        ORGS, json={"name": "Mine", "owner_email": buyer.user.email}, headers=buyer.headers
    )
    assert_problem(refused, 403, "forbidden")
    unknown = await client.post(
        ORGS, json={"name": "X", "owner_email": "nobody@example.com"}, headers=admin.headers
    )
    assert_problem(unknown, 422, "account_not_found")


async def test_owners_manage_members_and_an_organization_keeps_an_owner(
    client: httpx.AsyncClient, resources: Resources, admin: Account
) -> None:
    org = await make_org(client, resources, admin)
    owner, manager = org.owner, org.members["manager"]
    newcomer = await make_account(resources)

    listed = await client.get(org.url("/members"), headers=org.members["door"].headers)
    assert {m["role"] for m in listed.json()["items"]} == {"owner", "manager", "finance", "door"}

    add = await client.post(
        org.url("/members"),
        json={"email": newcomer.user.email, "role": "finance"},
        headers=owner.headers,
    )
    assert add.status_code == 201
    assert add.json()["role"] == "finance"
    again = await client.post(
        org.url("/members"),
        json={"email": newcomer.user.email, "role": "door"},
        headers=owner.headers,
    )
    assert_problem(again, 409, "already_member")
    nobody = await client.post(
        org.url("/members"),
        json={"email": "no-such-account@example.com", "role": "door"},
        headers=owner.headers,
    )
    assert_problem(nobody, 422, "account_not_found")
    by_manager = await client.post(
        org.url("/members"),
        json={"email": newcomer.user.email, "role": "door"},
        headers=manager.headers,
    )
    assert_problem(by_manager, 403, "organization_role_required")

    # the last owner can be neither demoted nor removed...
    demote = await client.patch(
        org.url(f"/members/{owner.id}"), json={"role": "manager"}, headers=owner.headers
    )
    assert_problem(demote, 409, "last_owner")
    leave = await client.delete(org.url(f"/members/{owner.id}"), headers=owner.headers)
    assert_problem(leave, 409, "last_owner")
    # ...until there is another
    promote = await client.patch(
        org.url(f"/members/{newcomer.id}"), json={"role": "owner"}, headers=owner.headers
    )
    assert promote.status_code == 200
    assert promote.json()["role"] == "owner"
    demote = await client.patch(
        org.url(f"/members/{owner.id}"), json={"role": "manager"}, headers=newcomer.headers
    )
    assert demote.status_code == 200
    assert demote.json()["role"] == "manager"

    removed = await client.delete(org.url(f"/members/{manager.id}"), headers=newcomer.headers)
    assert removed.status_code == 204
    assert_problem(
        await client.get(org.url(), headers=manager.headers), 404, "organization_not_found"
    )
    gone = await client.delete(org.url(f"/members/{manager.id}"), headers=newcomer.headers)
    assert_problem(gone, 404, "member_not_found")


async def test_what_existed_belongs_to_the_default_organization_and_admin_routes_keep_working(
    client: httpx.AsyncClient, resources: Resources, admin: Account
) -> None:
    venue = await create_venue(client, admin)
    event = await create_event(client, admin, venue, publish=True)
    assert venue["organization_id"] == event["organization_id"] == str(DEFAULT_ORGANIZATION_ID)
    listed = await client.get(ORGS, params={"limit": 100}, headers=admin.headers)
    default = [o for o in listed.json()["items"] if o["is_default"]]
    assert [o["id"] for o in default] == [str(DEFAULT_ORGANIZATION_ID)]
    # the platform admin reads it through the organization routes too (no membership needed)
    seen = await client.get(
        f"{ORGS}/{DEFAULT_ORGANIZATION_ID}/events/{event['id']}", headers=admin.headers
    )
    assert seen.status_code == 200

    # an admin venue may name its organization; its events follow it
    org = await make_org(client, resources, admin, roles=("owner",))
    r = await client.post(
        "/api/v1/admin/venues",
        json={
            "name": unique("Hall"),
            "address": "a",
            "city": "Oslo",
            "capacity": 100,
            "organization_id": org.id,
        },
        headers=admin.headers,
    )
    assert r.status_code == 201
    assert r.json()["organization_id"] == org.id
    theirs = await create_event(client, admin, r.json())
    assert theirs["organization_id"] == org.id
    owned = await client.get(org.url(f"/events/{theirs['id']}"), headers=org.owner.headers)
    assert owned.status_code == 200
    assert owned.json()["status"] == "draft"
    bad = await client.post(
        "/api/v1/admin/venues",
        json={
            "name": "x",
            "address": "a",
            "city": "c",
            "capacity": 1,
            "organization_id": str(uuid.uuid4()),
        },
        headers=admin.headers,
    )
    assert_problem(bad, 422, "invalid_organization")

    # an event never moves to another organization's venue
    moved = await client.patch(
        f"/api/v1/admin/events/{event['id']}",
        json={"venue_id": r.json()["id"]},
        headers=admin.headers,
    )
    assert_problem(moved, 422, "venue_not_found")
    async with resources.engine.connect() as conn:
        orgs = await conn.scalar(text("SELECT count(*) FROM events WHERE organization_id IS NULL"))
    assert orgs == 0


async def test_members_read_what_their_organization_owns(
    client: httpx.AsyncClient, resources: Resources, admin: Account
) -> None:
    org = await make_org(client, resources, admin)
    venue = await org_venue(client, org, city="Tromsø")
    draft = await org_event(client, org, venue, name=unique("Draft gig"))
    live = await org_event(client, org, venue, publish=True, name=unique("Live gig"), capacity=5)
    door = org.members["door"].headers

    events = await client.get(org.url("/events"), headers=door)
    assert {e["id"] for e in events.json()["items"]} == {draft["id"], live["id"]}
    drafts = await client.get(org.url("/events"), params={"status": "draft"}, headers=door)
    assert [e["id"] for e in drafts.json()["items"]] == [draft["id"]]
    named = await client.get(org.url("/events"), params={"q": "live GIG"}, headers=door)
    assert [e["id"] for e in named.json()["items"]] == [live["id"]]
    venues = await client.get(org.url("/venues"), params={"city": "tromsø"}, headers=door)
    assert [v["id"] for v in venues.json()["items"]] == [venue["id"]]

    # bookings and attendees: owners, managers, finance (door: 403)
    buyers = await make_accounts(resources, 2)
    async with resources.engine.begin() as conn:  # a name a spreadsheet would run
        await conn.execute(
            text("UPDATE users SET full_name = '=HYPERLINK(\"x\")' WHERE id = :id"),
            {"id": buyers[0].id},
        )
    paid = await confirmed_booking(client, buyers[0], live["id"], quantity=2)
    held = await client.post(
        "/api/v1/bookings/reserve",
        json={"event_id": live["id"], "quantity": 1},
        headers=buyers[1].headers,
    )
    assert held.status_code == 201
    finance = org.members["finance"].headers
    bookings = await client.get(org.url(f"/events/{live['id']}/bookings"), headers=finance)
    assert bookings.status_code == 200
    assert [b["status"] for b in bookings.json()["items"]] == ["held", "confirmed"]
    assert bookings.json()["items"][1]["buyer"]["email"] == buyers[0].user.email
    only = await client.get(
        org.url(f"/events/{live['id']}/bookings"), params={"status": "confirmed"}, headers=finance
    )
    assert [b["id"] for b in only.json()["items"]] == [paid]
    attendees = await client.get(org.url(f"/events/{live['id']}/attendees"), headers=finance)
    assert [(a["booking_id"], a["quantity"]) for a in attendees.json()["items"]] == [(paid, 2)]
    assert_problem(
        await client.get(org.url(f"/events/{live['id']}/bookings"), headers=door),
        403,
        "organization_role_required",
    )

    export = await client.get(org.url(f"/events/{live['id']}/bookings.csv"), headers=finance)
    assert export.status_code == 200
    assert export.headers["content-type"] == "text/csv; charset=utf-8"
    assert f"event-{live['id']}-bookings.csv" in export.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert [(r["booking_id"], r["status"], r["quantity"]) for r in rows] == [
        (paid, "confirmed", "2"),
        (held.json()["booking_id"], "held", "1"),
    ]
    assert rows[0]["buyer_name"] == '\'=HYPERLINK("x")'  # not a formula
    assert rows[0]["amount"] == "50.00"
    people = await client.get(org.url(f"/events/{live['id']}/attendees.csv"), headers=finance)
    assert [r["buyer_email"] for r in csv.DictReader(io.StringIO(people.text))] == [
        buyers[0].user.email
    ]
    analytics = await client.get(org.url(f"/events/{live['id']}/analytics"), headers=finance)
    assert analytics.status_code == 200
    assert analytics.json()["sold"] == 2


async def test_finance_refunds_and_owners_read_the_audit_log(
    client: httpx.AsyncClient, resources: Resources, admin: Account
) -> None:
    org = await make_org(client, resources, admin)
    manager, finance, owner = org.members["manager"], org.members["finance"], org.owner
    r = await client.post(
        org.url("/venues"),
        json={"name": unique("Hall"), "address": "a", "city": "Oslo", "capacity": 50},
        headers=manager.headers,
    )
    venue = r.json()
    event = await org_event(client, org, venue, publish=True, capacity=10)
    changed = await client.patch(
        org.url(f"/events/{event['id']}"),
        json={"capacity": 8, "description": "Changed"},
        headers=manager.headers,
    )
    assert changed.status_code == 200
    buyer = (await make_accounts(resources, 1))[0]
    booking = await confirmed_booking(client, buyer, event["id"])

    # refunds: owners and finance only; a confirmed booking only
    assert_problem(
        await client.post(
            org.url(f"/events/{event['id']}/bookings/{booking}/refund"), headers=manager.headers
        ),
        403,
        "organization_role_required",
    )
    refund = await client.post(
        org.url(f"/events/{event['id']}/bookings/{booking}/refund"), headers=finance.headers
    )
    assert refund.status_code == 200, refund.text
    assert refund.json() == {"booking_id": booking, "status": "cancelled", "refunded": True}
    again = await client.post(
        org.url(f"/events/{event['id']}/bookings/{booking}/refund"), headers=finance.headers
    )
    assert_problem(again, 409, "booking_not_confirmed")
    cancel = await client.delete(org.url(f"/events/{event['id']}"), headers=manager.headers)
    assert cancel.status_code == 202

    # the audit log: owners only, newest first, with who and what
    assert_problem(
        await client.get(org.url("/audit"), headers=manager.headers),
        403,
        "organization_role_required",
    )
    log = await client.get(org.url("/audit"), params={"limit": 100}, headers=owner.headers)
    assert log.status_code == 200
    entries = log.json()["items"]
    actions = [e["action"] for e in reversed(entries)]
    assert actions[:2] == ["organization.created", "member.added"]
    assert actions[-6:] == [
        "venue.created",
        "event.created",
        "event.published",
        "event.updated",
        "booking.refunded",
        "event.cancelled",
    ]
    by_action = {e["action"]: e for e in entries}
    assert by_action["organization.created"]["actor"] == f"admin:{admin.id}"
    assert by_action["venue.created"]["actor"] == f"user:{manager.id}"
    assert by_action["event.updated"]["details"]["capacity"] == {"from": 10, "to": 8}
    assert by_action["event.updated"]["details"]["description"]["to"] == "Changed"
    refunded = by_action["booking.refunded"]
    assert refunded["actor_user_id"] == str(finance.id)
    assert refunded["target_id"] == booking
    assert refunded["details"]["refunded"] is True
    assert by_action["event.cancelled"]["details"]["workflow_id"] == f"event-cancel-{event['id']}"
    filtered = await client.get(
        org.url("/audit"), params={"action": "event.cancelled"}, headers=owner.headers
    )
    assert [e["target_id"] for e in filtered.json()["items"]] == [event["id"]]


async def test_the_platform_admin_manages_any_organization_through_its_routes(
    client: httpx.AsyncClient, resources: Resources, admin: Account
) -> None:
    """No membership needed: the platform admin passes every role check of the organization
    routes, and the audit log names it ``admin:<id>``, not a member."""
    org = await make_org(client, resources, admin, roles=("owner", "door"))
    members = await client.get(org.url("/members"), headers=admin.headers)
    assert members.status_code == 200
    assert str(admin.id) not in {m["user_id"] for m in members.json()["items"]}

    r = await client.post(
        org.url("/venues"),
        json={"name": unique("Hall"), "address": "a", "city": "Oslo", "capacity": 500},
        headers=admin.headers,
    )
    assert r.status_code == 201, r.text
    assert "deprecation" not in r.headers  # the organization routes are the current API
    venue = r.json()
    assert venue["organization_id"] == org.id
    r = await client.post(org.url("/events"), json=event_body(venue["id"]), headers=admin.headers)
    assert r.status_code == 201, r.text
    event = r.json()
    on_event = org.url(f"/events/{event['id']}")
    assert (await client.post(f"{on_event}/publish", headers=admin.headers)).status_code == 200
    r = await client.post(
        f"{on_event}/ticket-types", json={"name": "VIP", "price": "50.00"}, headers=admin.headers
    )
    assert r.status_code == 201, r.text
    for read in ("/analytics", "/checkins", "/bookings", "/attendees"):
        r = await client.get(on_event + read, headers=admin.headers)
        assert r.status_code == 200, (read, r.text)
    # a role the door member lacks is no obstacle to the platform admin
    door = org.members["door"]
    assert_problem(
        await client.get(f"{on_event}/analytics", headers=door.headers),
        403,
        "organization_role_required",
    )

    log = await client.get(org.url("/audit"), params={"limit": 100}, headers=org.owner.headers)
    by_action = {e["action"]: e for e in log.json()["items"]}
    for action in ("venue.created", "event.created", "event.published", "ticket_type.create"):
        assert by_action[action]["actor"] == f"admin:{admin.id}", action
        assert by_action[action]["actor_user_id"] == str(admin.id), action
