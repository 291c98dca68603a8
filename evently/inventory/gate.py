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

Beside the counter, for seated events (issue 34, docs/seating.md "Refused at the API"), what
is known to be refused from the *committed* seats: per event, the smallest best-available
block refused per shape (``<ticket type or *>:<t|s>`` → n: no block of n or more) and a set
of seat ids known taken. They are written only by a reserve whose take read the seats'
*freed epoch* and only while that epoch is unchanged (:meth:`Gate.note_seats`), and every
path that frees a seat bumps the epoch and drops them (:meth:`Gate.seats_freed`, called by
the give-backs of released, cancelled and waitlist-returned seats and by :meth:`Gate.reset`),
so a refusal from them is true; when in doubt (none written, Redis down) the request goes to
its booking workflow as before. They also expire after NOTES_TTL seconds.
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
NOTES_TTL = 30  # seconds the seated refusal notes live at most (a missed drop ends with them)


class Verdict(StrEnum):
    OK = "ok"  # seats taken from the counter: start the booking
    SOLD_OUT = "sold_out"
    MISSING = "missing"  # no counter: load it from Postgres and ask again
    CLOSED = "closed"  # the event is not on sale
    RETRY = "retry"  # this idempotent booking already took its seats
    UNSURE = "unsure"  # sold out by the counter, but the gate is suspect: ask Postgres
    SEATS_TAKEN = "seats_taken"  # seated: no block of a line left, or an asked seat taken


_GATE_TAKE = """
-- KEYS[1] gate counter, KEYS[2] idempotency mark ('' when none), KEYS[3] suspect mark,
-- KEYS[4] refused blocks (hash), KEYS[5] freed epoch, KEYS[6] seats known taken (set);
-- ARGV[1] quantity, ARGV[2] mark ttl, ARGV[3] '1' when the seat is only borrowed (a request
-- that may be refused for its own lines: the gate is in doubt while it is out), ARGV[4]
-- suspect ttl, ARGV[5] '1' for a seated request (answer the freed epoch), ARGV[6] n checks,
-- then n (shape, quantity, refusal text), then the asked seat ids
if KEYS[2] ~= '' and redis.call('EXISTS', KEYS[2]) == 1 then return {-4} end
local v = redis.call('GET', KEYS[1])
if not v then return {-2} end
if v == 'closed' then return {-3} end
local free = tonumber(v)
local q = tonumber(ARGV[1])
if free < q then
  if redis.call('EXISTS', KEYS[3]) == 1 then return {-5} end
  return {-1}
end
local n = tonumber(ARGV[6])
for i = 0, n - 1 do
  local m = redis.call('HGET', KEYS[4], ARGV[7 + 3 * i])
  if m and tonumber(m) <= tonumber(ARGV[8 + 3 * i]) then return {-6, ARGV[9 + 3 * i]} end
end
local known = {}
for i = 7 + 3 * n, #ARGV do
  if redis.call('SISMEMBER', KEYS[6], ARGV[i]) == 1 then known[#known + 1] = ARGV[i] end
end
if #known > 0 then return {-6, unpack(known)} end
redis.call('DECRBY', KEYS[1], q)
if KEYS[2] ~= '' then redis.call('SET', KEYS[2], '1', 'EX', ARGV[2]) end
if ARGV[3] == '1' then redis.call('SET', KEYS[3], '1', 'EX', ARGV[4]) end
if ARGV[5] == '1' then return {free - q, redis.call('GET', KEYS[5]) or ''} end
return {free - q}
"""

# every path that frees a seat: a new freed epoch, the refusal notes dropped
_SEATS_FREED = """
-- KEYS[1] freed epoch, KEYS[2] refused blocks, KEYS[3] seats known taken; ARGV[1] epoch ttl
redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2], KEYS[3])
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

# a seated reserve refused or held: what it tells about the committed seats, written only
# while the freed epoch is the one its take read (no seat freed since)
_NOTE = """
-- KEYS[1] freed epoch, KEYS[2] refused blocks, KEYS[3] seats known taken; ARGV[1] the epoch
-- the take read, ARGV[2] ttl, ARGV[3] shape ('' none), ARGV[4] its refused quantity, then
-- seat ids known taken
if (redis.call('GET', KEYS[1]) or '') ~= ARGV[1] then return 0 end
if ARGV[3] ~= '' then
  local m = redis.call('HGET', KEYS[2], ARGV[3])
  if not m or tonumber(m) > tonumber(ARGV[4]) then redis.call('HSET', KEYS[2], ARGV[3], ARGV[4]) end
  if redis.call('TTL', KEYS[2]) < 0 then redis.call('EXPIRE', KEYS[2], ARGV[2]) end
end
if #ARGV > 4 then
  redis.call('SADD', KEYS[3], unpack(ARGV, 5))
  if redis.call('TTL', KEYS[3]) < 0 then redis.call('EXPIRE', KEYS[3], ARGV[2]) end
end
return 1
"""

_VERDICTS = {
    -1: Verdict.SOLD_OUT,
    -2: Verdict.MISSING,
    -3: Verdict.CLOSED,
    -4: Verdict.RETRY,
    -5: Verdict.UNSURE,
    -6: Verdict.SEATS_TAKEN,
}


def gate_key(event_id: uuid.UUID | str) -> str:
    return f"evently:gate:{{{event_id}}}"


def _idem_key(event_id: uuid.UUID | str, booking_id: uuid.UUID | str) -> str:
    return f"evently:gate:{{{event_id}}}:idem:{booking_id}"


def _suspect_key(event_id: uuid.UUID | str) -> str:
    return f"evently:gate:{{{event_id}}}:suspect"


def _gave_key(event_id: uuid.UUID | str, once_key: str) -> str:
    return f"evently:gate:{{{event_id}}}:gave:{once_key}"


def _blocks_key(event_id: uuid.UUID | str) -> str:
    return f"evently:gate:{{{event_id}}}:no-block"


def _known_taken_key(event_id: uuid.UUID | str) -> str:
    return f"evently:gate:{{{event_id}}}:taken"


def _freed_key(event_id: uuid.UUID | str) -> str:
    # not under evently:gate:{...}: reset_all must not send an epoch back to a value a take
    # may have read
    return f"evently:seats:{{{event_id}}}:freed"


def _seat_keys(event_id: uuid.UUID | str) -> list[str]:
    return [_freed_key(event_id), _blocks_key(event_id), _known_taken_key(event_id)]


@dataclass(frozen=True)
class Shape:
    """A best-available line of a seated reserve: ``quantity`` seats of a ticket type (None:
    any seat), adjacent in one row when ``together``."""

    type_id: uuid.UUID | None
    quantity: int
    together: bool = True

    @property
    def key(self) -> str:
        return f"{self.type_id or '*'}:{'t' if self.together else 's'}"

    @property
    def refusal(self) -> str:
        """The ``seats`` of its 409 ``seats_taken`` (as evently/inventory/seated.py names it)."""
        return f"{self.quantity} together" if self.together else str(self.quantity)

    def refused_by(self) -> list[str]:
        """The shapes whose refusal of n seats refuses this one too (for n <= quantity): its
        own; n seats of its type at all; n of any seat (together, or at all)."""
        keys = [self.key, f"{self.type_id or '*'}:s", "*:s"]
        if self.together:
            keys.append("*:t")
        return list(dict.fromkeys(keys))


@dataclass(frozen=True)
class Taken:
    """A take's answer: the verdict; for a seated OK the freed epoch it read (for
    :meth:`Gate.note_seats`); for SEATS_TAKEN the 409's ``seats``."""

    verdict: Verdict
    epoch: str | None = None
    refused: tuple[str, ...] = ()


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
    :meth:`give_back_from_waitlist`; the counter is forgotten by :meth:`reset` (one event, with
    its seated notes), :meth:`forget_counter` (one event, notes kept), :meth:`suspect` (a fault)
    or :meth:`reset_all` (an API process starting)."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._take = redis.register_script(_GATE_TAKE)
        self._give = redis.register_script(_GATE_GIVE)
        self._freed = redis.register_script(_SEATS_FREED)
        self._note = redis.register_script(_NOTE)

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
        taken = await self.admit(event_id, quantity, booking_id, idempotent, doubtful=doubtful)
        return None if taken is None else taken.verdict

    async def admit(
        self,
        event_id: uuid.UUID,
        quantity: int,
        booking_id: uuid.UUID,
        idempotent: bool,
        *,
        doubtful: bool = False,
        seated: bool = False,
        shapes: list[Shape] | None = None,
        seat_ids: list[str] | None = None,
    ) -> Taken | None:
        """:meth:`take`, and for a ``seated`` request: SEATS_TAKEN when a best-available line
        (``shapes``) is known refused, or an asked seat (``seat_ids``) known taken (the 409's
        ``seats``: those of them, in seat-id order); an OK carries the freed epoch read."""
        idem = _idem_key(event_id, booking_id) if idempotent else ""
        checks: list[str | int] = []
        for shape in shapes or []:
            for key in shape.refused_by():
                checks += [key, shape.quantity, shape.refusal]
        try:
            got = await self._take(
                keys=[
                    gate_key(event_id),
                    idem,
                    _suspect_key(event_id),
                    _blocks_key(event_id),
                    _freed_key(event_id),
                    _known_taken_key(event_id),
                ],
                args=[
                    quantity,
                    GATE_MARK_TTL,
                    "1" if doubtful else "0",
                    SUSPECT_TTL,
                    "1" if seated else "0",
                    len(checks) // 3,
                    *checks,
                    *sorted(set(seat_ids or [])),
                ],
            )
        except RedisError as exc:
            log.warning("sold-out gate unavailable, going straight to Postgres: %s", exc)
            return None
        code = int(got[0])
        verdict = _VERDICTS.get(code, Verdict.OK)
        if verdict == Verdict.SEATS_TAKEN:
            return Taken(verdict, refused=tuple(_text(x) for x in got[1:]))
        return Taken(verdict, epoch=_text(got[1]) if len(got) > 1 else None)

    async def refused(
        self,
        event_id: uuid.UUID,
        quantity: int,
        shapes: list[Shape] | None = None,
        seat_ids: list[str] | None = None,
    ) -> Taken | None:
        """Read-only look (no seat taken), one round trip: SOLD_OUT as :meth:`sold_out`, else
        SEATS_TAKEN when a best-available line (``shapes``) is known refused or an asked seat
        (``seat_ids``) known taken; None: go on."""
        return await self._looked(event_id, quantity, shapes, seat_ids)

    async def noted_refused(
        self,
        event_id: uuid.UUID,
        shapes: list[Shape] | None = None,
        seat_ids: list[str] | None = None,
    ) -> Taken | None:
        """The seated notes alone (no counter): SEATS_TAKEN as :meth:`refused` answers it, for
        a request that already holds its gate seats and waited for the reserves in flight
        before it (docs/seating.md "Waiting for the reserves in flight"); None: go on."""
        return await self._looked(event_id, None, shapes, seat_ids)

    async def _looked(
        self,
        event_id: uuid.UUID,
        quantity: int | None,
        shapes: list[Shape] | None,
        seat_ids: list[str] | None,
    ) -> Taken | None:
        """One pipelined read: the counter and suspect mark (unless ``quantity`` is None), the
        refused blocks of ``shapes`` and which of ``seat_ids`` are known taken."""
        checks = [(key, shape) for shape in shapes or [] for key in shape.refused_by()]
        ids = sorted(set(seat_ids or []))
        if quantity is None and not checks and not ids:
            return None
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                if quantity is not None:
                    pipe.mget(gate_key(event_id), _suspect_key(event_id))
                if checks:
                    pipe.hmget(_blocks_key(event_id), [key for key, _ in checks])
                if ids:
                    pipe.smismember(_known_taken_key(event_id), ids)
                found = await pipe.execute()
        except RedisError:
            return None
        if quantity is not None:
            value, suspect = found.pop(0)
            try:
                free = None if value is None else int(value)
            except ValueError:  # "closed": the endpoint answers why
                return None
            if free is None:  # missing: the endpoint loads it (the take answers as a take does)
                return None
            if suspect is None and free < quantity:
                return Taken(Verdict.SOLD_OUT)
        for (_, shape), m in zip(checks, found[0] if checks else [], strict=True):
            if m is not None and int(m) <= shape.quantity:
                return Taken(Verdict.SEATS_TAKEN, refused=(shape.refusal,))
        if ids:
            known = tuple(x for x, hit in zip(ids, found[-1], strict=True) if hit)
            if known:
                return Taken(Verdict.SEATS_TAKEN, refused=known)
        return None

    async def note_seats(
        self,
        event_id: uuid.UUID,
        epoch: str,
        *,
        no_block: Shape | None = None,
        taken: list[str] | None = None,
    ) -> bool:
        """What a seated reserve learnt of the committed seats, kept for the takes that follow
        (:meth:`admit`): ``no_block`` (its best-available line found no block), ``taken``
        (seats held or found not free). Written only while the freed epoch is still ``epoch``,
        the one its take read before the reserve ran: a seat freed since drops it (False)."""
        if no_block is None and not taken:
            return False
        try:
            done = await self._note(
                keys=_seat_keys(event_id),
                args=[
                    epoch,
                    NOTES_TTL,
                    no_block.key if no_block else "",
                    no_block.quantity if no_block else 0,
                    *(taken or []),
                ],
            )
        except RedisError as exc:
            log.warning("could not note the seats of a seated reserve: %s", exc)
            return False
        return bool(done)

    async def seats_freed(self, event_id: uuid.UUID) -> None:
        """Seats of the event were freed (committed): what was known refused is not any more.
        Called after every such commit (the give-backs below, :meth:`reset`, seats kept for the
        waitlist); if it is lost, the notes still expire (NOTES_TTL)."""
        try:
            await self._freed(keys=_seat_keys(event_id), args=[GATE_MARK_TTL])
        except RedisError as exc:
            log.warning("could not drop the seated refusal notes: %s", exc)

    async def load(self, event_id: uuid.UUID, available: int | None) -> None:
        """Seed a missing gate from Postgres (NX: never overwrite a live counter)."""
        try:
            value = "closed" if available is None else str(available)
            await self.redis.set(
                gate_key(event_id), value, nx=True, ex=GATE_TTL if available is not None else 5
            )
        except RedisError as exc:
            log.warning("could not seed the sold-out gate: %s", exc)

    async def mark_started(self, event_id: uuid.UUID, booking_id: uuid.UUID) -> None:
        """An idempotent request goes on to start its booking's workflow without having taken
        gate seats (the counter missing twice, Redis erring, a racing rebuild): mark it as the
        take does, so its retries are answered by the workflow (RETRY), never refused from the
        counter or the seated notes while the booking may hold seats."""
        try:
            await self.redis.set(_idem_key(event_id, booking_id), "1", ex=GATE_MARK_TTL)
        except RedisError as exc:
            log.warning("could not mark the booking's request: %s", exc)

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
        await self._give_back(event_id, quantity, _released(booking_id), freed=True)

    async def give_back_cancelled_lines(
        self, event_id: uuid.UUID, quantity: int, booking_id: uuid.UUID, change_no: int
    ) -> None:
        """Seats of a partial cancellation (change ``change_no`` of a booking) back on sale."""
        await self._give_back(
            event_id, quantity, _lines_cancelled(booking_id, change_no), freed=True
        )

    async def give_back_from_waitlist(
        self, event_id: uuid.UUID, quantity: int, version: int | None
    ) -> None:
        """Seats the waitlist's pool returned to public sale, once per returning change
        (``version``: the event's counters version, unique to that commit)."""
        await self._give_back(event_id, quantity, _waitlist_return(version), freed=True)

    async def _give_back(
        self, event_id: uuid.UUID, quantity: int, once_key: str, *, freed: bool = False
    ) -> None:
        """Return seats to the gate exactly once per ``once_key``; ``freed``: they were taken
        (committed) and are free again, so the seated refusal notes go (every time)."""
        if freed:
            await self.seats_freed(event_id)
        try:
            await self._give(
                keys=[gate_key(event_id), _gave_key(event_id, once_key)],
                args=[quantity, GATE_MARK_TTL],
            )
        except RedisError as exc:
            # the counter stays low until it expires (GATE_TTL) and is rebuilt from Postgres
            log.warning("could not give seats back to the gate: %s", exc)

    async def reset(self, event_id: uuid.UUID) -> None:
        """Forget the counter (after publish, capacity change, cancel, seats blocked or freed)
        and the seated refusal notes: rebuilt on next use."""
        await self.seats_freed(event_id)
        await self.forget_counter(event_id)

    async def forget_counter(self, event_id: uuid.UUID) -> None:
        """Forget the counter only, keeping the seated notes: for a counter found to disagree
        with Postgres while no seat was freed (the reserve path's UNSURE rebuild). Dropping
        the notes there, near every sell-out, sent every later request by seat id to a
        workflow to be refused (about 45 per flash sale; docs/seating.md)."""
        try:
            await self.redis.delete(gate_key(event_id))
        except RedisError as exc:
            log.warning("could not reset the sold-out gate: %s", exc)

    async def sold_out(self, event_id: uuid.UUID, quantity: int) -> bool:
        """Read-only look (no seat taken): True only when the counter is there, below
        ``quantity``, and the gate is not suspect. Seats in it are taken only by admitted
        requests, which hold them or give them back."""
        found = await self.refused(event_id, quantity)
        return found is not None and found.verdict == Verdict.SOLD_OUT

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
