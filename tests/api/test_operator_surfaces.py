"""Operator surfaces (issue 28): in production /docs, /redoc and /openapi.json are off unless
EVENTLY_API_DOCS=true, and GET /metrics is off on the API port unless EVENTLY_METRICS_TOKEN is
set (then a bearer token is required); EVENTLY_METRICS_PORT serves the metrics on a port of
their own (prometheus_client's server). Development and test keep both on."""

from __future__ import annotations

import asyncio
import dataclasses

import httpx
from pydantic import SecretStr

from api.metrics import serve_metrics_port
from evently.infra.embedded import free_port
from evently.infra.resources import Resources
from evently.settings import Settings
from tests.support.temporal import AppFactory

DOCS = ("/docs", "/redoc", "/openapi.json")


async def _get(
    app_factory: AppFactory, res: Resources, settings: Settings, path: str, **headers: str
) -> httpx.Response:
    app = app_factory(dataclasses.replace(res, settings=settings), settings)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as api:
        return await api.get(path, headers=headers)


async def test_docs_are_off_in_production_unless_switched_on(
    app_factory: AppFactory, resources: Resources, settings: Settings
) -> None:
    prod = settings.model_copy(update={"env": "production"})
    for path in DOCS:
        assert (await _get(app_factory, resources, prod, path)).status_code == 404, path
    on = prod.model_copy(update={"api_docs": True})
    off = settings.model_copy(update={"api_docs": False})
    for path in DOCS:
        assert (await _get(app_factory, resources, on, path)).status_code == 200, path
        assert (await _get(app_factory, resources, settings, path)).status_code == 200, path
        assert (await _get(app_factory, resources, off, path)).status_code == 404, path


async def test_metrics_in_production_need_a_token_or_their_own_port(
    app_factory: AppFactory, resources: Resources, settings: Settings
) -> None:
    prod = settings.model_copy(update={"env": "production"})
    assert (await _get(app_factory, resources, prod, "/metrics")).status_code == 404
    assert (await _get(app_factory, resources, settings, "/metrics")).status_code == 200

    guarded = prod.model_copy(update={"metrics_token": SecretStr("scrape-me-0123456789")})
    for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": "Basic x"}):
        r = await _get(app_factory, resources, guarded, "/metrics", **headers)
        assert r.status_code == 401, headers
        assert r.headers["www-authenticate"].startswith("Bearer")
    r = await _get(
        app_factory, resources, guarded, "/metrics", authorization="Bearer scrape-me-0123456789"
    )
    assert r.status_code == 200
    assert "evently_http_requests_total" in r.text

    # a port of its own: the API port no longer serves them; prometheus_client's server does
    port = free_port()
    own = settings.model_copy(update={"metrics_port": port})
    assert (await _get(app_factory, resources, own, "/metrics")).status_code == 404
    server = serve_metrics_port("127.0.0.1", port)
    try:
        async with httpx.AsyncClient() as http:
            for _ in range(50):  # a thread: bounded wait until it listens
                try:
                    scraped = await http.get(f"http://127.0.0.1:{port}/metrics")
                    break
                except httpx.ConnectError:
                    await asyncio.sleep(0.1)
    finally:
        server.shutdown()
        server.server_close()
    assert scraped.status_code == 200
    assert "evently_http_requests_total" in scraped.text
