"""The waitlist through Temporal on a time-skipping server: real BookingWorkflow and
WaitlistWorkflow, real activities, real Postgres and Redis; a 10-minute offer lapses in ms."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from temporalio.client import WorkflowExecutionStatus

from api.waitlist import service as waitlist_service
from evently import waitlist
from evently.errors import OfferExpired
from evently.infra.resources import Resources
from evently.inventory.types import Reservation
from tests.support.factories import make_account, make_event
from tests.support.histories import record
from tests.support.temporal import TimeSkipping
from tests.support.waitlist import (
    HOLD,
    OFFER,
    advance,
    counters,
    entry,
    eventually,
    hold,
    invariants_hold,
    kinds,
    statuses,
    waitlist_settings,
    workers,
)
from workflows import common
from workflows.booking import client as booking_client
from workflows.booking.contract import booking_workflow_id
from workflows.search_sync.contract import search_sync_workflow_id
from workflows.waitlist import client as waitlist_client
from workflows.waitlist.contract import WaitlistInput, waitlist_workflow_id
from workflows.waitlist.workflow import WaitlistWorkflow


class Sale:
    def __init__(self, ts: TimeSkipping) -> None:
        self.ts = ts
        self.res, self.env, self.client = ts.res, ts.env, ts.client

    async def join(self, event_id: uuid.UUID, qty: int) -> tuple[uuid.UUID, uuid.UUID]:
        """A new buyer joins; returns (entry id, user id)."""
        buyer = await make_account(self.res)
        async with self.res.sessionmaker() as s, s.begin():
            joined = await waitlist.join(
                s, user_id=buyer.id, event_id=event_id, quantity=qty, max_quantity=10
            )
        if joined.pooled:
            await waitlist_client.poke(self.client, event_id, offer_seconds=OFFER)
        return joined.entry.id, buyer.id

    async def accept(self, entry_id: uuid.UUID, user_id: uuid.UUID) -> Reservation:
        async with self.res.sessionmaker() as s:
            return await waitlist_service.accept(
                self.res, self.client, s, user_id=user_id, entry_id=entry_id
            )

    async def cancel(self, booking_id: uuid.UUID) -> None:
        result = await booking_client.cancel(
            self.client, booking_id, actor="user:test", reason="changed mind"
        )
        assert result.booking_status == "cancelled"

    async def pay(self, booking_id: uuid.UUID) -> str:
        return (await booking_client.pay(self.client, booking_id, "pm_card_visa")).status

    async def position(self, entry_id: uuid.UUID) -> int | None:
        async with self.res.sessionmaker() as s:
            e = await waitlist.own_entry(s, (await entry(self.res, entry_id)).user_id, entry_id)
            return await waitlist.position(s, e)

    def ids(self, event_id: uuid.UUID, *booking_ids: uuid.UUID) -> list[str]:
        return [waitlist_workflow_id(event_id), search_sync_workflow_id(event_id)] + [
            booking_workflow_id(b) for b in booking_ids
        ]

    async def finished(self, event_id: uuid.UUID) -> None:
        """The event's waitlist workflow has ended (nothing open, nothing pending)."""
        handle = self.client.get_workflow_handle(waitlist_workflow_id(event_id))

        async def done() -> bool:
            return (await handle.describe()).status != WorkflowExecutionStatus.RUNNING

        await eventually(done)

    async def until(self, entry_ids: list[uuid.UUID], want: list[str]) -> None:
        async def reached() -> bool:
            return await statuses(self.res, *entry_ids) == want

        await eventually(reached)


@pytest.fixture
async def sale(time_skipping: TimeSkipping) -> AsyncIterator[Sale]:
    ts = waitlist_settings(time_skipping)
    async with workers(ts):
        yield Sale(ts)


async def test_offers_go_in_join_order_several_at_once_and_big_entries_keep_their_place(
    sale: Sale,
) -> None:
    res = sale.res
    event = await make_event(res, capacity=4)
    a, b = await make_account(res), await make_account(res)
    ha = await hold(sale.ts, event.id, a.id, 1)
    hb = await hold(sale.ts, event.id, b.id, 3)
    w1, u1 = await sale.join(event.id, 2)
    w2, u2 = await sale.join(event.id, 1)
    w3, u3 = await sale.join(event.id, 1)
    w4, _ = await sale.join(event.id, 3)
    assert [await sale.position(w) for w in (w1, w2, w3, w4)] == [1, 2, 3, 4]

    await sale.cancel(ha)  # 1 seat freed: it fits the second in line, the first keeps its place
    assert await counters(res, event.id) == (0, 4, 0, 0) or (await counters(res, event.id))[0] == 0
    await sale.until([w1, w2, w3, w4], ["waiting", "offered", "waiting", "waiting"])
    assert [await sale.position(w) for w in (w1, w3, w4)] == [1, 2, 3]
    assert await counters(res, event.id) == (0, 4, 0, 0)
    await invariants_hold(res, event.id)

    await sale.cancel(hb)  # 3 seats: the first (2) and the third (1) in line, at once
    assert (await counters(res, event.id))[0] == 0  # never public while someone waits
    await sale.until([w1, w2, w3, w4], ["offered", "offered", "offered", "waiting"])
    assert await sale.position(w4) == 1
    assert await counters(res, event.id) == (0, 4, 0, 0)
    e1 = await entry(res, w1)
    assert (e1.offered_quantity, e1.offer_id) == (2, f"{w1}:offer")
    for u in (u1, u2, u3):
        assert await kinds(res, u) == ["waitlist_offer"]
    await invariants_hold(res, event.id)


async def test_accept_then_pay_confirms_the_offered_seats(sale: Sale) -> None:
    res = sale.res
    event = await make_event(res, capacity=2)
    a = await make_account(res)
    ha = await hold(sale.ts, event.id, a.id, 2)
    w1, u1 = await sale.join(event.id, 2)
    await sale.cancel(ha)
    await sale.until([w1], ["offered"])

    held = await sale.accept(w1, u1)
    assert held.status == "held"
    assert held.quantity == 2
    assert held.amount == 2 * event.price
    assert await counters(res, event.id) == (0, 2, 0, 0)  # adopted: nothing public, still held
    e1 = await entry(res, w1)
    assert (e1.status, e1.booking_id) == ("accepted", held.booking_id)
    await invariants_hold(res, event.id)
    again = await sale.accept(w1, u1)  # accepting twice answers the same booking
    assert again.booking_id == held.booking_id

    assert await sale.pay(held.booking_id) == "confirmed"
    assert await counters(res, event.id) == (0, 0, 2, 0)
    assert await kinds(res, u1) == ["waitlist_offer", "booking_confirmed"]
    assert await kinds(res, a.id) == ["booking_cancelled"]
    await invariants_hold(res, event.id)
    # the accepted offer's timer lapses with nothing to do; the waitlist workflow ends
    await advance(sale.env, OFFER + 1, *sale.ids(event.id, held.booking_id))
    await sale.finished(event.id)
    await record(sale.client, waitlist_workflow_id(event.id), "waitlist-offer-accept-pay")


async def test_an_accepted_hold_that_lapses_goes_to_the_next_in_line(sale: Sale) -> None:
    res = sale.res
    event = await make_event(res, capacity=2)
    a = await make_account(res)
    ha = await hold(sale.ts, event.id, a.id, 2)
    w1, u1 = await sale.join(event.id, 2)
    w2, _ = await sale.join(event.id, 1)
    w3, _ = await sale.join(event.id, 1)
    await sale.cancel(ha)
    await sale.until([w1, w2, w3], ["offered", "waiting", "waiting"])
    held = await sale.accept(w1, u1)

    await advance(sale.env, HOLD + 1, *sale.ids(event.id, held.booking_id))  # never paid
    await sale.until([w1, w2, w3], ["accepted", "offered", "offered"])
    booking = await entry(res, w1)
    assert booking.booking_id == held.booking_id
    assert await counters(res, event.id) == (0, 2, 0, 0)
    assert await kinds(res, u1) == ["waitlist_offer", "hold_expired"]
    await invariants_hold(res, event.id)


async def test_decline_and_lapse_pass_the_seats_on_then_back_to_the_public(sale: Sale) -> None:
    res = sale.res
    event = await make_event(res, capacity=3)
    a = await make_account(res)
    ha = await hold(sale.ts, event.id, a.id, 3)
    w1, u1 = await sale.join(event.id, 3)
    w2, u2 = await sale.join(event.id, 2)
    await sale.cancel(ha)
    await sale.until([w1, w2], ["offered", "waiting"])
    assert await counters(res, event.id) == (0, 3, 0, 0)

    async with res.sessionmaker() as s:
        left = await waitlist_service.leave(res, sale.client, s, user_id=u1, entry_id=w1)
    assert (left.status, left.declined_offer, left.seats_returned) == ("left", f"{w1}:offer", 3)
    await sale.until([w1, w2], ["left", "offered"])

    # 2 seats to the next in line; the third one has nobody left waiting: back on sale
    async def one_public() -> bool:
        return await counters(res, event.id) == (1, 2, 0, 0)

    await eventually(one_public)
    await invariants_hold(res, event.id)

    await advance(sale.env, OFFER * 0.8 + 5, *sale.ids(event.id))
    await eventually(lambda: _has(res, u2, "waitlist_offer_expiring"))
    assert (await entry(res, w2)).status == "offered"

    await advance(sale.env, OFFER * 0.2, *sale.ids(event.id))
    await sale.until([w2], ["expired"])

    async def all_public() -> bool:
        return await counters(res, event.id) == (3, 0, 0, 0)

    await eventually(all_public)
    assert await kinds(res, u2) == [
        "waitlist_offer",
        "waitlist_offer_expiring",
        "waitlist_offer_expired",
    ]
    await invariants_hold(res, event.id)

    with pytest.raises(OfferExpired):  # a lapsed offer cannot be accepted; nothing changes
        await sale.accept(w2, u2)
    assert (await entry(res, w2)).status == "expired"
    assert await counters(res, event.id) == (3, 0, 0, 0)
    await sale.finished(event.id)
    await record(
        sale.client, waitlist_workflow_id(event.id), "waitlist-decline-lapse-back-to-public"
    )


async def _has(res: Resources, user_id: uuid.UUID, kind: str) -> bool:
    return kind in await kinds(res, user_id)


async def test_cancelling_a_confirmed_booking_feeds_the_waitlist(sale: Sale) -> None:
    res = sale.res
    event = await make_event(res, capacity=2)
    a = await make_account(res)
    ha = await hold(sale.ts, event.id, a.id, 2)
    assert await sale.pay(ha) == "confirmed"
    w1, u1 = await sale.join(event.id, 1)
    assert await counters(res, event.id) == (0, 0, 2, 0)

    await sale.cancel(ha)  # refund, then release: one seat to the waiter, one back on sale
    await sale.until([w1], ["offered"])

    async def settled() -> bool:
        return await counters(res, event.id) == (1, 1, 0, 0)

    await eventually(settled)
    assert await kinds(res, a.id) == ["booking_confirmed", "refund_issued", "booking_cancelled"]
    assert await kinds(res, u1) == ["waitlist_offer"]
    await invariants_hold(res, event.id)


async def test_a_worker_restart_in_the_middle_of_an_offer_loses_nothing(
    time_skipping: TimeSkipping,
) -> None:
    # the booking workflow times a hold from Postgres' clock, and this test moves workflow time
    # 10 minutes ahead before the accept: a longer payment window keeps the hold open
    ts = waitlist_settings(time_skipping).with_settings(hold_seconds=3600)
    sale = Sale(ts)
    res = ts.res
    event = await make_event(res, capacity=2)
    a = await make_account(res)
    async with workers(ts, cache=False):
        ha = await hold(ts, event.id, a.id, 2)
        w1, _ = await sale.join(event.id, 1)
        w2, _ = await sale.join(event.id, 1)
        w3, u3 = await sale.join(event.id, 2)
        await sale.cancel(ha)
        await sale.until([w1, w2, w3], ["offered", "offered", "waiting"])
    # the worker is gone with two offers open; a new one (empty cache) replays the
    # waitlist's history, lets both offers lapse and offers the seats to the next in line
    async with workers(ts):
        await advance(ts.env, OFFER + 1, *sale.ids(event.id))
        await sale.until([w1, w2, w3], ["expired", "expired", "offered"])
        assert await counters(res, event.id) == (0, 2, 0, 0)
        await invariants_hold(res, event.id)
        held = await sale.accept(w3, u3)
        assert await sale.pay(held.booking_id) == "confirmed"
        assert await counters(res, event.id) == (0, 0, 2, 0)
        await invariants_hold(res, event.id)


async def test_a_busy_waitlist_continues_as_new_and_keeps_its_offers(sale: Sale) -> None:
    """Past its history budget the workflow continues as new; the next run re-arms exactly the
    offers Postgres holds (a small budget here; 10,000 events in production)."""
    res = sale.res
    event = await make_event(res, capacity=3)
    async with res.engine.begin() as conn:  # sold out
        await conn.execute(
            text("UPDATE events SET available = 0, sold = 3 WHERE id = :id"), {"id": event.id}
        )
    waiters = [await sale.join(event.id, 1) for _ in range(5)]
    async with res.engine.begin() as conn:  # three seats freed and kept for the waitlist
        await conn.execute(
            text("UPDATE events SET sold = 0, held = 3, waitlist_pool = 3 WHERE id = :id"),
            {"id": event.id},
        )
    handle = await sale.client.start_workflow(
        WaitlistWorkflow.run,
        WaitlistInput(event_id=event.id, offer_seconds=OFFER, max_history=12),
        id=waitlist_workflow_id(event.id),
        task_queue=common.BOOKING,
    )
    ids = [w for w, _ in waiters]
    await sale.until(ids, ["offered", "offered", "offered", "waiting", "waiting"])
    first_run = handle.result_run_id
    await advance(sale.env, OFFER + 1, *sale.ids(event.id))  # three lapse: the next two get theirs
    await sale.until(ids, ["expired", "expired", "expired", "offered", "offered"])
    # the history passed its budget on the way (at the reminders): a new run took over, with
    # the open offers re-armed from Postgres — none lost, none made twice
    assert (await handle.describe()).run_id != first_run
    await advance(sale.env, OFFER + 1, *sale.ids(event.id))  # those lapse too: back on sale
    await sale.until(ids, ["expired"] * 5)
    await sale.finished(event.id)
    assert await counters(res, event.id) == (3, 0, 0, 0)
    await invariants_hold(res, event.id)
    await record(
        sale.client,
        waitlist_workflow_id(event.id),
        "waitlist-continue-as-new-first-run",
        run_id=first_run,
    )
    await record(sale.client, waitlist_workflow_id(event.id), "waitlist-continue-as-new-last-run")
