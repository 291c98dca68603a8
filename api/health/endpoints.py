"""Liveness and readiness."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from api.deps import ResourcesDep
from api.problems import problem
from evently.resources import Resources

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


async def _postgres(res: Resources) -> None:
    async with res.engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


async def _redis(res: Resources) -> None:
    await res.redis.ping()


async def _temporal(res: Resources) -> None:
    from temporalio.api.workflowservice.v1 import GetSystemInfoRequest

    await res.temporal.workflow_service.get_system_info(GetSystemInfoRequest())


async def _search(res: Resources) -> None:
    await res.search.ping()  # Elasticsearch, or the search_documents table in Postgres


CHECKS = {"postgres": _postgres, "redis": _redis, "temporal": _temporal, "search": _search}


async def _check(fn: Any, res: Resources) -> str | None:
    try:
        await asyncio.wait_for(fn(res), timeout=2.0)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"[:200] or type(exc).__name__
    return None


@router.get("/health/ready", responses={503: {"description": "a dependency is down"}})
async def ready(res: ResourcesDep) -> JSONResponse:
    results = await asyncio.gather(*(_check(fn, res) for fn in CHECKS.values()))
    checks = {
        name: ("ok" if err is None else err) for name, err in zip(CHECKS, results, strict=True)
    }
    down = [name for name, err in zip(CHECKS, results, strict=True) if err is not None]
    if down:
        return problem(
            503,
            "not_ready",
            "Not ready",
            f"unreachable: {', '.join(down)}",
            headers={"Retry-After": "5"},
            checks=checks,
        )
    return JSONResponse({"status": "ready", "checks": checks})
