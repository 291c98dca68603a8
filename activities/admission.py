"""The waiting room's admission tick (a local activity of AdmissionWorkflow): measure,
adapt the rate, admit the next places in join order, tell the admitted and the event's
listeners. Idempotent enough to retry: admitting advances one counter (a retry admits at most
one more tick's worth, still in order), and marking ``admitted_at`` is a no-op the second time.

The rate (admissions per second) is adapted from measured signals, AIMD-style, and admissions
are self-clocked by a window:

- the window: admitted buyers who have not reserved yet (and whose token is live) stay below
  ``rate x HORIZON`` (at least ``MIN_WINDOW``): a buyer is admitted when an earlier one has
  reserved, so when the reserve path slows down (a busy API, a slow Temporal), admissions
  slow down with it instead of piling up buyers who would meet a long wait for a slot
  (measured: a rate that grew while the window was full admitted 165 buyers in 2 s, and
  their reserves took 1.4 to 1.9 s);
- the rate is halved (never below ``EVENTLY_QUEUE_MIN_RATE``) when the reserve path met its
  in-flight cap for this event more often since the last tick than half a tick's admissions;
- it is cut by a quarter when more than a tenth of the admitted buyers' reserves answered
  since the last tick took over ``SLOW_RESERVE_SECONDS`` (250 ms): the reserve path is still
  keeping up but its answers grow slow (measured: the window alone let the rate grow until
  reserves took 0.9 s at p50);
- it is raised by half (never above ``EVENTLY_QUEUE_MAX_RATE``) only when buyers wait,
  little was shed, few answers were slow and the window was not full (the admitted are
  reserving as fast as they are let in).

Units: ``rate`` is admissions per second of real time, which is what buyers' estimated waits
are computed from. The tick used to be 0.5 s, but the workflow's timer fires after ~1 s at the
least (Temporal rounds sub-second timers up), so each tick's ``rate x 0.5`` admitted half the
rate and every estimate was twice too short. The tick is now 1 s and the constants were
restated in true units (start 30 -> 15/s, floor 5 -> 2.5/s, HORIZON 2 -> 4 s): the same
admissions per tick and the same window as measured, with a rate that means what it says.

Whatever the rate, a tick never admits more buyers than can still buy: live unused admissions
stay below one and a half times the seats left (so the line does not hand out tokens to buyers
who would only find the event sold out), and nobody is admitted while it is sold out.
"""

from __future__ import annotations

import contextlib
import math
import time
import uuid

from sqlalchemy import text
from temporalio import activity

from evently import live, waitingroom
from evently.enums import EventStatus, QueueMode
from evently.infra import metrics
from evently.infra.resources import Resources
from evently.waitingroom import WaitingRoom
from workflows.admission.contract import ADMISSION_TICK, Progress, TickInput, TickResult
from workflows.connection import TemporalClient

OVERADMIT = 1.5  # live unused admissions per seat left, at most
SHED_TOLERANCE = 0.5  # sheds per tick, as a share of a tick's admissions, that halve the rate
COPY_BATCH = 20_000  # places copied to Postgres per tick, at most
GROWTH = 1.5  # the rate's step up per tick when the reserve path keeps up (x 1.25: a slow ramp
# after the join rush, measured 23 -> 72 reserves/s over 4 s while seats were left)
SLOW_TOLERANCE = 0.1  # share of admitted buyers' reserves answered slowly that brakes the rate
MIN_SAMPLE = 5  # a tick with fewer answers than this brakes only on this many slow ones
HORIZON = 4.0  # seconds from an admission to its reserve's answer (the next poll, the reserve)
MIN_WINDOW = 10  # admitted-but-unused buyers always allowed (a slow start still starts)
IDLE_TICKS = 30  # ticks with nobody waiting before the workflow ends (the next join restarts it)


def _window(rate: float) -> int:
    """Admitted buyers who may be on their way to a reserve at once."""
    return max(MIN_WINDOW, math.ceil(rate * HORIZON))


def _observe(event_id: uuid.UUID, *, waiting: int, rate: float, admitted: int, done: bool) -> None:
    """The line's length and rate for the on-sale dashboard (deploy/observability)."""
    metrics.WAITING_ROOM_ADMITTED.inc(max(0, admitted))
    label = str(event_id)
    if done:
        for gauge in (metrics.WAITING_ROOM_WAITING, metrics.WAITING_ROOM_RATE):
            with contextlib.suppress(KeyError):
                gauge.remove(label)
        return
    metrics.WAITING_ROOM_WAITING.labels(label).set(waiting)
    metrics.WAITING_ROOM_RATE.labels(label).set(rate)


class AdmissionActivities:
    def __init__(self, res: Resources, temporal: TemporalClient) -> None:
        self.res = res
        self.temporal = temporal
        self.room = WaitingRoom(res.redis)

    @activity.defn(name=ADMISSION_TICK)
    async def tick(self, data: TickInput) -> TickResult:
        settings = self.res.settings
        event_id = data.event_id
        async with self.res.engine.connect() as conn:
            row = (
                await conn.execute(
                    text("SELECT status, available, held, queue FROM events WHERE id = :id"),
                    {"id": event_id},
                )
            ).first()
        if row is None:
            return TickResult(progress=data.progress, done=True)
        line = await self.room.line(event_id)
        if line.last_place == 0:
            await self._restore(event_id)
            line = await self.room.line(event_id)
        copied = await self._copy_joins(event_id)
        sold_out = row.available == 0
        if row.status != EventStatus.PUBLISHED or row.queue == QueueMode.OFF:
            await self.room.publish_state(event_id, mode=row.queue, sold_out=sold_out, rate=0.0)
            await live.publish(
                self.res.redis,
                live.event_channel(event_id),
                "queue",
                {"state": "closed", "admitted_through": line.admitted_through, "waiting": 0},
            )
            return TickResult(
                progress=data.progress, admitted_through=line.admitted_through, done=True
            )

        now = time.time()
        ttl = settings.queue_admission_seconds
        expired_through = max((thr for t, thr in data.progress.recent if t <= now - ttl), default=0)
        sig = await self.room.signals(event_id, expired_through)
        live_unused = max(0, line.admitted_through - expired_through - sig.used_live)
        rate = data.progress.rate or settings.queue_start_rate
        shed_now = sig.shed - data.progress.shed_seen
        done_now = sig.done - data.progress.done_seen
        slow_now = sig.slow - data.progress.slow_seen
        per_tick = rate * data.tick_seconds
        window_full = live_unused >= _window(rate)
        if shed_now > max(1.0, SHED_TOLERANCE * per_tick):
            rate = max(settings.queue_min_rate, rate * 0.5)
        elif slow_now > SLOW_TOLERANCE * max(done_now, MIN_SAMPLE):
            rate = max(settings.queue_min_rate, rate * 0.75)
        elif (
            line.waiting > 0
            and not window_full
            and shed_now <= SHED_TOLERANCE * per_tick / 2
            and slow_now <= SLOW_TOLERANCE * done_now / 4
        ):
            rate = min(settings.queue_max_rate, rate * GROWTH)

        cap = min(math.ceil(row.available * OVERADMIT), _window(rate))
        room = 0 if sold_out else max(0, cap - live_unused)
        n = min(room, math.ceil(rate * data.tick_seconds), line.waiting)
        before = after = line.admitted_through
        admitted_at_ms = 0
        if n > 0:
            before, after, admitted_at_ms = await self.room.admit(event_id, n, copied)
        await self.room.publish_state(event_id, mode=row.queue, sold_out=sold_out, rate=rate)
        if after > before:
            await self._tell_admitted(event_id, before, after, admitted_at_ms)
        waiting = max(0, line.last_place - after)
        if after > before or sold_out != line.sold_out:
            await live.publish(
                self.res.redis,
                live.event_channel(event_id),
                "sold_out" if sold_out else "queue",
                {
                    "state": "sold_out" if sold_out else "open",
                    "admitted_through": after,
                    "waiting": waiting,
                    "rate": round(rate, 2),
                },
            )

        recent = [(t, thr) for t, thr in data.progress.recent if t > now - ttl]
        older = [(t, thr) for t, thr in data.progress.recent if t <= now - ttl]
        recent = older[-1:] + recent + [(now, after)]
        saturated = row.queue == QueueMode.AUTO and await self.room.saturated(event_id)
        idle = waiting == 0 and not saturated
        progress = Progress(
            rate=rate,
            shed_seen=sig.shed,
            done_seen=sig.done,
            slow_seen=sig.slow,
            recent=recent,
            idle_ticks=data.progress.idle_ticks + 1 if idle else 0,
        )
        sold_for_good = sold_out and row.held == 0
        done = sold_for_good or progress.idle_ticks >= IDLE_TICKS
        _observe(event_id, waiting=waiting, rate=rate, admitted=after - before, done=done)
        return TickResult(progress=progress, admitted_through=after, waiting=waiting, done=done)

    async def _copy_joins(self, event_id: uuid.UUID) -> int:
        """The places Postgres does not have yet, copied in join order (idempotent); how many
        places it has now (nobody past them is admitted: every admission is in Postgres)."""
        async with self.res.engine.begin() as conn:
            done = await waitingroom.persisted(conn, event_id)
            users = await self.room.joined_since(event_id, done, COPY_BATCH)
            await waitingroom.record_joins(conn, event_id, done + 1, users)
        return done + len(users)

    async def _restore(self, event_id: uuid.UUID) -> None:
        """Redis lost the line (or nobody joined yet): rebuild it from Postgres."""
        async with self.res.engine.connect() as conn:
            found = await waitingroom.entries(conn, event_id)
        await self.room.restore(event_id, found)

    async def _tell_admitted(
        self, event_id: uuid.UUID, before: int, after: int, admitted_at_ms: int
    ) -> None:
        settings = self.res.settings
        async with self.res.engine.begin() as conn:
            admitted = await waitingroom.record_admitted(conn, event_id, before, after)
        expires_at = waitingroom.expiry(admitted_at_ms, settings.queue_admission_seconds)
        await live.publish_many(
            self.res.redis,
            [
                (
                    live.user_channel(user_id),
                    "admitted",
                    {
                        "event_id": str(event_id),
                        "position": 0,
                        "place": place,
                        "admission_token": waitingroom.admission_token(
                            settings.jwt_secret, event_id, user_id, place, expires_at
                        ),
                        "expires_at": expires_at,
                    },
                )
                for user_id, place in admitted
            ],
        )
