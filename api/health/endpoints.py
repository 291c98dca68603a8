"""Liveness and readiness.

Readiness fails (503 ``not_ready``) only for what the API cannot serve without: Postgres (the
source of truth) and Temporal (every booking is a workflow). Redis only accelerates (gate,
cache, rate limits: each falls back when it is down) and search is a derived index with its own
503 on its routes, so either being down answers 200 ``status: "degraded"`` naming the failed
checks: a load balancer keeps sending traffic, a dashboard still sees the fault.

``rate_limits`` says how the login and sign-up limits count: ``ok`` (in Redis, shared by every
process) or ``degraded: per-process`` (Redis is down, or this process's limiter found it down
within its cooldown: each process counts on its own, evently/ratelimit.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Request

from api.deps import ResourcesDep, TemporalDep
from api.health.schemas import Readiness
from api.problems import problem_responses
from evently.db.session import ping as ping_postgres
from evently.errors import NotReady
from evently.infra.resources import Resources
from evently.ratelimit import RateLimiter
from workflows.connection import TemporalClient, ping

router = APIRouter(tags=["health"])

REQUIRED = ("postgres", "temporal")  # down → 503; any other check down → 200 degraded
CHECK_TIMEOUT_SECONDS = 2.0


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


async def _check(call: Callable[[], Awaitable[object]]) -> str | None:
    try:
        await asyncio.wait_for(call(), timeout=CHECK_TIMEOUT_SECONDS)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"[:200] or type(exc).__name__
    return None


def _checks(res: Resources, temporal: TemporalClient) -> dict[str, Callable[[], Awaitable[object]]]:
    return {
        "postgres": lambda: ping_postgres(res.engine),
        "redis": lambda: res.redis.ping(),
        "temporal": lambda: ping(temporal),
        "search": lambda: res.search.ping(),  # Elasticsearch, or the search_documents table
    }


@router.get("/health/ready", response_model=Readiness, responses=problem_responses(NotReady))
async def ready(request: Request, res: ResourcesDep, temporal: TemporalDep) -> Readiness:
    checks = _checks(res, temporal)
    results = await asyncio.gather(*(_check(call) for call in checks.values()))
    found = {
        name: ("ok" if err is None else err) for name, err in zip(checks, results, strict=True)
    }
    failed = [name for name, err in zip(checks, results, strict=True) if err is not None]
    down = [name for name in failed if name in REQUIRED]
    if down:
        raise NotReady(f"unreachable: {', '.join(down)}", retry_after=5, checks=found)
    limiter: RateLimiter | None = getattr(request.app.state, "rate_limiter", None)
    per_process = "redis" in failed or (limiter is not None and limiter.degraded)
    return Readiness(
        status="degraded" if failed else "ready",
        checks=found,
        degraded=failed,
        rate_limits="degraded: per-process" if per_process else "ok",
    )
