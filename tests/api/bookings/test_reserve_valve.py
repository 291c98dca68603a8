"""The reserve path's valve: a capped number in flight, a short FIFO wait for a slot, then
a fast 503 (api/bookings/service.py: ReserveValve). Pure asyncio: no stack needed."""

from __future__ import annotations

import asyncio

import pytest

from api.bookings.service import ReserveValve
from evently.errors import Overloaded, SoldOut


async def test_a_waiter_gets_the_slot_of_the_request_that_leaves_first_come_first_served() -> None:
    valve = ReserveValve(1, max_waiting=3, max_wait=5)
    order: list[int] = []
    release = asyncio.Event()

    async def holder() -> None:
        async with valve:
            await release.wait()

    async def waiter(n: int) -> None:
        async with valve:
            order.append(n)
            assert valve.in_flight == 1  # the slot changed hands; never above the cap
            await asyncio.sleep(0)

    first = asyncio.create_task(holder())
    await asyncio.sleep(0)
    waiters = []
    for n in range(3):
        waiters.append(asyncio.create_task(waiter(n)))
        await asyncio.sleep(0)  # queued in this order
    assert valve.full
    assert valve.waiting == 3
    assert valve.saturated
    with pytest.raises(Overloaded):  # no room left to wait: shed at once
        async with valve:
            pass
    release.set()
    await asyncio.gather(first, *waiters)
    assert order == [0, 1, 2]
    assert valve.in_flight == 0
    assert valve.waiting == 0


async def test_a_wait_is_bounded_and_a_timed_out_waiter_leaks_no_slot() -> None:
    valve = ReserveValve(1, max_waiting=5, max_wait=0.05)
    async with valve:
        with pytest.raises(Overloaded) as shed:
            async with valve:
                pass
        assert shed.value.headers["Retry-After"] == "1"
        assert valve.waiting == 0
    assert valve.in_flight == 0
    async with valve:  # the slot is free again
        assert valve.in_flight == 1


async def test_a_waiter_cancelled_after_it_was_handed_the_slot_passes_it_on() -> None:
    valve = ReserveValve(1, max_waiting=5, max_wait=5)
    got: list[str] = []

    async def wait(name: str) -> None:
        async with valve:
            got.append(name)

    await valve.__aenter__()
    a = asyncio.create_task(wait("a"))
    b = asyncio.create_task(wait("b"))
    await asyncio.sleep(0)
    assert valve.waiting == 2
    await valve.__aexit__(None, None, None)  # hands the slot to a ...
    a.cancel()  # ... which is cancelled before it runs: b must get it
    await asyncio.gather(a, b, return_exceptions=True)
    assert got == ["b"]
    assert valve.in_flight == 0
    assert valve.waiting == 0


async def test_without_a_wait_the_cap_sheds_at_once() -> None:
    valve = ReserveValve(2)
    async with valve, valve:
        assert valve.saturated
        with pytest.raises(Overloaded):
            async with valve:
                pass
    assert valve.in_flight == 0
    assert not valve.saturated


async def test_waiters_for_an_event_found_sold_out_learn_it_at_once_others_wait_on() -> None:
    import uuid

    valve = ReserveValve(1, max_waiting=10, max_wait=5)
    sold, other = uuid.uuid4(), uuid.uuid4()
    answers: list[str] = []
    release = asyncio.Event()

    gone: list[uuid.UUID] = []  # the gate: on sale when they queue, sold out later

    async def is_sold_out() -> None:
        if sold in gone:
            raise SoldOut()

    async def on_sale() -> None:
        return None

    async def wait(event: uuid.UUID, name: str) -> None:
        try:
            await valve.enter(event, is_sold_out if event == sold else on_sale)
        except SoldOut:
            answers.append(f"{name}: sold out")
            return
        answers.append(f"{name}: admitted")
        await release.wait()
        valve.leave()

    await valve.enter()
    tasks = [
        asyncio.create_task(wait(other, "b1")),
        asyncio.create_task(wait(sold, "s1")),
        asyncio.create_task(wait(sold, "s2")),
        asyncio.create_task(wait(other, "b2")),
    ]
    await asyncio.sleep(0)
    assert valve.waiting == 4
    gone.append(sold)
    valve.sold_out(sold)  # an admitted request found the event sold out
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert answers == ["s1: sold out", "s2: sold out"]  # without waiting for a slot
    assert valve.waiting == 2
    valve.leave()
    release.set()
    await asyncio.gather(*tasks)
    assert answers[2:] == ["b1: admitted", "b2: admitted"]  # still in their order
    assert valve.in_flight == 0
