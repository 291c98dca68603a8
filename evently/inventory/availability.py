"""The availability cache: a write-through Redis snapshot of each event's seat counters.

Postgres is the only authority. Whoever commits a seat change (the inventory activities, the
admin capacity/status changes, the waitlist) writes the new counters here right after the
commit; readers (``GET /events/{id}/availability``, polled by thousands of buyers in a rush)
read Redis first and fall back to Postgres on a miss or when Redis is down, repopulating the
cache. A short TTL bounds the damage of any write that was lost.

Snapshots carry an optional ``version``: ``events.updated_at`` in microseconds, bumped
strictly monotonically by every seat statement (:data:`evently.inventory.seats.BUMP`). A versioned
write never replaces a newer version (writes that commit in one order but reach Redis in the
other cannot leave an older count behind). Unversioned writes (``version=None``) always
apply and keep the stored version.

``waitlist_length`` is kept in the snapshot; a write that does not know it (``None``, e.g.
counters returned by an inventory UPDATE) keeps the cached value. A snapshot without one is
treated as a miss, so a reader never sees a made-up waitlist length.

Lookups are counted in ``evently_availability_cache_total{result="hit|miss|error"}``.
"""

from __future__ import annotations

import logging
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from weakref import WeakKeyDictionary

from pydantic import BaseModel, TypeAdapter
from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from evently.infra import metrics
from evently.inventory.types import Counters

log = logging.getLogger("evently.inventory.availability")

TTL_SECONDS = 60  # safety net on top of write-through
KEY_PREFIX = "evently:availability:"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# KEYS[1] snapshot hash. ARGV: version ('' = unversioned), ttl, capacity, available, held,
# sold, status, waitlist_length ('' = keep the cached one).
_STORE = """
local cur = redis.call('HGET', KEYS[1], 'v')
if ARGV[1] ~= '' and cur and tonumber(cur) > tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'capacity', ARGV[3], 'available', ARGV[4], 'held', ARGV[5],
           'sold', ARGV[6], 'status', ARGV[7])
if ARGV[1] ~= '' then redis.call('HSET', KEYS[1], 'v', ARGV[1]) end
if ARGV[8] ~= '' then redis.call('HSET', KEYS[1], 'waitlist_length', ARGV[8]) end
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
"""

_FIELDS = ("capacity", "available", "held", "sold", "status", "waitlist_length")

_SNAPSHOT_SQL = text(
    """
SELECT e.id AS event_id, e.capacity, e.available, e.held, e.sold, e.status, e.updated_at,
       (SELECT count(*) FROM waitlist_entries w
         WHERE w.event_id = e.id AND w.status IN ('waiting', 'offered')) AS waitlist_length
FROM events e WHERE e.id = :event_id
"""
)


class Availability(BaseModel):
    event_id: uuid.UUID
    capacity: int
    available: int
    held: int
    sold: int
    waitlist_length: int | None = None
    status: str
    version: int | None = None


def cache_key(event_id: uuid.UUID | str) -> str:
    return f"{KEY_PREFIX}{event_id}"


def version_of(updated_at: datetime | None) -> int | None:
    """``events.updated_at`` as integer microseconds (exact, no float rounding)."""
    if updated_at is None:
        return None
    return (updated_at - _EPOCH) // timedelta(microseconds=1)


def from_row(row: Any) -> Availability:
    """A snapshot from a row with event_id, capacity, available, held, sold, status and
    optionally updated_at and waitlist_length."""
    mapping = row._mapping if hasattr(row, "_mapping") else row
    return Availability(
        event_id=mapping["event_id"],
        capacity=mapping["capacity"],
        available=mapping["available"],
        held=mapping["held"],
        sold=mapping["sold"],
        status=mapping["status"],
        waitlist_length=mapping.get("waitlist_length"),
        version=version_of(mapping.get("updated_at")),
    )


_scripts: WeakKeyDictionary[Redis, AsyncScript] = WeakKeyDictionary()


def _script(redis: Redis) -> AsyncScript:
    """The store script bound to this client (EVALSHA, loaded on first use)."""
    script = _scripts.get(redis)
    if script is None:
        script = _scripts[redis] = redis.register_script(_STORE)
    return script


_last_warning = 0.0


def _warn(msg: str, exc: BaseException) -> None:
    """Log Redis trouble at most every 10 s: an outage must not flood the logs."""
    global _last_warning
    now = time.monotonic()
    if now - _last_warning >= 10:
        _last_warning = now
        log.warning("%s: %r", msg, exc)


def _count(result: str) -> None:
    metrics.AVAILABILITY_CACHE.labels(result=result).inc()


async def store(redis: Redis, snapshot: Availability) -> None:
    """Write a snapshot through to Redis. Never raises: with Redis down it logs and returns."""
    args: list[str | int] = [
        "" if snapshot.version is None else snapshot.version,
        TTL_SECONDS,
        snapshot.capacity,
        snapshot.available,
        snapshot.held,
        snapshot.sold,
        snapshot.status,
        "" if snapshot.waitlist_length is None else snapshot.waitlist_length,
    ]
    try:
        await _script(redis)(keys=[cache_key(snapshot.event_id)], args=args)
    except (RedisError, OSError) as exc:
        _warn("availability cache write failed (readers fall back to Postgres)", exc)


async def store_counters(redis: Redis, counters: Counters) -> None:
    """Write-through after a seat change: the counters its UPDATE ... RETURNING gave (the
    cached waitlist length is kept), versioned by their ``updated_at``."""
    await store(
        redis,
        Availability(
            event_id=counters.event_id,
            capacity=counters.capacity,
            available=counters.available,
            held=counters.held,
            sold=counters.sold,
            status=counters.status,
            version=version_of(counters.updated_at),
        ),
    )


async def invalidate(redis: Redis, event_id: uuid.UUID) -> None:
    try:
        await redis.delete(cache_key(event_id))
    except (RedisError, OSError) as exc:
        _warn("availability cache invalidation failed", exc)


_READ = [*_FIELDS, "v"]  # the version too (absent when only unversioned writes happened)


async def _from_redis(redis: Redis, event_id: uuid.UUID) -> Availability | None:
    *values, version = await redis.hmget(cache_key(event_id), _READ)
    if any(v is None for v in values):
        return None
    return Availability.model_validate(
        {"event_id": event_id, **dict(zip(_FIELDS, values, strict=True)), "version": version}
    )


async def load(db: AsyncSession | AsyncConnection, event_id: uuid.UUID) -> Availability | None:
    """The snapshot straight from Postgres (None for an unknown event)."""
    row = (await db.execute(_SNAPSHOT_SQL, {"event_id": event_id})).first()
    return None if row is None else from_row(row)


async def refresh(
    redis: Redis, db: AsyncSession | AsyncConnection, event_id: uuid.UUID
) -> Availability | None:
    """Recompute the snapshot from Postgres (waitlist length included) and store it.
    Call after a committed change the caller has no counters for (waitlist join/leave)."""
    snapshot = await load(db, event_id)
    if snapshot is not None:
        await store(redis, snapshot)
    return snapshot


async def read(
    redis: Redis, db: AsyncSession | AsyncConnection, event_id: uuid.UUID
) -> Availability | None:
    """Redis first; on a miss or a Redis error, Postgres (and repopulate). None: no event."""
    try:
        cached = await _from_redis(redis, event_id)
    except (RedisError, OSError) as exc:
        _count("error")
        _warn("availability cache read failed, answering from Postgres", exc)
        return await load(db, event_id)
    if cached is not None:
        _count("hit")
        return cached
    _count("miss")
    return await refresh(redis, db, event_id)


# ---- per ticket type (issue 15) ---------------------------------------------------------------


class TypeAvailability(BaseModel):
    """A visible ticket type's live availability: its own cap's room, never more than the
    event's seats on sale (the shared quota)."""

    id: uuid.UUID
    name: str
    description: str
    price: str  # decimal string
    currency: str
    available: int
    sales_start: datetime | None
    sales_end: datetime | None
    max_per_booking: int | None
    is_default: bool

    def on_sale(self, now: datetime | None = None) -> bool:
        """Within its sales window now (computed at read time, never cached)."""
        at = now or datetime.now(UTC)
        return (self.sales_start is None or self.sales_start <= at) and (
            self.sales_end is None or at < self.sales_end
        )


_TYPES_SQL = text(
    """
SELECT t.id, t.name, t.description, CAST(t.price AS text) AS price, t.currency,
       CASE WHEN t.capacity IS NULL THEN e.available
            ELSE GREATEST(0, LEAST(e.available, t.capacity - t.held - t.sold)) END AS available,
       t.sales_start, t.sales_end, t.max_per_booking, t.is_default
FROM ticket_types t JOIN events e ON e.id = t.event_id
WHERE t.event_id = :event_id AND NOT t.hidden
ORDER BY t.position, t.created_at, t.id
"""
)
_TypeList = list[TypeAvailability]
_TYPES = TypeAdapter(_TypeList)


def _types_key(event_id: uuid.UUID, version: int) -> str:
    return f"{KEY_PREFIX}{event_id}:types:{version}"


async def load_types(db: AsyncSession | AsyncConnection, event_id: uuid.UUID) -> _TypeList:
    rows = await db.execute(_TYPES_SQL, {"event_id": event_id})
    return [TypeAvailability.model_validate(dict(r._mapping)) for r in rows]


async def read_types(
    redis: Redis, db: AsyncSession | AsyncConnection, event_id: uuid.UUID, version: int | None
) -> _TypeList:
    """The visible types of the event at this snapshot ``version`` (every seat change and every
    type change bumps it, so a cached list is never older than the counters it goes with)."""
    if version is None:
        return await load_types(db, event_id)
    key = _types_key(event_id, version)
    try:
        cached = await redis.get(key)
    except (RedisError, OSError) as exc:
        _warn("ticket types cache read failed, answering from Postgres", exc)
        return await load_types(db, event_id)
    if cached is not None:
        return _TYPES.validate_json(cached)
    found = await load_types(db, event_id)
    try:
        await redis.set(key, _TYPES.dump_json(found), ex=TTL_SECONDS)
    except (RedisError, OSError) as exc:
        _warn("could not cache the ticket types", exc)
    return found


async def seats_on_sale(engine: AsyncEngine, event_id: uuid.UUID) -> Any | None:
    """The event's ``available`` and ``status`` straight from Postgres (the authority, for a
    missing or suspect sold-out gate), None for an unknown event."""
    async with engine.connect() as conn:
        return (
            await conn.execute(
                text("SELECT available, status FROM events WHERE id = :id"), {"id": event_id}
            )
        ).first()
