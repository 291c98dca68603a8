"""A generic fixed-window rate limiter in Redis: one round trip per hit, fails open.

Usage (any feature)::

    limiter = RateLimiter(redis)
    hit = await limiter.hit(f"login:ip:{ip}", limit=10, window_seconds=60)
    if hit.exceeded:
        raise TooManyRequests("Too many login attempts.", retry_after=hit.reset_seconds)

or ``await limiter.enforce(key, limit, window_seconds, detail=...)`` which raises
:class:`~evently.errors.TooManyRequests` (429 with ``Retry-After``) itself.

Each hit runs one small Lua script (Redis 6.2 commands only: INCR, PEXPIRE, PTTL), so the
counter and its expiry are set atomically and the caller learns the count and the remaining
window in the same round trip: the :class:`Hit` carries everything the HTTP ``RateLimit`` /
``RateLimit-Policy`` fields need (policy, quota, window, remaining, reset). Redis is an
accelerator, never a gate: when it is unreachable the limiter logs a warning and lets the
request through ("fails open", ``Hit.counted`` is False), and after a failure it skips Redis
for ``cooldown_seconds`` so a dead Redis costs one timeout per cooldown, not one per request.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError

from evently.errors import TooManyRequests
from evently.infra import metrics

log = logging.getLogger("evently.ratelimit")

KEY_PREFIX = "rl:"

# KEYS[1] counter, ARGV[1] window in ms -> {count, ms left in the window}
_HIT_SCRIPT = """
local n = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if n == 1 or ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {n, ttl}
"""


@dataclass(frozen=True, slots=True)
class Hit:
    """One request counted against a policy: what the limiter decided and what it knows."""

    policy: str  # the key's first two parts ("login:ip"): a name without personal data
    limit: int  # the quota: requests per window
    window_seconds: int
    remaining: int  # requests left in this window after this one (0 when over)
    reset_seconds: int  # until the window ends (>= 1)
    exceeded: bool
    counted: bool = True  # False: Redis was unavailable, the request was let through

    @property
    def retry_after(self) -> int | None:
        """Seconds to wait when over the limit, else None."""
        return self.reset_seconds if self.exceeded else None


def policy_of(key: str) -> str:
    """``login:ip:10.0.0.1`` → ``login:ip``: bounded, safe to show and to use as a label."""
    return ":".join(key.split(":", 2)[:2])


def hashed(value: str) -> str:
    """A short stable digest for keys built from personal data (emails stay out of Redis)."""
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:32]


class RateLimiter:
    """Fixed-window counters: at most ``limit`` hits per ``window_seconds`` per key."""

    def __init__(self, redis: Redis, *, cooldown_seconds: float = 5.0) -> None:
        self._redis = redis
        self._script = redis.register_script(_HIT_SCRIPT)
        self._cooldown = cooldown_seconds
        self._skip_until = 0.0

    @property
    def redis(self) -> Redis:
        return self._redis

    async def hit(self, key: str, limit: int, window_seconds: int) -> Hit:
        """Count one hit on ``key`` (one Redis round trip) and say where it stands."""
        if limit < 1 or window_seconds < 1:
            raise ValueError("limit and window_seconds must be positive")
        policy = policy_of(key)
        if time.monotonic() < self._skip_until:
            return _uncounted(policy, limit, window_seconds)
        try:
            count, ttl_ms = await self._script(
                keys=[KEY_PREFIX + key], args=[window_seconds * 1000]
            )
        except (RedisError, OSError) as exc:
            self._skip_until = time.monotonic() + self._cooldown
            log.warning("rate limiter unavailable, failing open for %ss: %r", self._cooldown, exc)
            return _uncounted(policy, limit, window_seconds)
        self._skip_until = 0.0
        count = int(count)
        exceeded = count > limit
        if exceeded:
            metrics.RATE_LIMITED.labels(scope=policy).inc()
        return Hit(
            policy=policy,
            limit=limit,
            window_seconds=window_seconds,
            remaining=max(0, limit - count),
            reset_seconds=max(1, math.ceil(int(ttl_ms) / 1000)),
            exceeded=exceeded,
        )

    async def enforce(
        self, key: str, limit: int, window_seconds: int, *, detail: str = "Too many requests."
    ) -> Hit:
        """Like :meth:`hit`, but raise 429 (``TooManyRequests`` with ``Retry-After``) when over."""
        return check(await self.hit(key, limit, window_seconds), detail=detail)


def check(hit: Hit, *, detail: str = "Too many requests.") -> Hit:
    """The hit, or 429 ``rate_limited`` (``Retry-After``: until its window ends) when over."""
    if hit.exceeded:
        raise TooManyRequests(
            f"{detail} Retry in {hit.reset_seconds} s.", retry_after=hit.reset_seconds
        )
    return hit


def _uncounted(policy: str, limit: int, window_seconds: int) -> Hit:
    return Hit(policy, limit, window_seconds, limit, window_seconds, False, counted=False)
