"""Liveness and readiness."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from api.deps import ResourcesDep, TemporalDep
from api.problems import problem
from evently.infra.resources import Resources
from workflows.connection import TemporalClient, ping

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


async def _postgres(res: Resources) -> None:
    async with res.engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


async def _check(call: Callable[[], Awaitable[object]]) -> str | None:
    try:
        await asyncio.wait_for(call(), timeout=2.0)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"[:200] or type(exc).__name__
    return None


def _checks(res: Resources, temporal: TemporalClient) -> dict[str, Callable[[], Awaitable[object]]]:
    return {
        "postgres": lambda: _postgres(res),
        "redis": lambda: res.redis.ping(),
        "temporal": lambda: ping(temporal),
        "search": lambda: res.search.ping(),  # Elasticsearch, or the search_documents table
    }


@router.get("/health/ready", responses={503: {"description": "a dependency is down"}})
async def ready(res: ResourcesDep, temporal: TemporalDep) -> JSONResponse:
    checks = _checks(res, temporal)
    results = await asyncio.gather(*(_check(call) for call in checks.values()))
    found = {
        name: ("ok" if err is None else err) for name, err in zip(checks, results, strict=True)
    }
    down = [name for name, err in zip(checks, results, strict=True) if err is not None]
    if down:
        return problem(
            503,
            "not_ready",
            "Not ready",
            f"unreachable: {', '.join(down)}",
            headers={"Retry-After": "5"},
            checks=found,
        )
    return JSONResponse({"status": "ready", "checks": found})
