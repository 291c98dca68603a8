"""The sold-out gate on real Redis: a seat only borrowed by a request that may be refused for
its own lines puts the gate in doubt, so the sold-out verdicts that follow are checked against
Postgres instead of being answered from a counter that is low by seats that may come back."""

from __future__ import annotations

import uuid

from evently.infra.resources import Resources
from evently.inventory.gate import Gate, Verdict


async def test_a_borrowed_seat_puts_sold_out_verdicts_in_doubt(resources: Resources) -> None:
    gate = Gate(resources.redis)
    plain, typed = uuid.uuid4(), uuid.uuid4()
    for event_id in (plain, typed):
        await gate.load(event_id, 1)

    # a plain request (no lines): its seat will be held; the next one is sold out for sure
    assert await gate.take(plain, 1, uuid.uuid4(), False) == Verdict.OK
    assert await gate.take(plain, 1, uuid.uuid4(), False) == Verdict.SOLD_OUT
    assert await gate.sold_out(plain, 1)

    # a request with lines takes the last seat: it may be refused for a sold-out ticket type
    # and give the seat back, so the next verdict must be checked (UNSURE), not answered
    booking = uuid.uuid4()
    assert await gate.take(typed, 1, booking, False, doubtful=True) == Verdict.OK
    assert await gate.take(typed, 1, uuid.uuid4(), False) == Verdict.UNSURE
    assert not await gate.sold_out(typed, 1)  # the read-only look defers too
    # it was refused and gave the seat back: the seat is there for the next buyer
    await gate.give_back_no_hold(typed, 1, booking)
    assert await gate.take(typed, 1, uuid.uuid4(), False) == Verdict.OK
