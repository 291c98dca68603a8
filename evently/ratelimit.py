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
``RateLimit-Policy`` fields need (policy, quota, window, remaining, reset). When Redis is
unreachable the limiter does not fail open: it counts in this process instead (the same fixed
windows, in memory: a client spread over N API processes gets up to N times the limit), logs a
warning once per outage, counts each such hit in ``evently_rate_limit_fallback_total``
(``Hit.local`` is True) and says so in :attr:`RateLimiter.degraded` (``/health/ready`` shows
it). After a failure it skips Redis for ``cooldown_seconds`` so a dead Redis costs one timeout
per cooldown, not one per request.
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
    counted: bool = True  # False: not counted anywhere (the request was let through)
    local: bool = False  # True: counted by this process alone (Redis was unavailable)

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
        self._local = LocalWindows()

    @property
    def redis(self) -> Redis:
        return self._redis

    @property
    def degraded(self) -> bool:
        """True while hits are counted per process (Redis failed within the cooldown)."""
        return time.monotonic() < self._skip_until

    async def hit(self, key: str, limit: int, window_seconds: int) -> Hit:
        """Count one hit on ``key`` (one Redis round trip) and say where it stands."""
        if limit < 1 or window_seconds < 1:
            raise ValueError("limit and window_seconds must be positive")
        policy = policy_of(key)
        if self.degraded:
            return self._hit_locally(key, policy, limit, window_seconds)
        try:
            count, ttl_ms = await self._script(
                keys=[KEY_PREFIX + key], args=[window_seconds * 1000]
            )
        except (RedisError, OSError) as exc:
            if self._skip_until == 0.0:  # once per outage, not once per cooldown
                log.warning(
                    "rate limiter: Redis unavailable, counting per process (retrying Redis "
                    "every %ss): %r",
                    self._cooldown,
                    exc,
                )
            self._skip_until = time.monotonic() + self._cooldown
            return self._hit_locally(key, policy, limit, window_seconds)
        if self._skip_until:
            log.warning("rate limiter: Redis is back, counting in Redis again")
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

    def _hit_locally(self, key: str, policy: str, limit: int, window_seconds: int) -> Hit:
        count, reset = self._local.hit(key, window_seconds)
        metrics.RATE_LIMIT_FALLBACK.labels(scope=policy).inc()
        exceeded = count > limit
        if exceeded:
            metrics.RATE_LIMITED.labels(scope=policy).inc()
        return Hit(
            policy=policy,
            limit=limit,
            window_seconds=window_seconds,
            remaining=max(0, limit - count),
            reset_seconds=max(1, math.ceil(reset)),
            exceeded=exceeded,
            local=True,
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


class LocalWindows:
    """Fixed-window counters in this process's memory: the limiter's stand-in for Redis.

    At most ``max_keys`` windows are kept; when full, ended windows go first, then the
    oldest (a flood of distinct keys cannot grow memory without bound)."""

    def __init__(self, max_keys: int = 100_000) -> None:
        self._max = max_keys
        self._windows: dict[str, tuple[float, int]] = {}  # key -> (window end, count)

    def hit(self, key: str, window_seconds: int) -> tuple[int, float]:
        """Count one hit: (hits in the current window, seconds until it ends)."""
        now = time.monotonic()
        end, count = self._windows.get(key, (0.0, 0))
        if end <= now:
            end, count = now + window_seconds, 0
            self._windows.pop(key, None)
            if len(self._windows) >= self._max:
                self._prune(now)
        self._windows[key] = (end, count + 1)
        return count + 1, end - now

    def _prune(self, now: float) -> None:
        for key in [k for k, (end, _) in self._windows.items() if end <= now]:
            del self._windows[key]
        for key in list(self._windows)[: max(0, len(self._windows) - self._max // 2)]:
            del self._windows[key]
