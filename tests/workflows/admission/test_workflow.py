"""AdmissionWorkflow on the time-skipping server with its real activity, real Postgres and
Redis: it admits in join order, never more than can still buy, tells the admitted on their live
channel, continues as new, and ends with the on-sale."""

from __future__ import annotations

import uuid

from sqlalchemy import text

from evently import live, waitingroom
from evently.infra.resources import Resources
from evently.waitingroom import WaitingRoom
from tests.support.factories import make_accounts, make_event
from tests.support.histories import record
from tests.support.temporal import TimeSkipping, workers
from workflows import common
from workflows.admission.contract import AdmissionInput, admission_workflow_id
from workflows.admission.workflow import AdmissionWorkflow


async def _line(res: Resources, event_id: uuid.UUID, n: int) -> list[uuid.UUID]:
    """n buyers join, in order; their ids."""
    room = WaitingRoom(res.redis)
    buyers = [a.user.id for a in await make_accounts(res, n)]
    for user_id in buyers:
        place = await room.join(event_id, user_id, immediate=False)
        async with res.sessionmaker() as session, session.begin():
            await waitingroom.record_join(session, event_id, user_id, place.place)
    return buyers


async def test_admits_in_join_order_within_the_seats_left_and_ends_with_the_on_sale(
    time_skipping: TimeSkipping,
) -> None:
    ts = time_skipping
    res = ts.res
    event = await make_event(res, capacity=2)
    async with res.engine.begin() as conn:
        await conn.execute(text("UPDATE events SET queue = 'on' WHERE id = :e"), {"e": event.id})
    buyers = await _line(res, event.id, 5)
    wid = admission_workflow_id(event.id)
    async with workers(ts):
        handle = await ts.client.start_workflow(
            AdmissionWorkflow.run,
            AdmissionInput(event_id=event.id, tick_seconds=1.0, max_ticks=2),
            id=wid,
            task_queue=common.BOOKING,
        )
        # two ticks, then a new run: by then 1.5 x 2 seats = 3 places are admitted, no more
        first_run = handle.result_run_id
        line = await WaitingRoom(res.redis).line(event.id)
        for _ in range(200):
            line = await WaitingRoom(res.redis).line(event.id)
            desc = await handle.describe()
            if desc.run_id != first_run and line.admitted_through >= 3:
                break
            await ts.env.sleep(1)
        assert line.admitted_through == 3
        assert line.waiting == 2
        # the on-sale ends: the next tick closes the line and the workflow
        async with res.engine.begin() as conn:
            await conn.execute(
                text("UPDATE events SET status = 'completed' WHERE id = :e"), {"e": event.id}
            )
        assert (await handle.result()).startswith("closed at admitted-through 3")
        await record(ts.client, wid, "queue-admission-continued-first-run", run_id=first_run)
        await record(ts.client, wid, "queue-admission-closed")

    async with res.engine.connect() as conn:
        admitted = (
            await conn.execute(
                text(
                    "SELECT user_id FROM queue_entries WHERE event_id = :e "
                    "AND admitted_at IS NOT NULL ORDER BY position"
                ),
                {"e": event.id},
            )
        ).scalars()
        assert list(admitted) == buyers[:3]
    # each admitted buyer got an admission token on their live channel, valid for them only
    for user_id in buyers[:3]:
        messages = await live.read(res.redis, live.user_channel(user_id), "0-0", None)
        assert [m.type for m in messages] == ["admitted"]
        token = messages[0].data["admission_token"]
        found = waitingroom.read_admission_token(res.settings.jwt_secret, token, event.id)
        assert found is not None
        assert found.user_id == user_id
    assert await live.read(res.redis, live.user_channel(buyers[3]), "0-0", None) == []
