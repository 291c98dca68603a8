"""The cross-tenant matrix: every organizer route (every route under /api/v1/organizations)
x every principal — each role of organization A, the platform admin, the owner of another
organization B, an account with no membership, nobody — on A's path, plus A's members on B's
path and A's owner on A's path naming B's things → the documented status; and nothing of B in
any answer to anyone but the platform admin.

A new organizer route fails ``test_the_matrix_covers_every_organizer_route`` until it is added
to ``ROUTES`` with the roles it allows."""

from __future__ import annotations

import itertools
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from api.app import create_app
from evently.db.models import Event, OrganizationMember
from evently.infra.resources import Resources
from evently.webhooks import subscriptions
from tests.support.events import event_body, unique
from tests.support.factories import Account, make_account, make_accounts, unique_email
from tests.support.organizations import (
    ORGS,
    Org,
    confirmed_booking,
    make_org,
    org_event,
    org_venue,
)
from tests.support.seating import plan_body

pytestmark = pytest.mark.usefixtures("running_workers")

ROLES = ("owner", "manager", "finance", "door")
PRINCIPALS = (*ROLES, "admin", "other_org_owner", "no_membership", "anonymous")

# who may use a route, besides the platform admin (who may use all of them)
ANY = frozenset(ROLES)
MANAGE = frozenset({"owner", "manager"})
SALES = frozenset({"owner", "manager", "finance"})
REFUND = frozenset({"owner", "finance"})
OWNER = frozenset({"owner"})


@dataclass
class Tenant:
    org: Org
    venue: dict[str, Any]
    event: dict[str, Any]  # published, with a confirmed booking
    draft: dict[str, Any]
    booking: str
    webhook: dict[str, Any]
    delivery: uuid.UUID
    member: Account  # a door member to change and remove
    tax_rule: dict[str, Any]  # issue 31
    plan: dict[str, Any]  # issue 34: a seating plan of the tenant's venue
    seated: dict[str, Any]  # a draft that names that plan


@dataclass
class World:
    client: httpx.AsyncClient
    res: Resources
    admin: Account
    a: Tenant
    b: Tenant
    outsider: Account
    buyer: Account

    def headers(self, who: str) -> dict[str, str]:
        if who == "anonymous":
            return {}
        account = {
            "admin": self.admin,
            "other_org_owner": self.b.org.owner,
            "no_membership": self.outsider,
        }.get(who) or self.a.org.members[who]
        return account.headers

    def b_strings(self) -> set[str]:
        """What must never appear in an answer to anyone of A (or outside B)."""
        b = self.b
        return {
            b.org.id,
            b.org.name,
            b.venue["id"],
            b.venue["name"],
            b.event["id"],
            b.event["name"],
            b.draft["id"],
            b.draft["name"],
            b.booking,
            b.webhook["id"],
            b.webhook["url"],
            b.webhook["secret"],
            str(b.delivery),
            str(b.member.id),
            b.member.user.email,
            str(b.org.owner.id),
            b.org.owner.user.email,
            b.tax_rule["id"],
            b.tax_rule["name"],
            b.plan["id"],
            b.seated["id"],
            b.seated["name"],
        }


@dataclass
class Call:
    params: dict[str, str]  # path parameters besides org_id
    json: Any = None
    query: dict[str, str] = field(default_factory=dict)


Builder = Callable[[World, Tenant, bool], Awaitable[Call]]


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # as FastAPI declares it (under /api/v1)
    allowed: frozenset[str] | None  # org roles; None: not an organization route
    status: int  # the success status
    build: Builder
    # A's owner naming B's thing on A's path → (status, code), per path parameter
    foreign: dict[str, tuple[int, str]] = field(default_factory=dict)


# ---- fresh things for calls that succeed (a refused call uses the tenant's own) ------------


async def fresh_event(w: World, t: Tenant, *, publish: bool) -> str:
    starts = datetime.now(UTC) + timedelta(days=40)
    async with w.res.sessionmaker() as session, session.begin():
        event = Event(
            organization_id=uuid.UUID(t.org.id),
            venue_id=uuid.UUID(t.venue["id"]),
            name=unique("Fresh"),
            event_type="concert",
            starts_at=starts,
            ends_at=starts + timedelta(hours=2),
            capacity=10,
            available=10,
            price=10,
            currency="EUR",
            status="published" if publish else "draft",
        )
        session.add(event)
    return str(event.id)


async def fresh_member(w: World, t: Tenant) -> Account:
    account = (await make_accounts(w.res, 1))[0]
    async with w.res.sessionmaker() as session, session.begin():
        session.add(
            OrganizationMember(organization_id=uuid.UUID(t.org.id), user_id=account.id, role="door")
        )
    return account


async def fresh_webhook(w: World, t: Tenant) -> str:
    async with w.res.sessionmaker() as session, session.begin():
        sub = await subscriptions.create(
            session,
            uuid.UUID(t.org.id),
            url="http://127.0.0.1:9/never",
            event_types=["event.sold_out"],
            description="",
            created_by=t.org.owner.id,
        )
    return str(sub.id)


def same(params: Callable[[Tenant], dict[str, str]], **kw: Any) -> Builder:
    async def build(w: World, t: Tenant, succeeds: bool) -> Call:
        return Call(params(t), **kw)

    return build


def _body(make: Callable[[World, Tenant], Any]) -> Builder:
    async def build(w: World, t: Tenant, succeeds: bool) -> Call:
        return Call({}, make(w, t))

    return build


def _clone_dates() -> dict[str, str]:
    starts = datetime.now(UTC) + timedelta(days=90)
    return {"starts_at": starts.isoformat(), "ends_at": (starts + timedelta(hours=2)).isoformat()}


async def _publish(w: World, t: Tenant, succeeds: bool) -> Call:
    return Call({"event_id": await fresh_event(w, t, publish=False) if succeeds else t.draft["id"]})


async def _cancel(w: World, t: Tenant, succeeds: bool) -> Call:
    return Call({"event_id": await fresh_event(w, t, publish=True) if succeeds else t.event["id"]})


async def _refund(w: World, t: Tenant, succeeds: bool) -> Call:
    booking = await confirmed_booking(w.client, w.buyer, t.event["id"]) if succeeds else t.booking
    return Call({"event_id": t.event["id"], "booking_id": booking})


async def _mark_paid(w: World, t: Tenant, succeeds: bool) -> Call:
    """A bank-transfer booking of the tenant's event (issue 29), its account set."""
    if not succeeds:
        return Call({"event_id": t.event["id"], "booking_id": t.booking})
    async with w.res.engine.begin() as conn:
        await conn.execute(
            text("UPDATE events SET bank_transfer_days = 3 WHERE id = :e"), {"e": t.event["id"]}
        )
        await conn.execute(
            text(
                "UPDATE organizations SET bank_account_holder = 'Hall', "
                "bank_iban = 'DE89370400440532013000' WHERE id = :o"
            ),
            {"o": t.org.id},
        )
    r = await w.client.post(
        "/api/v1/bookings/reserve",
        json={"event_id": t.event["id"], "quantity": 1, "payment_method": "bank_transfer"},
        headers={**w.buyer.headers, "Idempotency-Key": uuid.uuid4().hex},
    )
    assert r.status_code == 202, r.text
    return Call({"event_id": t.event["id"], "booking_id": r.json()["booking_id"]})


async def _refund_lines(w: World, t: Tenant, succeeds: bool) -> Call:
    booking = (
        await confirmed_booking(w.client, w.buyer, t.event["id"], quantity=2)
        if succeeds
        else t.booking
    )
    async with w.res.engine.connect() as conn:
        type_id = await conn.scalar(
            text("SELECT id FROM ticket_types WHERE event_id = :e AND is_default"),
            {"e": t.event["id"]},
        )
    return Call(
        {"event_id": t.event["id"], "booking_id": booking},
        {"lines": [{"ticket_type_id": str(type_id), "quantity": 1}]},
    )


async def _order(w: World, t: Tenant, succeeds: bool) -> Call:
    return Call(
        {"event_id": t.event["id"]},
        {
            "quantity": 1,
            "buyer": {"email": unique_email("comp"), "name": "Guest List"},
            "payment": "comp",
            "note": "tenancy matrix",
        },
    )


async def _new_question(w: World, t: Tenant) -> str:
    r = await w.client.post(
        t.org.url(f"/events/{t.event['id']}/questions"),
        json={"label": "Company?", "kind": "text"},
        headers=t.org.owner.headers,
    )
    assert r.status_code == 201, r.text
    question_id: str = r.json()["id"]
    return question_id


async def _question(w: World, t: Tenant, succeeds: bool) -> Call:
    return Call({"event_id": t.event["id"]}, {"label": "Dietary needs?", "kind": "text"})


async def _questions(w: World, t: Tenant, succeeds: bool) -> Call:
    return Call({"event_id": t.event["id"]})


async def _edit_question(w: World, t: Tenant, succeeds: bool) -> Call:
    return Call(
        {"event_id": t.event["id"], "question_id": await _new_question(w, t)},
        {"label": "Company name?"},
    )


async def _delete_question(w: World, t: Tenant, succeeds: bool) -> Call:
    return Call({"event_id": t.event["id"], "question_id": await _new_question(w, t)})


async def _transfer_policy(w: World, t: Tenant, succeeds: bool) -> Call:
    return Call({"event_id": t.event["id"]}, {"allowed": True})


async def _add_member(w: World, t: Tenant, succeeds: bool) -> Call:
    account = (await make_accounts(w.res, 1))[0]
    return Call({}, {"email": account.user.email, "role": "finance"})


async def _change_member(w: World, t: Tenant, succeeds: bool) -> Call:
    member = await fresh_member(w, t) if succeeds else t.member
    return Call({"user_id": str(member.id)}, {"role": "finance"})


async def _remove_member(w: World, t: Tenant, succeeds: bool) -> Call:
    member = await fresh_member(w, t) if succeeds else t.member
    return Call({"user_id": str(member.id)})


async def _delete_webhook(w: World, t: Tenant, succeeds: bool) -> Call:
    return Call({"webhook_id": await fresh_webhook(w, t) if succeeds else t.webhook["id"]})


async def _default_type(w: World, t: Tenant, succeeds: bool) -> Call:
    async with w.res.engine.connect() as conn:
        type_id = await conn.scalar(
            text("SELECT id FROM ticket_types WHERE event_id = :e AND is_default"),
            {"e": t.event["id"]},
        )
    return Call(
        {"event_id": t.event["id"], "ticket_type_id": str(type_id)}, {"description": "changed"}
    )


def _new_org(w: World, t: Tenant) -> Any:
    return {"name": unique("Org"), "owner_email": w.outsider.user.email}


async def _promo(t: Tenant) -> Call:
    code = f"C{uuid.uuid4().hex[:10]}"
    return Call({"event_id": t.event["id"]}, {"code": code, "percent_off": "10", "max_uses": 5})


EVENT = {"event_id": (404, "event_not_found")}
_PLAN = {
    "name": "Stalls",
    "sections": [
        {
            "name": "A",
            "rows": [{"label": "1", "seats": [{"label": "1", "x": 0, "y": 0, "category": "std"}]}],
        }
    ],
}
_SEATS = 20  # seats of the tenants' plan: a successful block takes a fresh one each time


async def _attach_plan(w: World, t: Tenant, succeeds: bool) -> Call:
    return Call({"event_id": t.seated["id"]}, {"seating_plan_id": t.plan["id"]})


def _block_seat() -> Builder:
    taken = itertools.count(1)

    async def build(w: World, t: Tenant, succeeds: bool) -> Call:
        seat = next(taken) if succeeds else _SEATS
        return Call({"event_id": t.seated["id"]}, {"seats": [f"A-1-{seat}"], "blocked": True})

    return build


WEBHOOK = {"webhook_id": (404, "webhook_not_found")}
TAX_RULE = {"rule_id": (404, "tax_rule_not_found")}

ROUTES: list[Route] = [
    Route("POST", "/organizations", None, 201, _body(_new_org)),
    Route("GET", "/organizations", None, 200, same(lambda t: {})),
    Route("GET", "/organizations/{org_id}", ANY, 200, same(lambda t: {})),
    Route(
        "PATCH",
        "/organizations/{org_id}",
        OWNER,
        200,
        _body(lambda w, t: {"name": t.org.name}),
    ),
    Route(
        "PUT",
        "/organizations/{org_id}/bank-account",
        OWNER,
        200,
        _body(lambda w, t: {"account_holder": "Hall", "iban": "DE89370400440532013000"}),
    ),
    Route("GET", "/organizations/{org_id}/members", ANY, 200, same(lambda t: {})),
    Route("POST", "/organizations/{org_id}/members", OWNER, 201, _add_member),
    Route(
        "PATCH",
        "/organizations/{org_id}/members/{user_id}",
        OWNER,
        200,
        _change_member,
        {"user_id": (404, "member_not_found")},
    ),
    Route(
        "DELETE",
        "/organizations/{org_id}/members/{user_id}",
        OWNER,
        204,
        _remove_member,
        {"user_id": (404, "member_not_found")},
    ),
    Route("GET", "/organizations/{org_id}/audit", OWNER, 200, same(lambda t: {})),
    Route("GET", "/organizations/{org_id}/venues", ANY, 200, same(lambda t: {})),
    Route(
        "POST",
        "/organizations/{org_id}/venues",
        MANAGE,
        201,
        _body(lambda w, t: {"name": unique("V"), "address": "a", "city": "c", "capacity": 10}),
    ),
    Route(
        "GET",
        "/organizations/{org_id}/venues/{venue_id}",
        ANY,
        200,
        same(lambda t: {"venue_id": t.venue["id"]}),
        {"venue_id": (404, "venue_not_found_in_organization")},
    ),
    Route("GET", "/organizations/{org_id}/events", ANY, 200, same(lambda t: {})),
    Route(
        "POST",
        "/organizations/{org_id}/events",
        MANAGE,
        201,
        _body(lambda w, t: event_body(t.venue["id"], capacity=10)),
    ),
    Route(
        "GET",
        "/organizations/{org_id}/events/{event_id}",
        ANY,
        200,
        same(lambda t: {"event_id": t.event["id"]}),
        EVENT,
    ),
    Route(
        "PATCH",
        "/organizations/{org_id}/events/{event_id}",
        MANAGE,
        200,
        same(lambda t: {"event_id": t.draft["id"]}, json={"description": "changed"}),
        EVENT,
    ),
    Route(
        "DELETE",
        "/organizations/{org_id}/events/{event_id}",
        MANAGE,
        202,
        _cancel,
        EVENT,
    ),
    Route(
        "POST",
        "/organizations/{org_id}/events/{event_id}/publish",
        MANAGE,
        200,
        _publish,
        EVENT,
    ),
    Route(
        "POST",
        "/organizations/{org_id}/events/{event_id}/clone",
        MANAGE,
        201,
        same(lambda t: {"event_id": t.event["id"]}, json=_clone_dates()),
        EVENT,
    ),
    Route(
        "GET",
        "/organizations/{org_id}/events/{event_id}/analytics",
        SALES,
        200,
        same(lambda t: {"event_id": t.event["id"]}),
        EVENT,
    ),
    Route(
        "GET",
        "/organizations/{org_id}/events/{event_id}/checkins",
        ANY,
        200,
        same(lambda t: {"event_id": t.event["id"]}),
        EVENT,
    ),
    Route(
        "GET",
        "/organizations/{org_id}/events/{event_id}/bookings",
        SALES,
        200,
        same(lambda t: {"event_id": t.event["id"]}),
        EVENT,
    ),
    Route(
        "GET",
        "/organizations/{org_id}/events/{event_id}/bookings.csv",
        SALES,
        200,
        same(lambda t: {"event_id": t.event["id"]}),
        EVENT,
    ),
    Route(
        "GET",
        "/organizations/{org_id}/events/{event_id}/attendees",
        SALES,
        200,
        same(lambda t: {"event_id": t.event["id"]}),
        EVENT,
    ),
    Route(
        "GET",
        "/organizations/{org_id}/events/{event_id}/attendees.csv",
        SALES,
        200,
        same(lambda t: {"event_id": t.event["id"]}),
        EVENT,
    ),
    Route(
        "POST",
        "/organizations/{org_id}/events/{event_id}/bookings/{booking_id}/refund",
        REFUND,
        200,
        _refund,
        {**EVENT, "booking_id": (404, "booking_not_found")},
    ),
    Route(
        "POST",
        "/organizations/{org_id}/events/{event_id}/bookings/{booking_id}/mark-paid",
        REFUND,
        200,
        _mark_paid,
        {**EVENT, "booking_id": (404, "booking_not_found")},
    ),
    Route(
        "POST",
        "/organizations/{org_id}/events/{event_id}/bookings/{booking_id}/cancel-lines",
        REFUND,
        200,
        _refund_lines,
        {**EVENT, "booking_id": (404, "booking_not_found")},
    ),
    Route(
        "POST",
        "/organizations/{org_id}/events/{event_id}/bookings/{booking_id}/resend-tickets",
        SALES,
        202,
        same(lambda t: {"event_id": t.event["id"], "booking_id": t.booking}),
        {**EVENT, "booking_id": (404, "booking_not_found")},
    ),
    Route(
        "POST", "/organizations/{org_id}/events/{event_id}/questions", MANAGE, 201, _question, EVENT
    ),
    Route(
        "GET", "/organizations/{org_id}/events/{event_id}/questions", MANAGE, 200, _questions, EVENT
    ),
    Route(
        "PATCH",
        "/organizations/{org_id}/events/{event_id}/questions/{question_id}",
        MANAGE,
        200,
        _edit_question,
        {**EVENT, "question_id": (404, "question_not_found")},
    ),
    Route(
        "DELETE",
        "/organizations/{org_id}/events/{event_id}/questions/{question_id}",
        MANAGE,
        204,
        _delete_question,
        {**EVENT, "question_id": (404, "question_not_found")},
    ),
    Route(
        "PUT",
        "/organizations/{org_id}/events/{event_id}/transfer-policy",
        MANAGE,
        200,
        _transfer_policy,
        EVENT,
    ),
    Route(
        "PUT",
        "/organizations/{org_id}/events/{event_id}/answers-deadline",
        MANAGE,
        200,
        same(lambda t: {"event_id": t.event["id"]}, json={"attendee_answers_until": None}),
        EVENT,
    ),
    # issue 34: a plan imported for the tenant's venue
    Route(
        "POST",
        "/organizations/{org_id}/venues/{venue_id}/seating-plans",
        MANAGE,
        201,
        same(lambda t: {"venue_id": t.venue["id"]}, json=_PLAN),
        {"venue_id": (404, "venue_not_found_in_organization")},
    ),
    Route(
        "PUT",
        "/organizations/{org_id}/events/{event_id}/seating-plan",
        MANAGE,
        200,
        _attach_plan,
        EVENT,
    ),
    Route(
        "POST",
        "/organizations/{org_id}/events/{event_id}/blocked-seats",
        MANAGE,
        200,
        _block_seat(),
        EVENT,
    ),
    Route(
        "POST",
        "/organizations/{org_id}/events/{event_id}/orders",
        SALES,
        201,
        _order,
        EVENT,
    ),
    Route(
        "GET",
        "/organizations/{org_id}/events/{event_id}/ticket-types",
        MANAGE,
        200,
        same(lambda t: {"event_id": t.event["id"]}),
        EVENT,
    ),
    Route(
        "POST",
        "/organizations/{org_id}/events/{event_id}/ticket-types",
        MANAGE,
        201,
        same(lambda t: {"event_id": t.event["id"]}, json={"name": "VIP", "price": "50.00"}),
        EVENT,
    ),
    Route(
        "PATCH",
        "/organizations/{org_id}/events/{event_id}/ticket-types/{ticket_type_id}",
        MANAGE,
        200,
        _default_type,
        {**EVENT, "ticket_type_id": (404, "ticket_type_not_found")},
    ),
    Route(
        "GET",
        "/organizations/{org_id}/events/{event_id}/promo-codes",
        MANAGE,
        200,
        same(lambda t: {"event_id": t.event["id"]}),
        EVENT,
    ),
    Route(
        "POST",
        "/organizations/{org_id}/events/{event_id}/promo-codes",
        MANAGE,
        201,
        lambda w, t, succeeds: _promo(t),
        EVENT,
    ),
    Route("GET", "/organizations/{org_id}/webhooks", OWNER, 200, same(lambda t: {})),
    Route(
        "POST",
        "/organizations/{org_id}/webhooks",
        OWNER,
        201,
        _body(lambda w, t: {"url": "http://127.0.0.1:9/x", "event_types": ["event.sold_out"]}),
    ),
    Route(
        "GET",
        "/organizations/{org_id}/webhooks/{webhook_id}",
        OWNER,
        200,
        same(lambda t: {"webhook_id": t.webhook["id"]}),
        WEBHOOK,
    ),
    Route(
        "PATCH",
        "/organizations/{org_id}/webhooks/{webhook_id}",
        OWNER,
        200,
        same(lambda t: {"webhook_id": t.webhook["id"]}, json={"description": "changed"}),
        WEBHOOK,
    ),
    Route(
        "DELETE",
        "/organizations/{org_id}/webhooks/{webhook_id}",
        OWNER,
        204,
        _delete_webhook,
        WEBHOOK,
    ),
    Route(
        "GET",
        "/organizations/{org_id}/webhooks/{webhook_id}/deliveries",
        OWNER,
        200,
        same(lambda t: {"webhook_id": t.webhook["id"]}),
        WEBHOOK,
    ),
    Route(
        "GET",
        "/organizations/{org_id}/webhooks/{webhook_id}/deliveries/{delivery_id}",
        OWNER,
        200,
        same(lambda t: {"webhook_id": t.webhook["id"], "delivery_id": str(t.delivery)}),
        {**WEBHOOK, "delivery_id": (404, "webhook_delivery_not_found")},
    ),
    Route(
        "POST",
        "/organizations/{org_id}/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver",
        OWNER,
        202,
        same(lambda t: {"webhook_id": t.webhook["id"], "delivery_id": str(t.delivery)}),
        {**WEBHOOK, "delivery_id": (404, "webhook_delivery_not_found")},
    ),
    # issue 31: tax rules
    Route(
        "POST",
        "/organizations/{org_id}/tax-rules",
        SALES,
        201,
        _body(lambda w, t: {"name": unique("VAT"), "rate": "19.00", "price_includes_tax": True}),
    ),
    Route("GET", "/organizations/{org_id}/tax-rules", ANY, 200, same(lambda t: {})),
    Route(
        "GET",
        "/organizations/{org_id}/tax-rules/{rule_id}",
        ANY,
        200,
        same(lambda t: {"rule_id": t.tax_rule["id"]}),
        TAX_RULE,
    ),
    Route(
        "PATCH",
        "/organizations/{org_id}/tax-rules/{rule_id}",
        SALES,
        200,
        same(lambda t: {"rule_id": t.tax_rule["id"]}, json={"rate": "19.00"}),
        TAX_RULE,
    ),
    Route("GET", "/organizations/{org_id}/invoices", SALES, 200, same(lambda t: {})),
    Route("GET", "/organizations/{org_id}/invoices.csv", SALES, 200, same(lambda t: {})),
]


def expected(route: Route, who: str) -> tuple[int, str | None]:
    """The documented answer to ``who`` calling ``route`` on organization A's path."""
    if who == "anonymous":
        return 401, "unauthorized"
    if route.allowed is None:  # the organizations collection
        if route.method == "POST" and who != "admin":
            return 403, "forbidden"
        return route.status, None
    if who == "admin" or who in route.allowed:
        return route.status, None
    if who in ROLES:
        return 403, "organization_role_required"
    return 404, "organization_not_found"  # another organization's owner, or nobody's member


def url(route: Route, org_id: str, params: dict[str, str]) -> str:
    path = route.path.replace("{org_id}", org_id)
    for name, value in params.items():
        path = path.replace("{" + name + "}", value)
    assert "{" not in path, path
    return f"/api/v1{path}"


# ---- the world -------------------------------------------------------------------------------


async def tenant(
    client: httpx.AsyncClient, res: Resources, admin: Account, buyer: Account
) -> Tenant:
    org = await make_org(client, res, admin)
    venue = await org_venue(client, org)
    event = await org_event(client, org, venue, publish=True, capacity=50)
    draft = await org_event(client, org, venue)
    booking = await confirmed_booking(client, buyer, event["id"])
    r = await client.post(
        org.url("/webhooks"),
        json={"url": f"http://127.0.0.1:9/{unique('hook')}", "event_types": ["event.sold_out"]},
        headers=org.owner.headers,
    )
    assert r.status_code == 201, r.text
    webhook = r.json()
    async with res.engine.begin() as conn:  # one delivery in its log (never delivered)
        await conn.execute(
            text("SELECT evently_webhook_enqueue(:org, 'event.sold_out', :key, '{}'::jsonb)"),
            {"org": org.id, "key": unique("tenancy")},
        )
        delivery = await conn.scalar(
            text(
                "UPDATE webhook_deliveries SET status = 'failed' WHERE subscription_id = :s "
                "RETURNING id"
            ),
            {"s": webhook["id"]},
        )
    member = (await make_accounts(res, 1))[0]
    r = await client.post(
        org.url("/members"),
        json={"email": member.user.email, "role": "door"},
        headers=org.owner.headers,
    )
    assert r.status_code == 201
    r = await client.post(
        org.url("/tax-rules"),
        json={"name": unique("VAT"), "rate": "19.00", "price_includes_tax": True},
        headers=org.owner.headers,
    )
    assert r.status_code == 201, r.text
    tax_rule = r.json()
    r = await client.post(
        org.url(f"/venues/{venue['id']}/seating-plans"),
        json={**plan_body(1, 1, _SEATS), "name": unique("Plan")},
        headers=org.owner.headers,
    )
    assert r.status_code == 201, r.text
    plan = r.json()
    seated = await org_event(client, org, venue)
    r = await client.put(
        org.url(f"/events/{seated['id']}/seating-plan"),
        json={"seating_plan_id": plan["id"]},
        headers=org.owner.headers,
    )
    assert r.status_code == 200, r.text
    return Tenant(
        org, venue, event, draft, booking, webhook, delivery, member, tax_rule, plan, seated
    )


@pytest.fixture(scope="module")
async def world(app_client: httpx.AsyncClient, resources: Resources) -> World:
    client = app_client
    admin = await make_account(resources, "admin")
    outsider, buyer = await make_accounts(resources, 2)
    a = await tenant(client, resources, admin, buyer)
    b = await tenant(client, resources, admin, buyer)
    return World(client, resources, admin, a, b, outsider, buyer)


# ---- the matrix ------------------------------------------------------------------------------


def test_the_matrix_covers_every_organizer_route(resources: Resources) -> None:
    app = create_app(resources.settings, resources, object())  # type: ignore[arg-type]
    declared = {
        (method.upper(), path.removeprefix("/api/v1"))
        for path, operations in app.openapi()["paths"].items()
        if path.startswith(ORGS)
        for method in operations
    }
    tested = {(r.method, r.path) for r in ROUTES}
    assert declared == tested, (
        f"not in the matrix: {sorted(declared - tested)}; gone: {sorted(tested - declared)}"
    )


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.method} {r.path}")
async def test_every_principal_gets_the_documented_answer(world: World, route: Route) -> None:
    forbidden = world.b_strings()
    failures = []

    async def call(who: str, tenant: Tenant, path_org: str, c: Call) -> httpx.Response:
        target = url(route, path_org, c.params)
        r = await world.client.request(
            route.method, target, json=c.json, params=c.query, headers=world.headers(who)
        )
        if who not in ("admin", "other_org_owner"):  # nothing of B but what the caller sent
            sent = set(c.params.values()) | {path_org} | set(re.findall(r"[\w-]+", str(c.json)))
            leaked = {s for s in forbidden - sent if s in r.text}
            if leaked:
                failures.append(
                    f"{who} {route.method} {target}: B's {sorted(leaked)} in the answer"
                )
        return r

    # 1. every principal on A's path
    for who in PRINCIPALS:
        status, code = expected(route, who)
        c = await route.build(world, world.a, status < 300)
        r = await call(who, world.a, world.a.org.id, c)
        if r.status_code != status or (code and r.json().get("code") != code):
            failures.append(
                f"{who} on A: {r.status_code} {r.text[:200]} (expected {status} {code})"
            )

    if route.allowed is not None:
        # 2. A's members on B's path: B does not exist for them
        for who in ROLES:
            c = await route.build(world, world.b, False)
            r = await call(who, world.b, world.b.org.id, c)
            if r.status_code != 404 or r.json().get("code") != "organization_not_found":
                failures.append(f"{who} of A on B: {r.status_code} {r.text[:200]}")
        # 3. A's owner on A's path naming B's things: as if they did not exist
        for param, (status, code) in route.foreign.items():
            c = await route.build(world, world.a, False)
            theirs = await route.build(world, world.b, False)
            c.params[param] = theirs.params[param]
            r = await call("owner", world.a, world.a.org.id, c)
            if r.status_code != status or r.json().get("code") != code:
                failures.append(f"owner of A naming B's {param}: {r.status_code} {r.text[:200]}")

    assert not failures, "\n".join(failures)


async def test_an_event_of_a_cannot_be_made_at_a_venue_of_b(world: World) -> None:
    a, b = world.a, world.b
    r = await world.client.post(
        a.org.url("/events"), json=event_body(b.venue["id"]), headers=a.org.owner.headers
    )
    assert r.status_code == 422
    assert r.json()["code"] == "venue_not_found"
    r = await world.client.patch(
        a.org.url(f"/events/{a.draft['id']}"),
        json={"venue_id": b.venue["id"]},
        headers=a.org.owner.headers,
    )
    assert r.status_code == 422
    assert r.json()["code"] == "venue_not_found"
    r = await world.client.get(
        a.org.url("/events"), params={"venue_id": b.venue["id"]}, headers=a.org.owner.headers
    )
    assert r.status_code == 200
    assert r.json()["items"] == []
