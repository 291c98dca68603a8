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


async def test_an_idempotent_take_takes_once_per_booking_and_event(resources: Resources) -> None:
    """Killed mutants (docs/testing.md, "Mutation score"): the idempotency mark is per event
    and booking, so a retried take of one booking takes nothing more, while another booking,
    or the same booking id on another event, takes its own seats."""
    gate = Gate(resources.redis)
    event, other_event = uuid.uuid4(), uuid.uuid4()
    await gate.load(event, 5)
    await gate.load(other_event, 5)
    booking = uuid.uuid4()
    assert await gate.take(event, 2, booking, True) == Verdict.OK
    assert await gate.take(event, 2, booking, True) == Verdict.RETRY  # the retry takes nothing
    assert (await gate.state(event)).counter == "3"
    assert await gate.take(event, 1, uuid.uuid4(), True) == Verdict.OK  # another booking
    assert await gate.take(other_event, 1, booking, True) == Verdict.OK  # another event
    assert (await gate.state(event)).counter == "2"
    assert (await gate.state(other_event)).counter == "4"
    # not idempotent: every take takes
    plain = uuid.uuid4()
    assert await gate.take(event, 1, plain, False) == Verdict.OK
    assert await gate.take(event, 1, plain, False) == Verdict.OK
    assert (await gate.state(event)).counter == "0"
    # a plain take leaves the gate sure: the next verdict is a sold out, not UNSURE
    assert not (await gate.state(event)).suspect


async def test_sold_out_is_strictly_fewer_seats_than_asked(resources: Resources) -> None:
    gate = Gate(resources.redis)
    event = uuid.uuid4()
    await gate.load(event, 2)
    assert not await gate.sold_out(event, 2)  # exactly enough is not sold out
    assert await gate.sold_out(event, 3)


async def test_seats_given_back_once_per_booking_not_once_per_event(resources: Resources) -> None:
    gate = Gate(resources.redis)
    event = uuid.uuid4()
    await gate.load(event, 2)
    first, second = uuid.uuid4(), uuid.uuid4()
    for booking in (first, second):
        assert await gate.take(event, 1, booking, False) == Verdict.OK
    await gate.give_back_no_hold(event, 1, first)
    await gate.give_back_no_hold(event, 1, first)  # noticed twice: back once
    await gate.give_back_no_hold(event, 1, second)  # another booking: its own seat back
    assert (await gate.state(event)).counter == "2"
