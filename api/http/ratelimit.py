"""The IETF ``RateLimit-Policy`` and ``RateLimit`` fields on every answer of a rate-limited
route (draft-ietf-httpapi-ratelimit-headers: structured-field lists, one item per policy).

An endpoint counts a request through :class:`RequestRateLimiter` (``RateLimiterDep``); each
:class:`~evently.ratelimit.Hit` is recorded in the request's ASGI scope, and
:class:`api.http.edge.HttpEdge` renders the fields when the answer starts — on a 2xx, on the
429 and on any other answer given after the count::

    RateLimit-Policy: "login:ip";q=10;w=60, "login:email";q=10;w=60
    RateLimit: "login:ip";r=7;t=42, "login:email";r=9;t=42

``q`` requests per ``w`` seconds; ``r`` requests left, ``t`` seconds until the window ends.
No extra Redis round trip: the limiter's one script returns the count and the window's TTL.
A hit counted by this process alone (Redis down: ``Hit.local``) reports its per-process count;
a hit counted nowhere adds nothing.
"""

from __future__ import annotations

from typing import Any

from starlette.types import Scope

from evently.ratelimit import Hit, RateLimiter, check

HITS = "evently.rate_limit_hits"  # ASGI scope key: the request's counted hits


def record(scope: Scope, hit: Hit) -> None:
    if hit.counted:
        scope.setdefault(HITS, []).append(hit)


def _name(policy: str) -> str:
    """A structured-field string (RFC 8941 §3.3.3): escape ``\\`` and ``"``."""
    return '"' + policy.replace("\\", "\\\\").replace('"', '\\"') + '"'


def fields(hits: list[Hit]) -> list[tuple[bytes, bytes]]:
    policy = ", ".join(f"{_name(h.policy)};q={h.limit};w={h.window_seconds}" for h in hits)
    limit = ", ".join(f"{_name(h.policy)};r={h.remaining};t={h.reset_seconds}" for h in hits)
    return [(b"ratelimit-policy", policy.encode("ascii")), (b"ratelimit", limit.encode("ascii"))]


class RequestRateLimiter:
    """The app's limiter bound to one request: each hit also goes into the answer's fields."""

    def __init__(self, limiter: RateLimiter, scope: Scope) -> None:
        self.limiter = limiter
        self._scope = scope

    async def hit(self, key: str, limit: int, window_seconds: int) -> Hit:
        hit = await self.limiter.hit(key, limit, window_seconds)
        record(self._scope, hit)
        return hit

    async def enforce(
        self, key: str, limit: int, window_seconds: int, *, detail: str = "Too many requests."
    ) -> Hit:
        """Count, and raise 429 ``rate_limited`` (with ``Retry-After``) when over the limit."""
        return check(await self.hit(key, limit, window_seconds), detail=detail)


#: OpenAPI: what a rate-limited route's answers carry (while Redis is down: this process's
#: own count, see evently/ratelimit.py)
RATE_LIMIT_HEADERS: dict[str, dict[str, Any]] = {
    "RateLimit-Policy": {
        "description": 'the quotas this route counts against: `"<policy>";q=<requests>;w=<seconds>`'
        " (draft-ietf-httpapi-ratelimit-headers)",
        "schema": {"type": "string"},
    },
    "RateLimit": {
        "description": 'what is left of each: `"<policy>";r=<requests left>;t=<seconds to reset>`',
        "schema": {"type": "string"},
    },
}
