"""The waiting room of an on-sale: a first-come-first-served line in Redis (with its durable copy
in Postgres, ``queue_entries``), admitted in order by the admission workflow
(workflows/admission/), and the signed tokens that let an admitted buyer reserve.

The line, per event ``e`` (Redis keys ``wr:<e>:*``):

- ``seq``: the last place handed out (``INCR``); ``line``: buyer → place (one per buyer: joining
  again answers the same place); ``joined``: the buyers in join order (one Lua script does the
  three). A join is answered from Redis alone (no Postgres write on the rush's hottest
  request); the admission tick copies new places to ``queue_entries`` in one statement each
  tick, before it admits anyone, so every admitted place is in Postgres;
- ``admitted``: every place ``<= admitted`` is admitted — one counter, advanced only by the
  admission workflow's tick (or, in ``auto`` while nothing is saturated and nobody waits, by the
  join itself), so admission is in join order by construction;
- ``batches``: when each admission happened (score: the place admitted through), which fixes
  every admission token's expiry;
- ``mode`` (``on``/``off``/``auto``, mirrored from Postgres), ``saturated`` (set for
  ``EVENTLY_QUEUE_SATURATION_SECONDS`` whenever the reserve path sheds or nears its in-flight
  cap for this event), ``soldout``, ``rate`` (admissions/s, for the wait estimate), ``shed``
  (reserves shed for this event: the admission rate's brake) and ``used`` (admitted places
  that reserved, by place: the demand signal).

A reserve needs an admission token while the queue is *required*: mode ``on``, or ``auto``
while ``saturated`` exists. The check reads a per-process cache of those two keys refreshed
at most every ``REQUIRED_CACHE_SECONDS`` — no database read, no Redis round trip per request.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import hmac
import time
import uuid
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from evently.enums import QueueMode

REQUIRED_CACHE_SECONDS = 0.5
# an admitted buyer's reserve answered slower than this is "slow": the admission rate's brake
# (the on-sale's answers should stay under 250 ms at p99)
SLOW_RESERVE_SECONDS = 0.25


def _k(event_id: uuid.UUID, name: str) -> str:
    return f"wr:{event_id}:{name}"


# The line's state as one reply: {last place, admitted through, sold out (0/1), rate, the
# batch that admitted ``place`` ("through:ms", false while not admitted)}. KEYS from 1: seq,
# admitted, soldout, rate, batches; ARGV[1]: the place (0: none).
_STATE = """
local function state(k, place)
  local got = redis.call('MGET', k[1], k[2], k[3], k[4])
  local batch = false
  if place > 0 then
    local found = redis.call('ZRANGEBYSCORE', k[5], place, '+inf', 'LIMIT', 0, 1)
    if found[1] then batch = found[1] end
  end
  return {tonumber(got[1] or '0'), tonumber(got[2] or '0'), got[3] and 1 or 0, got[4] or '0',
          batch}
end
"""

# KEYS: seq, admitted, soldout, rate, batches, line, joined, the buyer's lines; ARGV: user,
# immediate ("1": admit at once if nobody waits), now_ms, event. Takes (or finds) the buyer's
# place, remembers the line for the buyer's live stream (a day), and answers
# {place, new (1/0)} .. the line's state: one round trip per join.
_JOIN = (
    _STATE
    + """
local place = redis.call('HGET', KEYS[6], ARGV[1])
local new = 0
if not place then
  place = redis.call('INCR', KEYS[1])
  redis.call('HSET', KEYS[6], ARGV[1], place)
  redis.call('RPUSH', KEYS[7], ARGV[1])
  redis.call('SADD', KEYS[8], ARGV[4])
  redis.call('EXPIRE', KEYS[8], 86400)
  new = 1
end
place = tonumber(place)
local admitted = tonumber(redis.call('GET', KEYS[2]) or '0')
if new == 1 and ARGV[2] == '1' and admitted == place - 1 then
  redis.call('SET', KEYS[2], place)
  redis.call('ZADD', KEYS[5], place, place .. ':' .. ARGV[3])
end
local s = state(KEYS, place)
return {place, new, s[1], s[2], s[3], s[4], s[5]}
"""
)

# KEYS: seq, admitted, soldout, rate, batches; ARGV: the place (0: none). The line's state.
_LINE = _STATE + "\nreturn state(KEYS, tonumber(ARGV[1]))\n"

# KEYS: seq, admitted, batches; ARGV: n, now_ms, upto. Admits up to n more places, never past
# the last one handed out nor past ``upto`` (the places Postgres has). Returns {before, after}.
_ADMIT = """
local last = math.min(tonumber(redis.call('GET', KEYS[1]) or '0'), tonumber(ARGV[3]))
local before = tonumber(redis.call('GET', KEYS[2]) or '0')
local after = math.min(last, before + tonumber(ARGV[1]))
if after > before then
  redis.call('SET', KEYS[2], after)
  redis.call('ZADD', KEYS[3], after, after .. ':' .. ARGV[2])
end
return {before, after}
"""


@dataclass(frozen=True)
class Line:
    """One read of an event's line: enough to answer any buyer's status."""

    last_place: int
    admitted_through: int
    sold_out: bool
    rate: float
    admitted_at_ms: int | None  # when the asked place was admitted (None: not yet)

    def position(self, place: int) -> int:
        """1 = next to be admitted; 0 = admitted."""
        return max(0, place - self.admitted_through)

    @property
    def waiting(self) -> int:
        return max(0, self.last_place - self.admitted_through)


@dataclass(frozen=True)
class Signals:
    """The reserve path's measurements for an event, as counters since the on-sale began."""

    shed: int  # reserves that met the in-flight cap (shed, or waited for a slot)
    used_live: int  # admitted places after the asked one that reserved
    done: int  # admitted buyers' reserves answered
    slow: int  # ... of which slower than SLOW_RESERVE_SECONDS


@dataclass(frozen=True)
class Place:
    place: int
    new: bool
    line: Line


_STATE_KEYS = ("seq", "admitted", "soldout", "rate", "batches")


def _line(found: list[object]) -> Line:
    """A Line from the scripts' state reply."""
    last, through, sold_out, rate, batch = found[:5]
    admitted_at = int(str(batch).split(":")[1]) if batch else None
    return Line(
        last_place=int(str(last)),
        admitted_through=int(str(through)),
        sold_out=bool(int(str(sold_out))),
        rate=float(str(rate)),
        admitted_at_ms=admitted_at,
    )


class WaitingRoom:
    """Redis side of the line. Raises RedisError when Redis is down (the line cannot be
    served without it: the API answers 503)."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._join = redis.register_script(_JOIN)
        self._line = redis.register_script(_LINE)
        self._admit = redis.register_script(_ADMIT)
        self._required: dict[uuid.UUID, tuple[float, bool]] = {}
        self._saturated_noted: dict[uuid.UUID, float] = {}
        self._sheds: dict[uuid.UUID, int] = {}

    async def join(self, event_id: uuid.UUID, user_id: uuid.UUID, *, immediate: bool) -> Place:
        """The buyer's place (taken now, or the one they have) and the line's state, in one
        script; a new place is also remembered for the buyer's live stream (a day)."""
        keys = [_k(event_id, n) for n in _STATE_KEYS] + [
            _k(event_id, "line"),
            _k(event_id, "joined"),
            f"wr:user:{user_id}",
        ]
        now_ms = int(time.time() * 1000)
        found = await self._join(
            keys=keys, args=[str(user_id), "1" if immediate else "0", now_ms, str(event_id)]
        )
        return Place(int(found[0]), bool(found[1]), _line(found[2:]))

    async def lines_of(self, user_id: uuid.UUID) -> list[tuple[uuid.UUID, int]]:
        """(event, place) of every line the buyer joined lately."""
        found = await self.redis.smembers(f"wr:user:{user_id}")
        events = sorted(str(e) for e in found)[:20]
        if not events:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for event in events:
                pipe.hget(f"wr:{event}:line", str(user_id))
            places = await pipe.execute()
        return [(uuid.UUID(str(e)), int(p)) for e, p in zip(events, places, strict=True) if p]

    async def place_of(self, event_id: uuid.UUID, user_id: uuid.UUID) -> int | None:
        found = await self.redis.hget(_k(event_id, "line"), str(user_id))
        return int(found) if found else None

    async def line(self, event_id: uuid.UUID, place: int | None = None) -> Line:
        """The line's state (and when ``place`` was admitted): one script, one round trip."""
        found = await self._line(keys=[_k(event_id, n) for n in _STATE_KEYS], args=[place or 0])
        return _line(found)

    async def admit(self, event_id: uuid.UUID, n: int, upto: int) -> tuple[int, int, int]:
        """Admit up to ``n`` more places, none past ``upto``: (admitted through before, after,
        the admission's time in unix ms)."""
        keys = [_k(event_id, n_) for n_ in ("seq", "admitted", "batches")]
        now_ms = int(time.time() * 1000)
        before, after = await self._admit(keys=keys, args=[n, now_ms, upto])
        return int(before), int(after), now_ms

    async def signals(self, event_id: uuid.UUID, expired_through: int) -> Signals:
        """What the reserve path measured for this event (see Signals)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.get(_k(event_id, "shed"))
            pipe.zcount(_k(event_id, "used"), expired_through + 1, "+inf")
            pipe.get(_k(event_id, "done"))
            pipe.get(_k(event_id, "slow"))
            shed, used, done, slow = await pipe.execute()
        return Signals(int(shed or 0), int(used or 0), int(done or 0), int(slow or 0))

    async def publish_state(
        self, event_id: uuid.UUID, *, mode: str, sold_out: bool, rate: float
    ) -> None:
        """The admission tick mirrors Postgres into the keys the API reads."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.set(_k(event_id, "mode"), mode)
            if sold_out:
                pipe.set(_k(event_id, "soldout"), "1")
            else:
                pipe.delete(_k(event_id, "soldout"))
            pipe.set(_k(event_id, "rate"), f"{rate:.3f}")
            await pipe.execute()

    async def set_mode(self, event_id: uuid.UUID, mode: str) -> None:
        await self.redis.set(_k(event_id, "mode"), mode)
        self._required.pop(event_id, None)

    async def saturated(self, event_id: uuid.UUID) -> bool:
        return bool(await self.redis.exists(_k(event_id, "saturated")))

    async def required(self, event_id: uuid.UUID, saturation_seconds: int) -> bool:
        """Does a reserve for this event need an admission token now? Cached per process for
        ``REQUIRED_CACHE_SECONDS``; False when Redis is down (the line cannot work then)."""
        now = time.monotonic()
        cached = self._required.get(event_id)
        if cached is not None and now - cached[0] < REQUIRED_CACHE_SECONDS:
            return cached[1]
        try:
            mode, saturated = await self.redis.mget(_k(event_id, "mode"), _k(event_id, "saturated"))
        except (RedisError, OSError):
            return False
        required = mode == QueueMode.ON or (mode == QueueMode.AUTO and saturated is not None)
        self._required[event_id] = (now, required)
        return required

    async def note_saturation(self, event_id: uuid.UUID, seconds: int, *, shed: bool) -> None:
        """The reserve path is saturated for this event (it nears its cap; ``shed``: this
        reserve is being shed): an ``auto`` queue turns on, and the admission tick sees the
        sheds. At most one write per 0.2 s per process and event (best effort); sheds in
        between are counted here and added with the next write."""
        if shed:
            self._sheds[event_id] = self._sheds.get(event_id, 0) + 1
        now = time.monotonic()
        if now - self._saturated_noted.get(event_id, 0.0) < 0.2:
            return
        self._saturated_noted[event_id] = now
        sheds = self._sheds.pop(event_id, 0)
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.set(_k(event_id, "saturated"), "1", ex=seconds)
                if sheds:
                    pipe.incrby(_k(event_id, "shed"), sheds)
                await pipe.execute()
        except (RedisError, OSError):
            pass

    async def mark_used(self, event_id: uuid.UUID, place: int, *, slow: bool) -> None:
        """An admitted buyer reserved (``slow``: the answer took over SLOW_RESERVE_SECONDS)."""
        with contextlib.suppress(RedisError, OSError):
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.zadd(_k(event_id, "used"), {str(place): place})
                pipe.incr(_k(event_id, "done"))
                if slow:
                    pipe.incr(_k(event_id, "slow"))
                await pipe.execute()

    async def joined_since(self, event_id: uuid.UUID, count: int, limit: int) -> list[str]:
        """Buyers who joined after the first ``count`` places (in join order), at most
        ``limit``: what the Postgres copy does not have yet."""
        found = await self.redis.lrange(_k(event_id, "joined"), count, count + limit - 1)
        return [str(u) for u in found]

    async def restore(self, event_id: uuid.UUID, entries: list[tuple[uuid.UUID, int]]) -> None:
        """Rebuild a lost Redis line from Postgres (places and admissions are kept there)."""
        if not entries:
            return
        ordered = sorted(entries, key=lambda e: e[1])
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(_k(event_id, "line"), mapping={str(u): p for u, p in ordered})
            pipe.delete(_k(event_id, "joined"))
            pipe.rpush(_k(event_id, "joined"), *[str(u) for u, _ in ordered])
            pipe.set(_k(event_id, "seq"), ordered[-1][1], nx=True)
            await pipe.execute()


# ---- tokens ---------------------------------------------------------------------------------


@functools.lru_cache(maxsize=8)
def _mac(secret: str, purpose: str) -> hmac.HMAC:
    """An HMAC keyed for ``purpose`` (a key derived from the secret), to copy per signature:
    deriving the key and keying the HMAC on every call were ~3% of a waiting-room answer's
    CPU in the join rush (py-spy)."""
    key = hmac.new(secret.encode(), f"evently-{purpose}".encode(), hashlib.sha256).digest()
    return hmac.new(key, digestmod=hashlib.sha256)


def _sign(secret: str, purpose: str, payload: str) -> str:
    mac = _mac(secret, purpose).copy()
    mac.update(payload.encode())
    return base64.urlsafe_b64encode(mac.digest()[:18]).decode().rstrip("=")


@dataclass(frozen=True)
class QueueTicket:
    event_id: uuid.UUID
    user_id: uuid.UUID  # a guest's: the guest session's id (no account)
    place: int
    guest_tag: str | None = None  # a guest's place: bound to this email (guest_tag)


def queue_ticket(secret: str, event_id: uuid.UUID, user_id: uuid.UUID, place: int) -> str:
    """``<place>.<user hex>.<signature>``: names a buyer's place; bound to the event."""
    payload = f"{event_id.hex}.{user_id.hex}.{place}"
    return f"{place}.{user_id.hex}.{_sign(secret, 'queue-ticket', payload)}"


def read_queue_ticket(secret: str, event_id: uuid.UUID, ticket: str) -> QueueTicket | None:
    if ticket.startswith("g"):
        return _read_guest_queue_ticket(secret, event_id, ticket)
    parts = ticket.split(".")
    if len(parts) != 3 or len(ticket) > 200:
        return None
    place_s, user_hex, sig = parts
    try:
        place, user_id = int(place_s), uuid.UUID(hex=user_hex)
    except ValueError:
        return None
    if place < 1 or user_hex != user_id.hex or place_s != str(place):
        return None
    expected = _sign(secret, "queue-ticket", f"{event_id.hex}.{user_id.hex}.{place}")
    if not hmac.compare_digest(expected, sig):
        return None
    return QueueTicket(event_id, user_id, place)


@dataclass(frozen=True)
class Admission:
    event_id: uuid.UUID
    user_id: uuid.UUID
    place: int
    expires_at: int  # unix seconds

    @property
    def idempotency_key(self) -> str:
        """One booking per admission: a retried reserve returns the same booking."""
        return f"admission:{self.event_id}:{self.place}"


# ---- guests (issue 32): a place bound to a guest session and the guest's email ------------------
#
# A guest joins without an account: the place belongs to a new random *guest session* id (the
# line's member, as an account's user id is), and the queue ticket and admission token carry a
# keyed digest of the email (``guest_tag``). Only the joiner holds the ticket (it names the
# session), so knowing someone's email gets no one their place, their admission, nor (through
# the admission's idempotency key) their booking; and the admission is good only for a guest
# reserve with that email.


def guest_tag(secret: str, email: str) -> str:
    """A short keyed digest of a normalized email (the email itself stays out of tokens)."""
    return _sign(secret, "guest-email", email)[:16]


def guest_queue_ticket(
    secret: str, event_id: uuid.UUID, session_id: uuid.UUID, place: int, tag: str
) -> str:
    """``g<place>.<session hex>.<email tag>.<signature>``; bound to the event."""
    payload = f"{event_id.hex}.{session_id.hex}.{place}.{tag}"
    return f"g{place}.{session_id.hex}.{tag}.{_sign(secret, 'guest-queue-ticket', payload)}"


def _read_guest_queue_ticket(secret: str, event_id: uuid.UUID, ticket: str) -> QueueTicket | None:
    parts = ticket[1:].split(".")
    if len(parts) != 4 or len(ticket) > 200:
        return None
    place_s, session_hex, tag, _sig = parts
    try:
        place, session_id = int(place_s), uuid.UUID(hex=session_hex)
    except ValueError:
        return None
    if place < 1 or session_hex != session_id.hex or place_s != str(place):
        return None
    expected = guest_queue_ticket(secret, event_id, session_id, place, tag)
    if not hmac.compare_digest(expected, ticket):
        return None
    return QueueTicket(event_id, session_id, place, tag)


def guest_admission_token(
    secret: str, event_id: uuid.UUID, session_id: uuid.UUID, place: int, expires_at: int, tag: str
) -> str:
    """``g<event hex>.<session hex>.<place>.<expires unix>.<email tag>.<signature>``."""
    payload = f"g{event_id.hex}.{session_id.hex}.{place}.{expires_at}.{tag}"
    return f"{payload}.{_sign(secret, 'guest-admission', payload)}"


def read_guest_admission_token(
    secret: str, token: str, event_id: uuid.UUID, email: str, now: float | None = None
) -> Admission | None:
    """A guest's admission when the token is genuine, for this event and this (normalized)
    email, and not expired; else None. An account's token is none (and a guest's token is
    none for :func:`read_admission_token`)."""
    parts = token.split(".")
    if len(parts) != 6 or len(token) > 300 or parts[0] != f"g{event_id.hex}":
        return None
    if not hmac.compare_digest(parts[4], guest_tag(secret, email)):
        return None
    expected = _sign(secret, "guest-admission", ".".join(parts[:5]))
    if not hmac.compare_digest(expected, parts[5]):
        return None
    try:
        admission = Admission(event_id, uuid.UUID(hex=parts[1]), int(parts[2]), int(parts[3]))
    except ValueError:
        return None
    if admission.expires_at <= (time.time() if now is None else now):
        return None
    return admission


def expiry(admitted_at_ms: int, admission_seconds: int) -> int:
    """An admission token's expiry (unix seconds): fixed by the admission's time, so asking
    again never extends it."""
    return admitted_at_ms // 1000 + admission_seconds


def admission_token(
    secret: str, event_id: uuid.UUID, user_id: uuid.UUID, place: int, expires_at: int
) -> str:
    """``<event hex>.<user hex>.<place>.<expires unix>.<signature>`` (HMAC-SHA256)."""
    payload = f"{event_id.hex}.{user_id.hex}.{place}.{expires_at}"
    return f"{payload}.{_sign(secret, 'admission', payload)}"


def read_admission_token(
    secret: str, token: str, event_id: uuid.UUID, now: float | None = None
) -> Admission | None:
    """The token's admission when it is genuine, for this event and not expired; else None.
    A pure function of the token and the secret: no database, no Redis."""
    parts = token.split(".")
    if len(parts) != 5 or len(token) > 300:
        return None
    event_hex, user_hex, place_s, expires_s, sig = parts
    if event_hex != event_id.hex:
        return None
    expected = _sign(secret, "admission", ".".join(parts[:4]))
    if not hmac.compare_digest(expected, sig):
        return None
    try:
        admission = Admission(event_id, uuid.UUID(hex=user_hex), int(place_s), int(expires_s))
    except ValueError:
        return None
    if admission.expires_at <= (time.time() if now is None else now):
        return None
    return admission


# ---- the durable copy in Postgres ------------------------------------------------------------


async def record_join(
    session: AsyncSession | AsyncConnection, event_id: uuid.UUID, user_id: uuid.UUID, place: int
) -> None:
    await session.execute(
        text(
            "INSERT INTO queue_entries (event_id, user_id, position) VALUES (:e, :u, :p) "
            "ON CONFLICT (event_id, user_id) DO NOTHING"
        ),
        {"e": event_id, "u": user_id, "p": place},
    )


async def persisted(conn: AsyncConnection, event_id: uuid.UUID) -> int:
    """How many places the Postgres copy holds (they are 1..n: copied in join order)."""
    n = await conn.scalar(
        text("SELECT coalesce(max(position), 0) FROM queue_entries WHERE event_id = :e"),
        {"e": event_id},
    )
    return int(n or 0)


async def record_joins(
    conn: AsyncConnection, event_id: uuid.UUID, first_place: int, users: list[str]
) -> None:
    """Copy places ``first_place, first_place + 1, ...`` to Postgres in one statement."""
    if not users:
        return
    await conn.execute(
        text(
            "INSERT INTO queue_entries (event_id, user_id, position) "
            "SELECT :e, u.user_id, u.ord + :first - 1 "
            "FROM unnest(CAST(:users AS uuid[])) WITH ORDINALITY AS u(user_id, ord) "
            "ON CONFLICT (event_id, user_id) DO NOTHING"
        ),
        {"e": event_id, "first": first_place, "users": users},
    )


async def record_admitted(
    conn: AsyncConnection, event_id: uuid.UUID, after: int, through: int
) -> list[tuple[uuid.UUID, int]]:
    """Mark places ``(after, through]`` admitted; their buyers (idempotent)."""
    rows = await conn.execute(
        text(
            "UPDATE queue_entries SET admitted_at = coalesce(admitted_at, now()) "
            "WHERE event_id = :e AND position > :a AND position <= :t "
            "RETURNING user_id, position"
        ),
        {"e": event_id, "a": after, "t": through},
    )
    return [(r.user_id, int(r.position)) for r in rows]


async def entries(conn: AsyncConnection, event_id: uuid.UUID) -> list[tuple[uuid.UUID, int]]:
    rows = await conn.execute(
        text("SELECT user_id, position FROM queue_entries WHERE event_id = :e"), {"e": event_id}
    )
    return [(r.user_id, int(r.position)) for r in rows]


EVENT_CACHE_SECONDS = 1.0
_events: dict[uuid.UUID, tuple[float, Any]] = {}  # event → (when read, its row)


async def on_sale_facts(engine: AsyncEngine, event_id: uuid.UUID) -> Any:
    """The event's ``status``, ``queue`` mode and ``organization_id`` for a join (None for an
    unknown event): read at most once a second per process (20,000 joins in a rush are not
    20,000 Postgres reads)."""
    now = time.monotonic()
    cached = _events.get(event_id)
    if cached is not None and now - cached[0] < EVENT_CACHE_SECONDS:
        return cached[1]
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text("SELECT status, queue, organization_id FROM events WHERE id = :id"),
                {"id": event_id},
            )
        ).first()
    if row is not None:
        _events[event_id] = (now, row)
    return row
