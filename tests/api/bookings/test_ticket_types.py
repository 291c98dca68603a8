"""Ticket types and promo codes through the API on the real stack: the admin's routes, the
public event with per-type availability, multi-line reserves with a code, their refusals (each
with its own code, nothing taken), and the booking's lines."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import text
from temporalio.client import Client

from evently.infra.resources import Resources
from evently.invariants import check
from tests.support.factories import make_account, make_accounts, make_event
from tests.support.histories import record
from tests.support.problems import assert_problem as _problem

pytestmark = pytest.mark.usefixtures("running_workers")

ADMIN = "/api/v1/admin/events"


async def test_types_codes_and_a_multi_line_booking(
    client: httpx.AsyncClient, resources: Resources, temporal_client: Client
) -> None:
    admin = await make_account(resources, "admin")
    buyer = await make_account(resources)
    event = await make_event(resources, capacity=10, price=Decimal("20.00"))
    base = f"{ADMIN}/{event.id}"

    r = await client.post(
        f"{base}/ticket-types",
        json={"name": "VIP", "price": "100.00", "capacity": 2, "max_per_booking": 2},
        headers=admin.headers,
    )
    assert r.status_code == 201, r.text
    vip = r.json()
    assert (vip["currency"], vip["capacity"], vip["is_default"]) == ("EUR", 2, False)
    past = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    r = await client.post(
        f"{base}/ticket-types",
        json={"name": "Early bird", "price": "10.00", "sales_end": past},
        headers=admin.headers,
    )
    early = r.json()
    r = await client.post(
        f"{base}/ticket-types",
        json={"name": "Sponsor", "price": "0.00", "hidden": True},
        headers=admin.headers,
    )
    sponsor = r.json()
    listed = (await client.get(f"{base}/ticket-types", headers=admin.headers)).json()["items"]
    assert [t["name"] for t in listed] == ["General admission", "VIP", "Early bird", "Sponsor"]
    default = listed[0]
    _problem(
        await client.patch(
            f"{base}/ticket-types/{default['id']}", json={"capacity": 3}, headers=admin.headers
        ),
        422,
        "ticket_type_invalid",
    )
    _problem(
        await client.post(
            f"{base}/ticket-types",
            json={"name": "USD", "price": "1.00", "currency": "USD"},
            headers=admin.headers,
        ),
        422,
        "ticket_type_invalid",
    )

    r = await client.post(
        f"{base}/promo-codes",
        json={"code": "half", "percent_off": "50", "max_uses": 1},
        headers=admin.headers,
    )
    assert r.status_code == 201, r.text
    assert r.json()["code"] == "HALF"
    _problem(
        await client.post(
            f"{base}/promo-codes",
            json={"code": "HALF", "amount_off": "5", "max_uses": 1},
            headers=admin.headers,
        ),
        409,
        "promo_code_exists",
    )
    await client.post(
        f"{base}/promo-codes",
        json={"code": "sponsor", "amount_off": "5.00", "max_uses": 5, "unlocks_hidden": True},
        headers=admin.headers,
    )

    # the public event: visible types only, with availability and on_sale
    public = (await client.get(f"/api/v1/events/{event.id}")).json()
    types = {t["name"]: t for t in public["ticket_types"]}
    assert set(types) == {"General admission", "VIP", "Early bird"}
    assert (types["VIP"]["available"], types["VIP"]["on_sale"]) == (2, True)
    assert types["Early bird"]["on_sale"] is False
    avail = (await client.get(f"/api/v1/events/{event.id}/availability")).json()
    assert [t["name"] for t in avail["ticket_types"]] == [
        "General admission",
        "VIP",
        "Early bird",
    ]

    reserve = "/api/v1/bookings/reserve"
    ev = str(event.id)
    for body, status, code in [
        (
            {"event_id": ev, "lines": [{"ticket_type_id": vip["id"], "quantity": 3}]},
            422,
            "too_many_of_type",
        ),
        (
            {"event_id": ev, "lines": [{"ticket_type_id": early["id"], "quantity": 1}]},
            409,
            "sales_closed",
        ),
        (
            {"event_id": ev, "lines": [{"ticket_type_id": sponsor["id"], "quantity": 1}]},
            404,
            "ticket_type_not_found",
        ),
        ({"event_id": ev, "quantity": 1, "promo_code": "nope"}, 422, "promo_code_unknown"),
        (
            {
                "event_id": ev,
                "lines": [
                    {"ticket_type_id": vip["id"], "quantity": 1},
                    {"ticket_type_id": vip["id"], "quantity": 1},
                ],
            },
            422,
            "duplicate_lines",
        ),
    ]:
        _problem(await client.post(reserve, json=body, headers=buyer.headers), status, code)
    async with resources.engine.connect() as conn:
        assert await check(conn, event.id) == []

    r = await client.post(
        reserve,
        json={
            "event_id": ev,
            "lines": [
                {"ticket_type_id": default["id"], "quantity": 2},
                {"ticket_type_id": vip["id"], "quantity": 2},
            ],
            "promo_code": "Half",
        },
        headers=buyer.headers,
    )
    assert r.status_code == 201, r.text
    held = r.json()
    assert (held["amount"], held["discount"]) == ("120.00", "120.00")
    _problem(
        await client.post(
            reserve,
            json={"event_id": ev, "quantity": 1, "promo_code": "HALF"},
            headers=buyer.headers,
        ),
        422,
        "promo_code_used_up",
    )
    _problem(
        await client.post(
            reserve,
            json={"event_id": ev, "lines": [{"ticket_type_id": vip["id"], "quantity": 1}]},
            headers=buyer.headers,
        ),
        409,
        "ticket_type_sold_out",
    )
    r = await client.post(
        "/api/v1/bookings/confirm",
        json={"booking_id": held["booking_id"], "payment_method": "pm_card_visa"},
        headers=buyer.headers,
    )
    assert r.status_code == 200, r.text
    got = (await client.get(f"/api/v1/bookings/{held['booking_id']}", headers=buyer.headers)).json()
    assert got["quantity"] == 4
    assert [(x["name"], x["quantity"], x["unit_price"], x["total"]) for x in got["lines"]] == [
        ("General admission", 2, "20.00", "20.00"),
        ("VIP", 2, "100.00", "100.00"),
    ]
    await record(temporal_client, f"booking-{held['booking_id']}", "booking-held-lines-promo")
    codes = (await client.get(f"{base}/promo-codes", headers=admin.headers)).json()["items"]
    assert {c["code"]: c["uses"] for c in codes} == {"HALF": 1, "SPONSOR": 0}
    stats = (await client.get(f"{base}/analytics", headers=admin.headers)).json()
    per_type = {
        t["name"]: (t["seats_confirmed"], t["revenue"]["amount"]) for t in stats["ticket_types"]
    }
    assert per_type["VIP"] == (2, "100.00")
    assert per_type["General admission"] == (2, "20.00")
    assert [(c["code"], c["uses"], c["discount"]["amount"]) for c in stats["promo_codes"]] == [
        ("HALF", 1, "120.00"),
        ("SPONSOR", 0, "0.00"),
    ]
    assert stats["revenue"]["amount"] == "120.00"
    after = (await client.get(f"/api/v1/events/{event.id}")).json()
    assert {t["name"]: t["available"] for t in after["ticket_types"]}["VIP"] == 0
    async with resources.engine.connect() as conn:
        assert await check(conn, event.id) == []


async def test_an_unknown_event_or_type_is_404_for_the_admin(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    admin = await make_account(resources, "admin")
    event = await make_event(resources, capacity=5)
    _problem(
        await client.get(f"{ADMIN}/{uuid.uuid4()}/ticket-types", headers=admin.headers),
        404,
        "event_not_found",
    )
    _problem(
        await client.patch(
            f"{ADMIN}/{event.id}/ticket-types/{uuid.uuid4()}",
            json={"name": "x"},
            headers=admin.headers,
        ),
        404,
        "ticket_type_not_found",
    )


async def _payments(res: Resources, booking_id: str) -> list[tuple[str, str]]:
    async with res.engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT kind, CAST(amount AS text) FROM payments WHERE booking_id = :b "
                "AND status = 'succeeded' ORDER BY created_at"
            ),
            {"b": booking_id},
        )
        return [(r[0], r[1]) for r in rows]


async def test_partial_cancellation_refunds_that_part_and_releases_those_seats(
    client: httpx.AsyncClient, resources: Resources, temporal_client: Client
) -> None:
    admin = await make_account(resources, "admin")
    buyer = await make_account(resources)
    support = await make_account(resources, "support")
    event = await make_event(resources, capacity=10, price=Decimal("20.00"))
    base = f"{ADMIN}/{event.id}"
    vip = (
        await client.post(
            f"{base}/ticket-types", json={"name": "VIP", "price": "50.00"}, headers=admin.headers
        )
    ).json()
    await client.post(
        f"{base}/promo-codes",
        json={"code": "TEN", "percent_off": "10", "max_uses": 5},
        headers=admin.headers,
    )
    r = await client.post(
        "/api/v1/bookings/reserve",
        json={
            "event_id": str(event.id),
            "lines": [{"ticket_type_id": vip["id"], "quantity": 3}],
            "promo_code": "ten",
        },
        headers=buyer.headers,
    )
    booking = r.json()["booking_id"]
    assert r.json()["amount"] == "135.00"
    r = await client.post(
        "/api/v1/bookings/confirm",
        json={"booking_id": booking, "payment_method": "pm_card_visa"},
        headers=buyer.headers,
    )
    assert r.status_code == 200, r.text
    cancel = f"/api/v1/bookings/{booking}/cancel-lines"
    _problem(
        await client.post(
            cancel,
            json={"lines": [{"ticket_type_id": vip["id"], "quantity": 4}]},
            headers=buyer.headers,
        ),
        409,
        "lines_not_cancellable",
    )
    r = await client.post(
        cancel,
        json={"lines": [{"ticket_type_id": vip["id"], "quantity": 1}]},
        headers=buyer.headers,
    )
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["change"], r.json()["refund_amount"]) == (
        "confirmed",
        1,
        "45.00",
    )
    await record(temporal_client, f"booking-change-{booking}-lines-1", "booking-change-lines")
    got = (await client.get(f"/api/v1/bookings/{booking}", headers=buyer.headers)).json()
    assert got["quantity"] == 2
    assert [(x["quantity"], x["cancelled"], x["total"]) for x in got["lines"]] == [(3, 1, "90.00")]
    async with resources.engine.connect() as conn:
        tickets = (
            await conn.execute(
                text("SELECT seat, status FROM tickets WHERE booking_id = :b ORDER BY seat"),
                {"b": booking},
            )
        ).all()
        assert [tuple(t) for t in tickets] == [(1, "valid"), (2, "valid"), (3, "revoked")]
        assert await check(conn, event.id) == []

    # support cancels another seat; then the buyer cancels the rest: a whole cancellation
    r = await client.post(
        f"/api/v1/support/bookings/{booking}/cancel-lines",
        json={"lines": [{"ticket_type_id": vip["id"], "quantity": 1}], "reason": "asked by phone"},
        headers=support.headers,
    )
    assert r.status_code == 200, r.text
    assert r.json()["change"] == 2
    r = await client.post(
        cancel,
        json={"lines": [{"ticket_type_id": vip["id"], "quantity": 1}]},
        headers=buyer.headers,
    )
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["change"]) == ("cancelled", None)
    assert await _payments(resources, booking) == [
        ("charge", "135.00"),
        ("partial_refund", "45.00"),
        ("partial_refund", "45.00"),
        ("refund", "45.00"),
    ]
    avail = (await client.get(f"/api/v1/events/{event.id}/availability")).json()
    assert (avail["available"], avail["sold"]) == (10, 0)
    async with resources.engine.connect() as conn:
        uses = await conn.scalar(
            text("SELECT uses FROM promo_codes WHERE event_id = :e"), {"e": event.id}
        )
        assert uses == 0  # the cancelled booking gave its use back
        assert await check(conn, event.id) == []


async def test_concurrent_buyers_over_three_types_through_the_api_oversell_nothing_and_refuse_truly(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    """The whole reserve path (fast path, gate, workflow, statement) with 240 buyers at once
    over two capped types and the default type, then 40 more for the shared quota's last
    seats. Each capped type sells exactly to its cap while the event has room, the default type
    to every buyer who asked, the last wave exactly the seats left: no type and no event
    oversold, and no refusal while room for it was left (nothing is released meanwhile)."""
    admin = await make_account(resources, "admin")
    event = await make_event(resources, capacity=140, price=Decimal("10.00"))
    base = f"{ADMIN}/{event.id}"
    # no waiting room: this is about the types (an `auto` queue would send part of the burst
    # through the queue, as tests/api/waitingroom shows)
    r = await client.patch(base, json={"queue": "off"}, headers=admin.headers)
    assert r.status_code == 200, r.text
    caps = {"A": 20, "B": 30}
    ids: dict[str, str] = {}
    for name, cap in caps.items():
        r = await client.post(
            f"{base}/ticket-types",
            json={"name": name, "price": "15.00", "capacity": cap},
            headers=admin.headers,
        )
        assert r.status_code == 201, r.text
        ids[name] = r.json()["id"]
    buyers = await make_accounts(resources, 280)

    async def attempt(buyer_headers: dict[str, str], kind: str) -> tuple[str, int, str | None]:
        body: dict[str, object] = {"event_id": str(event.id)}
        if kind == "default":
            body["quantity"] = 1
        else:
            body["lines"] = [{"ticket_type_id": ids[kind], "quantity": 1}]
        # a well-behaved client: one Idempotency-Key per purchase, 202/503 retried with it
        headers = {**buyer_headers, "Idempotency-Key": uuid.uuid4().hex}
        for _ in range(100):
            r = await client.post("/api/v1/bookings/reserve", json=body, headers=headers)
            if r.status_code not in (202, 503):
                break
            await asyncio.sleep(0.2)
        assert r.status_code in (201, 409), r.text
        return kind, r.status_code, None if r.status_code == 201 else r.json()["code"]

    def held(answers: list[tuple[str, int, str | None]], kind: str) -> int:
        return sum(1 for k, status, _ in answers if k == kind and status == 201)

    # wave 1: 80 buyers of each; the capped types' demand exceeds their caps, the event's
    # 140 seats cover every sellable seat (20 + 30 + 80 = 130)
    kinds = ["A", "B", "default"] * 80
    first = await asyncio.gather(
        *(attempt(b.headers, k) for b, k in zip(buyers[:240], kinds, strict=True))
    )
    assert (held(first, "A"), held(first, "B"), held(first, "default")) == (20, 30, 80)
    refusals = [(k, code) for k, status, code in first if status == 409]
    assert len(refusals) == 110
    assert {code for _, code in refusals} == {"ticket_type_sold_out"}  # the event had room
    assert {k for k, _ in refusals} == {"A", "B"}
    # wave 2: the shared quota's last 10 seats, 40 buyers of the default type at once
    second = await asyncio.gather(*(attempt(b.headers, "default") for b in buyers[240:]))
    assert held(second, "default") == 10
    assert {code for _, status, code in second if status == 409} == {"sold_out"}
    async with resources.engine.connect() as conn:
        by_name = {
            r.name: r
            for r in await conn.execute(
                text("SELECT name, capacity, held, sold FROM ticket_types WHERE event_id = :e"),
                {"e": event.id},
            )
        }
        counters = (
            await conn.execute(
                text("SELECT available, held, sold FROM events WHERE id = :e"), {"e": event.id}
            )
        ).one()
        assert await check(conn, event.id) == []
    assert (by_name["A"].held, by_name["B"].held) == (20, 30)
    assert (counters.available, counters.held, counters.sold) == (0, 140, 0)
