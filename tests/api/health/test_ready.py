"""Readiness: 503 only when Postgres or Temporal is down; Redis or search down is 200 degraded
(Redis down: tests/test_foundation.py)."""

from __future__ import annotations

from pathlib import Path

import httpx

from evently.infra.embedded import free_port
from evently.infra.resources import open_resources
from evently.settings import Settings
from tests.support.temporal import AppFactory
from workflows.connection import connect


async def test_ready_when_everything_answers(client: httpx.AsyncClient) -> None:
    r = await client.get("/health/ready")
    assert r.status_code == 200, r.text
    assert r.json() == {
        "status": "ready",
        "checks": {"postgres": "ok", "redis": "ok", "temporal": "ok", "search": "ok"},
        "degraded": [],
        "rate_limits": "ok",
    }


async def test_ready_is_503_naming_temporal_when_it_is_down(
    settings: Settings, app_factory: AppFactory
) -> None:
    dead = await connect(f"127.0.0.1:{free_port()}", settings.temporal_namespace, lazy=True)
    async with open_resources(settings) as res:
        app = app_factory(res, settings, dead)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t"
        ) as client:
            r = await client.get("/health/ready")
    assert r.status_code == 503, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.headers["retry-after"] == "5"
    body = r.json()
    assert body["code"] == "not_ready"
    assert body["detail"].startswith("unreachable:")
    assert "temporal" in body["detail"]
    assert body["checks"]["temporal"] != "ok"
    assert "redis" not in body["detail"]  # never a reason for 503


async def test_ready_is_503_naming_postgres_when_it_is_down(
    settings: Settings, state_dir: Path, app_factory: AppFactory
) -> None:
    broken = settings.model_copy(
        update={"database_url": f"postgresql+asyncpg://postgres@/x?host={state_dir}/no-such-pg"}
    )
    async with open_resources(broken) as res:
        app = app_factory(res, broken)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t"
        ) as client:
            r = await client.get("/health/ready")
    assert r.status_code == 503, r.text
    body = r.json()
    assert body["code"] == "not_ready"
    assert "postgres" in body["detail"]
    assert body["checks"]["postgres"] != "ok"
