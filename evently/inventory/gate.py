"""The sold-out gate: a Redis counter in front of the reserve statement (docs/performance.md).

It counts seats that may still be free: decremented before a booking workflow is started and
given back (exactly once per booking and reason: the ``give_back_*`` methods) when no hold
results, or when a hold is released. A request that cannot fit is answered ``sold_out`` with
no workflow and no Postgres write. The counter may run high (the reserve statement then
refuses the extra requests) but must never run low. Three things keep it from running low
after a fault:

- whoever took a seat gives it back whenever its request ends without a known hold (an error,
  a timeout, a cancelled request): giving back is idempotent per booking, a hold that appears
  later only leaves the gate high;
- a fault marks the event's gate *suspect* for SUSPECT_TTL seconds and drops the counter: it is
  rebuilt from Postgres (``available``, which ignores seats only borrowed by requests in
  flight, so a rebuilt gate is never low), and while suspect a sold-out verdict is checked
  against Postgres before it is answered;
- the counter expires after GATE_TTL seconds and is rebuilt from Postgres, so any drift ends.

With Redis down, every request goes to the reserve statement. Every method fails open.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from enum import StrEnum

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger("evently.inventory.gate")

GATE_TTL = 30  # seconds; the gate is rebuilt from Postgres at least this often
GATE_MARK_TTL = 24 * 3600
SUSPECT_TTL = 30  # seconds a fault keeps sold-out verdicts checked against Postgres


class Verdict(StrEnum):
    OK = "ok"  # seats taken from the counter: start the booking
    SOLD_OUT = "sold_out"
    MISSING = "missing"  # no counter: load it from Postgres and ask again
    CLOSED = "closed"  # the event is not on sale
    RETRY = "retry"  # this idempotent booking already took its seats
    UNSURE = "unsure"  # sold out by the counter, but the gate is suspect: ask Postgres


_GATE_TAKE = """
-- KEYS[1] gate counter, KEYS[2] idempotency mark ('' when none), KEYS[3] suspect mark;
-- ARGV[1] quantity, ARGV[2] mark ttl, ARGV[3] '1' when the seat is only borrowed (a request
-- that may be refused for its own lines: the gate is in doubt while it is out), ARGV[4]
-- suspect ttl
if KEYS[2] ~= '' and redis.call('EXISTS', KEYS[2]) == 1 then return -4 end
local v = redis.call('GET', KEYS[1])
if not v then return -2 end
if v == 'closed' then return -3 end
local free = tonumber(v)
local q = tonumber(ARGV[1])
if free < q then
  if redis.call('EXISTS', KEYS[3]) == 1 then return -5 end
  return -1
end
redis.call('DECRBY', KEYS[1], q)
if KEYS[2] ~= '' then redis.call('SET', KEYS[2], '1', 'EX', ARGV[2]) end
if ARGV[3] == '1' then redis.call('SET', KEYS[3], '1', 'EX', ARGV[4]) end
return free - q
"""

_GATE_GIVE = """
-- KEYS[1] gate counter, KEYS[2] once-mark; ARGV[1] quantity, ARGV[2] mark ttl
if redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[2]) then
  local v = redis.call('GET', KEYS[1])
  if v and v ~= 'closed' then redis.call('INCRBY', KEYS[1], ARGV[1]) end
  return 1
end
return 0
"""

_VERDICTS = {
    -1: Verdict.SOLD_OUT,
    -2: Verdict.MISSING,
    -3: Verdict.CLOSED,
    -4: Verdict.RETRY,
    -5: Verdict.UNSURE,
}


def gate_key(event_id: uuid.UUID | str) -> str:
    return f"evently:gate:{{{event_id}}}"


def _idem_key(event_id: uuid.UUID | str, booking_id: uuid.UUID | str) -> str:
    return f"evently:gate:{{{event_id}}}:idem:{booking_id}"


def _suspect_key(event_id: uuid.UUID | str) -> str:
    return f"evently:gate:{{{event_id}}}:suspect"


def _gave_key(event_id: uuid.UUID | str, once_key: str) -> str:
    return f"evently:gate:{{{event_id}}}:gave:{once_key}"


# the once-keys of the give-backs: one per reason a seat comes back, so each comes back once
def _no_hold(booking_id: uuid.UUID | str) -> str:
    """The same for every path that may notice that no hold resulted (the reserve statement's
    refusal, the API's error, timeout or cancelled request)."""
    return f"{booking_id}:no-hold"


def _released(booking_id: uuid.UUID | str) -> str:
    return f"{booking_id}:release"


def _lines_cancelled(booking_id: uuid.UUID | str, change_no: int) -> str:
    return f"{booking_id}:lines-{change_no}"


def _waitlist_return(version: int | None) -> str:
    return f"waitlist-return:{version}"


@dataclass(frozen=True)
class GateState:
    """What Redis holds for an event's gate (for checks and tests): the counter (seats, or
    ``closed``; None when missing) and whether it is suspect."""

    counter: str | None
    suspect: bool


class Gate:
    """The sold-out gate, the only code that touches its Redis keys. Every method fails open
    (returns None) when Redis errs.

    Seats come back through one named method per reason (each exactly once per its own key):
    :meth:`give_back_no_hold`, :meth:`give_back_released`, :meth:`give_back_cancelled_lines`,
    :meth:`give_back_from_waitlist`; the counter is forgotten by :meth:`reset` (one event),
    :meth:`suspect` (a fault) or :meth:`reset_all` (an API process starting)."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._take = redis.register_script(_GATE_TAKE)
        self._give = redis.register_script(_GATE_GIVE)

    async def take(
        self,
        event_id: uuid.UUID,
        quantity: int,
        booking_id: uuid.UUID,
        idempotent: bool,
        *,
        doubtful: bool = False,
    ) -> Verdict | None:
        """Take seats for a booking. ``doubtful``: the request may be refused for reasons of
        its own (a ticket type's cap or window, a promo code) and then gives the seats back;
        until then the counter is low by seats that may come back, so taking them marks the
        gate suspect (sold-out verdicts are checked against Postgres for SUSPECT_TTL). Without
        it, a buyer could be told ``sold_out`` while the last seats were only borrowed by
        requests for a sold-out ticket type (seen in the ticket-types concurrency test)."""
        idem = _idem_key(event_id, booking_id) if idempotent else ""
        try:
            res = int(
                await self._take(
                    keys=[gate_key(event_id), idem, _suspect_key(event_id)],
                    args=[quantity, GATE_MARK_TTL, "1" if doubtful else "0", SUSPECT_TTL],
                )
            )
        except RedisError as exc:
            log.warning("sold-out gate unavailable, going straight to Postgres: %s", exc)
            return None
        return _VERDICTS.get(res, Verdict.OK)

    async def load(self, event_id: uuid.UUID, available: int | None) -> None:
        """Seed a missing gate from Postgres (NX: never overwrite a live counter)."""
        try:
            value = "closed" if available is None else str(available)
            await self.redis.set(
                gate_key(event_id), value, nx=True, ex=GATE_TTL if available is not None else 5
            )
        except RedisError as exc:
            log.warning("could not seed the sold-out gate: %s", exc)

    async def give_back_no_hold(
        self, event_id: uuid.UUID, quantity: int, booking_id: uuid.UUID
    ) -> None:
        """Seats taken for a booking that holds nothing (refused, failed, timed out, or its
        request cancelled): whichever path notices, they come back once."""
        await self._give_back(event_id, quantity, _no_hold(booking_id))

    async def give_back_released(
        self, event_id: uuid.UUID, quantity: int, booking_id: uuid.UUID
    ) -> None:
        """A hold or booking released (expired, cancelled): its seats are on sale again."""
        await self._give_back(event_id, quantity, _released(booking_id))

    async def give_back_cancelled_lines(
        self, event_id: uuid.UUID, quantity: int, booking_id: uuid.UUID, change_no: int
    ) -> None:
        """Seats of a partial cancellation (change ``change_no`` of a booking) back on sale."""
        await self._give_back(event_id, quantity, _lines_cancelled(booking_id, change_no))

    async def give_back_from_waitlist(
        self, event_id: uuid.UUID, quantity: int, version: int | None
    ) -> None:
        """Seats the waitlist's pool returned to public sale, once per returning change
        (``version``: the event's counters version, unique to that commit)."""
        await self._give_back(event_id, quantity, _waitlist_return(version))

    async def _give_back(self, event_id: uuid.UUID, quantity: int, once_key: str) -> None:
        """Return seats to the gate exactly once per ``once_key``."""
        try:
            await self._give(
                keys=[gate_key(event_id), _gave_key(event_id, once_key)],
                args=[quantity, GATE_MARK_TTL],
            )
        except RedisError as exc:
            # the counter stays low until it expires (GATE_TTL) and is rebuilt from Postgres
            log.warning("could not give seats back to the gate: %s", exc)

    async def reset(self, event_id: uuid.UUID) -> None:
        """Forget the counter (after publish, capacity change, cancel): rebuilt on next use."""
        try:
            await self.redis.delete(gate_key(event_id))
        except RedisError as exc:
            log.warning("could not reset the sold-out gate: %s", exc)

    async def sold_out(self, event_id: uuid.UUID, quantity: int) -> bool:
        """Read-only look (no seat taken): True only when the counter is there, below
        ``quantity``, and the gate is not suspect. Seats in it are taken only by admitted
        requests, which hold them or give them back."""
        try:
            value, suspect = await self.redis.mget(gate_key(event_id), _suspect_key(event_id))
        except RedisError:
            return False
        try:
            return value is not None and suspect is None and int(value) < quantity
        except ValueError:  # "closed"
            return False

    async def suspect(self, event_id: uuid.UUID) -> None:
        """A fault left the counter in doubt (a seat taken by a request whose outcome is
        unknown, an error between take and give-back): drop it, to be rebuilt from Postgres,
        and check sold-out verdicts against Postgres for SUSPECT_TTL seconds."""
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.set(_suspect_key(event_id), "1", ex=SUSPECT_TTL)
                pipe.delete(gate_key(event_id))
                await pipe.execute()
        except RedisError as exc:
            log.warning("could not mark the sold-out gate suspect: %s", exc)

    async def state(self, event_id: uuid.UUID) -> GateState:
        """The gate's counter and suspect mark as Redis holds them (raises when Redis errs)."""
        counter, suspect = await self.redis.mget(gate_key(event_id), _suspect_key(event_id))
        return GateState(
            counter=None if counter is None else _text(counter), suspect=suspect is not None
        )

    async def reset_all(self) -> int:
        """Forget every counter (an API process starting: it cannot know what a crashed
        predecessor borrowed); each is rebuilt from Postgres on its next use."""
        dropped = 0
        try:
            async for key in self.redis.scan_iter(match="evently:gate:{*}", count=500):
                dropped += int(await self.redis.delete(key))
        except RedisError as exc:
            log.warning("could not reset the sold-out gates: %s", exc)
        return dropped


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
