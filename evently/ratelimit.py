"""A generic fixed-window rate limiter in Redis: one round trip per hit, fails open.

Usage (any feature)::

    limiter = RateLimiter(redis)
    retry_after = await limiter.hit(f"login:ip:{ip}", limit=10, window_seconds=60)
    if retry_after is not None:
        raise TooManyRequests("Too many login attempts.", retry_after=retry_after)

or ``await limiter.enforce(key, limit, window_seconds, detail=...)`` which raises
:class:`~evently.errors.TooManyRequests` (429 with ``Retry-After``) itself.

Each hit runs one small Lua script (Redis 6.2 commands only: INCR, PEXPIRE, PTTL), so the
counter and its expiry are set atomically and the caller learns the remaining window in the
same round trip. Redis is an accelerator, never a gate: when it is unreachable the limiter
logs a warning and lets the request through ("fails open"), and after a failure it skips Redis
for ``cooldown_seconds`` so a dead Redis costs one timeout per cooldown, not one per request.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time

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

    async def hit(self, key: str, limit: int, window_seconds: int) -> int | None:
        """Count one hit on ``key``. Over the limit: seconds until the window ends; else None."""
        if limit < 1 or window_seconds < 1:
            raise ValueError("limit and window_seconds must be positive")
        if time.monotonic() < self._skip_until:
            return None
        try:
            count, ttl_ms = await self._script(
                keys=[KEY_PREFIX + key], args=[window_seconds * 1000]
            )
        except (RedisError, OSError) as exc:
            self._skip_until = time.monotonic() + self._cooldown
            log.warning("rate limiter unavailable, failing open for %ss: %r", self._cooldown, exc)
            return None
        self._skip_until = 0.0
        if int(count) <= limit:
            return None
        # scope = the key's first two parts ("login:ip", "login:email", ...): bounded labels
        metrics.RATE_LIMITED.labels(scope=":".join(key.split(":", 2)[:2])).inc()
        return max(1, math.ceil(int(ttl_ms) / 1000))

    async def enforce(
        self, key: str, limit: int, window_seconds: int, *, detail: str = "Too many requests."
    ) -> None:
        """Like :meth:`hit`, but raise 429 (``TooManyRequests`` with ``Retry-After``) when over."""
        retry_after = await self.hit(key, limit, window_seconds)
        if retry_after is not None:
            raise TooManyRequests(f"{detail} Retry in {retry_after} s.", retry_after=retry_after)
