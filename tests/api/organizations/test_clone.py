"""Cloning an event to a new date (issue 30): ``POST /organizations/{org}/events/{id}/clone``
gives a draft at the same venue with the same types (sales windows shifted by the same offset,
nothing sold) and codes (validity shifted, uses reset); owners and managers only; another
organization's event is 404; the source is untouched."""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx
import pytest
from sqlalchemy import text

from evently import questions
from evently.db.models import DEFAULT_ORGANIZATION_ID
from evently.infra.resources import Resources
from tests.support.factories import Account, make_account, make_accounts
from tests.support.organizations import confirmed_booking, make_org, org_event, org_venue
from tests.support.problems import assert_problem
from tests.support.seating import make_seated_event, plan_body

pytestmark = pytest.mark.usefixtures("running_workers")

ORG = f"/api/v1/organizations/{DEFAULT_ORGANIZATION_ID}"


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


async def test_a_seated_event_clones_with_its_plan_blocked_seats_types_questions_and_rules(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    """Last season's seated event cloned to a new date: the same plan, the same seats blocked
    (capacity = the free seats), each ticket type still selling its category at its price with
    its tax rule, the questions asked for the copied types, and the refund, bank transfer and
    ticket transfer settings (deadlines shifted). The copy publishes and sells seats."""
    admin = await make_account(resources, "admin")
    event = await make_seated_event(
        resources,
        plan_body(2, 2, 5, categories=["front", "back"]),
        prices={"front": "50.00", "back": "30.00"},
    )
    base = f"{ORG}/events/{event.id}"
    r = await client.post(
        f"{base}/blocked-seats", json={"seats": ["A-1-1", "B-2-5"]}, headers=admin.headers
    )
    assert r.status_code == 200, r.text
    r = await client.post(
        f"{ORG}/tax-rules",
        json={"name": "VAT", "rate": "7.00", "price_includes_tax": True},
        headers=admin.headers,
    )
    assert r.status_code == 201, r.text
    vat = r.json()["id"]
    starts = event.starts_at
    async with resources.sessionmaker() as session, session.begin():
        front = await session.scalar(
            text("SELECT id FROM ticket_types WHERE event_id = :e AND seat_category = 'front'"),
            {"e": event.id},
        )
        await session.execute(
            text("UPDATE ticket_types SET tax_rule_id = :t WHERE id = :f"), {"t": vat, "f": front}
        )
        await session.execute(
            text(
                'UPDATE events SET refund_policy = \'{"mode": "organizer_only"}\', '
                "bank_transfer_days = 5, transfers_allowed = false, "
                "attendee_answers_until = :until WHERE id = :e"
            ),
            {"e": event.id, "until": starts - timedelta(days=2)},
        )
        await questions.create(
            session,
            event.id,
            questions.QuestionSpec("Company", "text", [], True, "ticket", [front]),
        )

    offset = timedelta(days=364)
    body = {
        "starts_at": (starts + offset).isoformat(),
        "ends_at": (event.ends_at + offset).isoformat(),
    }
    r = await client.post(f"{base}/clone", json=body, headers=admin.headers)
    assert r.status_code == 201, r.text
    copy = r.json()
    async with resources.engine.connect() as conn:
        plan_id = await conn.scalar(
            text("SELECT seating_plan_id FROM events WHERE id = :e"), {"e": event.id}
        )
    assert copy["seating_plan_id"] == str(plan_id)
    assert (copy["capacity"], copy["available"]) == (18, 18)  # 20 seats, 2 blocked
    assert copy["refund_policy"] == {"mode": "organizer_only"}
    assert copy["bank_transfer"]["enabled"] is True
    async with resources.engine.connect() as conn:
        seats = (
            await conn.execute(
                text("SELECT seat_id, blocked FROM event_seats WHERE event_id = :e"),
                {"e": copy["id"]},
            )
        ).all()
        assert len(seats) == 20
        assert sorted(s.seat_id for s in seats if s.blocked) == ["A-1-1", "B-2-5"]
        types = {
            t.seat_category: t
            for t in await conn.execute(
                text(
                    "SELECT id, seat_category, price, tax_rule_id FROM ticket_types "
                    "WHERE event_id = :e AND NOT is_default"
                ),
                {"e": copy["id"]},
            )
        }
        assert {c: str(t.price) for c, t in types.items()} == {"front": "50.00", "back": "30.00"}
        assert str(types["front"].tax_rule_id) == vat
        assert types["back"].tax_rule_id is None
        ev = (
            await conn.execute(
                text("SELECT transfers_allowed, attendee_answers_until FROM events WHERE id = :e"),
                {"e": copy["id"]},
            )
        ).one()
        assert ev.transfers_allowed is False
        assert ev.attendee_answers_until == starts - timedelta(days=2) + offset
        (question,) = (
            await conn.execute(
                text(
                    "SELECT label, required, ticket_type_ids FROM event_questions "
                    "WHERE event_id = :e"
                ),
                {"e": copy["id"]},
            )
        ).all()
        assert (question.label, question.required) == ("Company", True)
        assert question.ticket_type_ids == [types["front"].id]

    # the copy publishes, shows the same blocked seats, and sells a front seat at its price
    r = await client.post(f"{ORG}/events/{copy['id']}/publish", headers=admin.headers)
    assert r.status_code == 200, r.text
    r = await client.get(f"/api/v1/events/{copy['id']}/seats")
    assert sorted(r.json()["blocked"]) == ["A-1-1", "B-2-5"]
    (buyer,) = await make_accounts(resources, 1)
    r = await client.post(
        "/api/v1/bookings/reserve",
        json={"event_id": copy["id"], "seats": ["A-1-2"]},
        headers=buyer.headers,
    )
    assert r.status_code == 201, r.text
    assert r.json()["amount"] == "50.00"
