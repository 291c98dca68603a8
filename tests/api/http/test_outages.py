"""A dependency's outage is answered inside the app (503, the connection kept), and any other
unhandled error says ``Connection: close`` before uvicorn closes the connection (over a real
uvicorn server: the in-process transport cannot see connections)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI, Request
from sqlalchemy import exc as sa_exc

from api.problems import install_problem_handlers
from tests.support.servers import serve_app


def _app() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/postgres-gone")
    async def postgres_gone() -> None:
        raise sa_exc.InterfaceError("SELECT 1", {}, Exception("connection is closed"))

    @app.get("/bug")
    async def bug() -> None:
        raise KeyError("a bug")

    @app.get("/fine")
    async def fine(request: Request) -> dict[str, int]:
        assert request.client is not None
        return {"port": request.client.port}  # which connection the request came on

    return app


@pytest.fixture
async def base_url() -> AsyncIterator[str]:
    async with serve_app(_app()) as url:
        yield url


async def test_an_outage_is_a_503_on_a_connection_that_stays_usable(base_url: str) -> None:
    limits = httpx.Limits(max_connections=1)
    async with httpx.AsyncClient(base_url=base_url, limits=limits) as http:
        port = (await http.get("/fine")).json()["port"]
        for _ in range(20):
            r = await http.get("/postgres-gone")
            assert r.status_code == 503
            assert r.headers["content-type"] == "application/problem+json"
            assert r.json()["code"] == "service_unavailable"
            assert r.headers.get("connection") != "close"
            # the same connection: the server did not close it after the answer (before, it
            # did, and a request sent at that instant met a reset)
            assert (await http.get("/fine")).json()["port"] == port


async def test_a_bug_is_a_500_that_says_the_connection_closes(base_url: str) -> None:
    limits = httpx.Limits(max_connections=1)
    async with httpx.AsyncClient(base_url=base_url, limits=limits) as http:
        for _ in range(20):
            r = await http.get("/bug")
            assert r.status_code == 500
            assert r.json()["code"] == "internal_error"
            assert r.headers["connection"] == "close"
            assert "port" in (await http.get("/fine")).json()  # on a new connection
