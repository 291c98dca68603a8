"""The admission tick's rate rule (activities/admission.py) on real Postgres and Redis: slow
reserves brake the rate, a full window stops admission and growth, a fast, keeping-up reserve
path lets the rate grow."""

from __future__ import annotations

import uuid

from sqlalchemy import text
from temporalio.client import Client

from activities.admission import AdmissionActivities
from evently.infra import metrics
from evently.infra.resources import Resources
from evently.waitingroom import WaitingRoom
from tests.support.factories import make_accounts, make_event
from workflows.admission.contract import Progress, TickInput


async def _queued_event(res: Resources, buyers: int) -> uuid.UUID:
    event = await make_event(res, capacity=100)
    async with res.engine.begin() as conn:
        await conn.execute(text("UPDATE events SET queue = 'on' WHERE id = :e"), {"e": event.id})
    room = WaitingRoom(res.redis)
    for account in await make_accounts(res, buyers):
        await room.join(event.id, account.user.id, immediate=False)
    return event.id


async def _counters(res: Resources, event_id: uuid.UUID, done: int, slow: int) -> None:
    await res.redis.set(f"wr:{event_id}:done", done)
    await res.redis.set(f"wr:{event_id}:slow", slow)


async def test_slow_reserves_brake_and_fast_ones_let_the_rate_grow(
    resources: Resources, temporal_client: Client
) -> None:
    res = resources
    event_id = await _queued_event(res, 60)
    tick = AdmissionActivities(res, temporal_client).tick
    room = WaitingRoom(res.redis)

    # 5 of the 10 reserves answered since the last tick were slow: rate x 0.75
    await _counters(res, event_id, done=10, slow=5)
    first = await tick(TickInput(event_id=event_id, tick_seconds=1.0, progress=Progress(rate=20)))
    assert first.progress.rate == 15
    assert first.admitted_through == 15  # one tick's worth at the new rate
    assert (first.progress.done_seen, first.progress.slow_seen) == (10, 5)

    # the admitted reserved (fast: no new slow answers) and buyers wait: x 1.5
    for place in range(1, 16):
        await room.mark_used(event_id, place, slow=False)
    second = await tick(TickInput(event_id=event_id, tick_seconds=1.0, progress=first.progress))
    assert second.progress.rate == 15 * 1.5
    assert second.admitted_through == 15 + 23


async def test_a_full_window_admits_nobody_and_holds_the_rate(
    resources: Resources, temporal_client: Client
) -> None:
    res = resources
    event_id = await _queued_event(res, 60)
    tick = AdmissionActivities(res, temporal_client).tick
    # nothing slow, nothing shed, room in the window: 8/s grows to 12/s, and the window is
    # max(10, 12/s x 4 s) = 48 admitted-but-unused buyers, one 4-second tick's worth
    admitted_before = metrics.WAITING_ROOM_ADMITTED._value.get()
    first = await tick(TickInput(event_id=event_id, tick_seconds=4.0, progress=Progress(rate=8)))
    assert first.progress.rate == 12
    assert first.admitted_through == 48
    # the on-sale dashboard's line length, rate and admissions (deploy/observability)
    assert metrics.WAITING_ROOM_WAITING.labels(str(event_id))._value.get() == 60 - 48
    assert metrics.WAITING_ROOM_RATE.labels(str(event_id))._value.get() == 12
    assert metrics.WAITING_ROOM_ADMITTED._value.get() - admitted_before == 48
    # nobody reserved: the window is full, so no admission and no growth
    second = await tick(TickInput(event_id=event_id, tick_seconds=4.0, progress=first.progress))
    assert second.progress.rate == 12
    assert second.admitted_through == 48
