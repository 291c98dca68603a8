"""A seated request that cannot be met is refused at the API, without a booking workflow, once
a reserve has found it so (issue 34, docs/seating.md "Refused at the API"), and only while it
is true: freeing a seat lets the next request through. And a seated reserve freezes the same
price breakdown as a general-admission one (issue 31)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid
from collections.abc import Callable
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import text

from api.bookings import service
from evently.infra.resources import Resources
from evently.inventory.gate import Gate, Shape, Taken, Verdict
from tests.support.factories import make_account, make_accounts, make_event
from tests.support.seating import make_seated_event, plan_body
from tests.support.temporal import AppFactory

pytestmark = pytest.mark.usefixtures("running_workers")

RESERVE = "/api/v1/bookings/reserve"


async def booking_rows(res: Resources, event_id: uuid.UUID) -> int:
    """Every booking row of the event, rejected ones too: a request refused by its workflow
    leaves a ``rejected`` row, one refused at the API (as ``sold_out`` is) leaves none."""
    async with res.engine.connect() as conn:
        n = await conn.scalar(
            text("SELECT count(*) FROM bookings WHERE event_id = :e"), {"e": event_id}
        )
    return int(n or 0)


async def test_no_pair_left_is_refused_at_the_api_until_a_seat_is_freed(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    # two rows of three: two pairs leave one single seat in each row (2 seats, no pair)
    event = await make_seated_event(resources, plan_body(1, 2, 3))
    a, b, c = await make_accounts(resources, 3)
    pair = {"event_id": str(event.id), "quantity": 2}
    first = await client.post(RESERVE, json=pair, headers=a.headers)
    assert first.status_code == 201, first.text
    held = [s["id"] for s in first.json()["seats"]]
    second = await client.post(RESERVE, json=pair, headers=a.headers)
    assert second.status_code == 201, second.text

    # the first refusal goes through the workflow (a rejected row) and is noted
    rows = await booking_rows(resources, event.id)
    r = await client.post(RESERVE, json=pair, headers=b.headers)
    assert (r.status_code, r.json().get("code"), r.json().get("seats")) == (
        409,
        "seats_taken",
        ["2 together"],
    ), r.text
    assert await booking_rows(resources, event.id) == rows + 1

    # from now on no workflow: the same answer, no booking row (the fast path's body, a body
    # with lines of the default type, together, and a guest's)
    rows += 1
    async with resources.engine.connect() as conn:
        default = await conn.scalar(
            text("SELECT id FROM ticket_types WHERE event_id = :e AND is_default"),
            {"e": event.id},
        )
    std_line = {"ticket_type_id": str(default), "quantity": 2, "together": True}
    for body, headers in (
        (pair, b.headers),
        ({"event_id": str(event.id), "lines": [std_line]}, c.headers),
        ({**pair, "buyer": {"email": "g@example.com", "name": "G"}}, {}),
    ):
        r = await client.post(RESERVE, json=body, headers=headers)
        assert r.status_code == 409, r.text
        assert (r.json()["code"], r.json()["seats"]) == ("seats_taken", ["2 together"])
    assert await booking_rows(resources, event.id) == rows
    # a seat held by a booking is known taken: asking for it by id is refused at the API
    r = await client.post(
        RESERVE, json={"event_id": str(event.id), "seats": sorted(held)}, headers=b.headers
    )
    assert (r.status_code, r.json()["code"]) == (409, "seats_taken"), r.text
    assert r.json()["seats"] == sorted(held)
    assert await booking_rows(resources, event.id) == rows

    # single seats are still for sale: a single is not refused by the pair's note
    single = await client.post(
        RESERVE, json={"event_id": str(event.id), "quantity": 1}, headers=c.headers
    )
    assert single.status_code == 201, single.text
    rows += 1

    # the pair's booking cancelled: its seats are free, no stale verdict
    gone = await client.delete(f"/api/v1/bookings/{first.json()['booking_id']}", headers=a.headers)
    assert gone.status_code == 200, gone.text
    again = await client.post(RESERVE, json=pair, headers=b.headers)
    assert again.status_code == 201, again.text
    assert len(again.json()["seats"]) == 2
    assert await booking_rows(resources, event.id) == rows + 1


async def test_a_note_is_not_kept_when_a_seat_was_freed_since_the_take(
    resources: Resources,
) -> None:
    """The notes are written only while the freed epoch is the one the request's take read:
    a seat freed between the take and the refusal (its note would be stale) drops the note;
    every give-back of freed seats (and a reset) drops the notes written before it."""
    gate = Gate(resources.redis)
    event = uuid.uuid4()
    await gate.load(event, 10)
    pair = [Shape(None, 2)]
    taken = await gate.admit(event, 2, uuid.uuid4(), False, seated=True, shapes=pair)
    assert taken is not None
    assert taken.verdict == Verdict.OK
    assert taken.epoch is not None
    await gate.give_back_released(event, 1, uuid.uuid4())  # a seat freed meanwhile
    assert not await gate.note_seats(event, taken.epoch, no_block=pair[0])
    refused = await gate.admit(event, 2, uuid.uuid4(), False, seated=True, shapes=pair)
    assert refused is not None
    assert refused.verdict == Verdict.OK

    # kept when nothing was freed; a bigger block is refused too, a smaller one is not
    assert refused.epoch is not None
    assert await gate.note_seats(event, refused.epoch, no_block=pair[0], taken=["A-1-1"])
    for q, verdict in ((2, Verdict.SEATS_TAKEN), (3, Verdict.SEATS_TAKEN), (1, Verdict.OK)):
        got = await gate.admit(event, q, uuid.uuid4(), False, seated=True, shapes=[Shape(None, q)])
        assert got is not None
        assert got.verdict == verdict, q
    looked = await gate.refused(event, 2, pair)
    assert looked is not None
    assert looked.refused == ("2 together",)
    by_id = await gate.admit(
        event, 2, uuid.uuid4(), False, seated=True, seat_ids=["A-1-2", "A-1-1"]
    )
    assert by_id is not None
    assert (by_id.verdict, by_id.refused) == (Verdict.SEATS_TAKEN, ("A-1-1",))

    # each way seats come back drops the notes
    await gate.seats_freed(event)
    assert await gate.refused(event, 2, pair) is None
    for free in (
        gate.give_back_cancelled_lines(event, 1, uuid.uuid4(), 1),
        gate.give_back_from_waitlist(event, 1, 7),
        gate.reset(event),
    ):
        await gate.load(event, 10)
        got = await gate.admit(event, 2, uuid.uuid4(), False, seated=True, shapes=pair)
        assert got is not None
        assert got.epoch is not None
        assert await gate.note_seats(event, got.epoch, no_block=pair[0])
        assert await gate.refused(event, 2, pair) is not None
        await free
        assert await gate.refused(event, 2, pair) is None
    # a refused request gives its gate seats back without dropping anything (nothing freed)
    await gate.load(event, 10)
    got = await gate.admit(event, 2, uuid.uuid4(), False, seated=True, shapes=pair)
    assert got is not None
    assert got.epoch is not None
    await gate.give_back_no_hold(event, 2, uuid.uuid4())
    assert await gate.note_seats(event, got.epoch, no_block=pair[0])


async def test_a_seated_booking_freezes_the_same_price_as_general_admission(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    seated = await make_seated_event(resources, plan_body(1, 1, 4))  # the default type: any seat
    ga = await make_event(resources, capacity=4, price=Decimal("19.00"))
    async with resources.engine.begin() as conn:
        org = await conn.scalar(
            text("SELECT organization_id FROM events WHERE id = :e"), {"e": seated.id}
        )
        rule = await conn.scalar(
            text(
                "INSERT INTO tax_rules (id, organization_id, name, rate, price_includes_tax) "
                "VALUES (gen_random_uuid(), :o, 'VAT', 19, true) RETURNING id"
            ),
            {"o": org},
        )
        fee = {"name": "Service fee", "amount": "1.50", "per": "ticket", "passed_on": True}
        for event_id in (seated.id, ga.id):
            await conn.execute(
                text(
                    "UPDATE events SET fees = CAST(:f AS jsonb), organization_id = :o WHERE id = :e"
                ),
                {"f": json.dumps([{**fee, "tax_rule_id": str(rule)}]), "o": org, "e": event_id},
            )
            await conn.execute(
                text("UPDATE ticket_types SET tax_rule_id = :r, price = 19 WHERE event_id = :e"),
                {"r": rule, "e": event_id},
            )
    buyer = await make_account(resources)
    prices = []
    for event_id in (ga.id, seated.id):
        r = await client.post(
            RESERVE, json={"event_id": str(event_id), "quantity": 2}, headers=buyer.headers
        )
        assert r.status_code == 201, r.text
        got = await client.get(f"/api/v1/bookings/{r.json()['booking_id']}", headers=buyer.headers)
        assert got.json()["price"] == r.json()["price"]
        assert got.json()["amount"] == r.json()["amount"]
        prices.append(r.json()["price"])
    # 2 x 19.00 (VAT 19 % included: 6.07) + 2 x 1.50 fee (VAT 0.48) = 41.00
    assert prices[0] == prices[1]
    assert (prices[1]["subtotal"], prices[1]["fees"], prices[1]["total"]) == (
        "38.00",
        "3.00",
        "41.00",
    )
    assert prices[1]["taxes"][0]["amount"] == "6.55"


async def test_a_retry_of_a_request_that_took_no_gate_seats_is_answered_by_its_workflow(
    client: httpx.AsyncClient, resources: Resources, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A request with an Idempotency-Key that started its booking without taking gate seats
    (the counter missing twice, as after every worker was killed: each pending request marks
    the gate suspect and drops its counter) is marked all the same (Gate.mark_started): its
    retry is answered by its workflow, 201 with its seats, never 409 from the seated notes
    written meanwhile. Found by the seated sale of tests/reliability/test_crashes.py."""
    event = await make_seated_event(resources, plan_body(1, 1, 2))  # one pair
    a, b = await make_accounts(resources, 2)
    pair = {"event_id": str(event.id), "quantity": 2}
    admit = Gate.admit

    async def counter_missing(self: Gate, *args: object, **kwargs: object) -> Taken:
        return Taken(Verdict.MISSING)

    monkeypatch.setattr(Gate, "admit", counter_missing)
    keyed = {**a.headers, "Idempotency-Key": "took-no-gate-seats"}
    first = await client.post(RESERVE, json=pair, headers=keyed)
    assert first.status_code == 201, first.text
    monkeypatch.setattr(Gate, "admit", admit)

    # the pair is gone: b's refusal goes through its workflow and is noted; then the API
    # refuses b from the note (no new booking row)
    r = await client.post(RESERVE, json=pair, headers=b.headers)
    assert (r.status_code, r.json().get("code")) == (409, "seats_taken"), r.text
    rows = await booking_rows(resources, event.id)
    r = await client.post(RESERVE, json=pair, headers=b.headers)
    assert (r.status_code, r.json().get("code")) == (409, "seats_taken"), r.text
    assert await booking_rows(resources, event.id) == rows

    # a's retry asks its workflow: its own hold, the same seats
    again = await client.post(RESERVE, json=pair, headers=keyed)
    assert again.status_code == 201, again.text
    assert again.json()["booking_id"] == first.json()["booking_id"]
    assert again.json()["seats"] == first.json()["seats"]


async def test_seats_by_id_behind_a_reserve_in_flight_wait_for_its_answer(
    resources: Resources, app_factory: AppFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A request by seat id waits for the seated reserves of its process in flight before it
    (api/bookings/service.py SeatedInFlight), then is refused at the API from what they noted:
    no workflow of its own. Without the wait, b (asking A-1-2, A-1-3 while a's reserve of A-1-1,
    A-1-2 is stuck behind a row lock) took A-1-2 first and a was refused in its workflow.
    Patient limits (a shared CI machine's worker may take seconds over a workflow task): the
    reserve timeout and the wait are raised here, the logic is the same."""
    patient = resources.settings.model_copy(update={"reserve_timeout_seconds": 60.0})
    app = app_factory(dataclasses.replace(resources, settings=patient), patient)
    valve = service.ReserveValve(patient.reserve_max_in_flight)
    app.state.reserve_valve = valve
    monkeypatch.setattr(service, "SEATS_WAIT_SECONDS", 60.0)
    event = await make_seated_event(resources, plan_body(1, 1, 4))
    a, b = await make_accounts(resources, 2)
    transport = httpx.ASGITransport(app=app)
    async with (
        httpx.AsyncClient(transport=transport, base_url="http://t") as client,
        resources.engine.connect() as blocker,
    ):
        await blocker.begin()
        await blocker.execute(
            text("SELECT 1 FROM event_seats WHERE event_id = :e AND seat_id = 'A-1-1' FOR UPDATE"),
            {"e": event.id},
        )
        first = asyncio.create_task(
            client.post(
                RESERVE,
                json={"event_id": str(event.id), "seats": ["A-1-1", "A-1-2"]},
                headers=a.headers,
            )
        )
        await until(lambda: valve.seated.in_flight(event.id) == 1)  # a took its gate seats
        second = asyncio.create_task(
            client.post(
                RESERVE,
                json={"event_id": str(event.id), "seats": ["A-1-2", "A-1-3"]},
                headers=b.headers,
            )
        )
        await until(lambda: valve.seated.in_flight(event.id) == 2)  # b took its, and waits
        await asyncio.sleep(0.5)  # without the wait, b's own reserve took A-1-2 by now
        assert not second.done()
        await blocker.rollback()
        got_a, got_b = await first, await second
    assert got_a.status_code == 201, got_a.text
    assert [s["id"] for s in got_a.json()["seats"]] == ["A-1-1", "A-1-2"]
    assert (got_b.status_code, got_b.json()["code"], got_b.json()["seats"]) == (
        409,
        "seats_taken",
        ["A-1-2"],
    ), got_b.text
    assert await booking_rows(resources, event.id) == 1  # b's refusal started no workflow
    state = await Gate(resources.redis).state(event.id)
    assert state.counter == "2"  # b gave its gate seats back
    assert valve.seated.in_flight(event.id) == 0


async def until(ready: Callable[[], bool], seconds: float = 30.0) -> None:
    for _ in range(int(seconds / 0.02)):
        if ready():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("never ready")


async def test_a_counter_rebuilt_from_postgres_keeps_the_seated_notes(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    """A suspect gate whose counter reads low is rebuilt from Postgres (the UNSURE path of
    api/bookings/service.py ``_take``) without dropping the seated notes: no seat was freed.
    Dropping them there, near every sell-out, sent every later request by seat id to a
    workflow (about 45 per flash sale)."""
    event = await make_seated_event(resources, plan_body(1, 1, 4))
    a, b = await make_accounts(resources, 2)
    held = await client.post(
        RESERVE, json={"event_id": str(event.id), "seats": ["A-1-1", "A-1-2"]}, headers=a.headers
    )
    assert held.status_code == 201, held.text
    gate = Gate(resources.redis)
    # the counter low while the gate is suspect: the take answers UNSURE, Postgres says 2 free
    await resources.redis.set(f"evently:gate:{{{event.id}}}", "0")
    await resources.redis.set(f"evently:gate:{{{event.id}}}:suspect", "1", ex=30)
    rows = await booking_rows(resources, event.id)
    r = await client.post(
        RESERVE,
        json={"event_id": str(event.id), "seats": ["A-1-2", "A-1-3"]},
        headers={**b.headers, "Idempotency-Key": "after-a-rebuild"},
    )
    assert (r.status_code, r.json()["code"], r.json()["seats"]) == (
        409,
        "seats_taken",
        ["A-1-2"],
    ), r.text
    assert await booking_rows(resources, event.id) == rows  # refused at the API
    assert (await gate.state(event.id)).counter == "2"  # rebuilt from Postgres

    # forget_counter keeps the notes; reset (seats freed) drops them
    await gate.forget_counter(event.id)
    assert await gate.noted_refused(event.id, seat_ids=["A-1-1"]) is not None
    await gate.reset(event.id)
    assert await gate.noted_refused(event.id, seat_ids=["A-1-1"]) is None
