"""Search down (issue 35): an app whose search backend is unreachable (Elasticsearch configured
at a closed port) answers 503 ``search_unavailable`` on search, 200 ``degraded`` on readiness,
and sells as usual: search is a derived index, never on the booking path."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import httpx
import pytest

from evently.infra.embedded import free_port
from evently.infra.resources import Resources
from evently.search.factory import make_search_index
from tests.conftest import AppFactory
from tests.factories import make_account, make_event

pytestmark = pytest.mark.usefixtures("running_workers")


@pytest.fixture
async def no_search(
    resources: Resources, app_factory: AppFactory
) -> AsyncIterator[httpx.AsyncClient]:
    settings = resources.settings.model_copy(
        update={"elasticsearch_url": f"http://127.0.0.1:{free_port()}"}
    )
    search = make_search_index(settings, resources.engine)
    res = dataclasses.replace(resources, settings=settings, search=search)
    try:
        transport = httpx.ASGITransport(app=app_factory(res, settings), raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            yield client
    finally:
        await search.aclose()


async def test_search_down_is_503_search_unavailable(no_search: httpx.AsyncClient) -> None:
    for path in ("/api/v1/search?q=jazz", "/api/v1/search/suggestions?q=ja"):
        r = await no_search.get(path)
        assert r.status_code == 503, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["code"] == "search_unavailable"


async def test_search_down_readiness_is_200_degraded(no_search: httpx.AsyncClient) -> None:
    r = await no_search.get("/health/ready")
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["status"], body["degraded"]) == ("degraded", ["search"])
    assert body["checks"]["search"] != "ok"
    assert {k: v for k, v in body["checks"].items() if k != "search"} == {
        "postgres": "ok",
        "redis": "ok",
        "temporal": "ok",
    }


async def test_search_down_bookings_are_unaffected(
    no_search: httpx.AsyncClient, resources: Resources
) -> None:
    buyer = await make_account(resources)
    event = await make_event(resources, capacity=5)
    held = await no_search.post(
        "/api/v1/bookings/reserve",
        json={"event_id": str(event.id), "quantity": 2},
        headers=buyer.headers,
    )
    assert held.status_code == 201, held.text
    paid = await no_search.post(
        "/api/v1/bookings/confirm",
        json={"booking_id": held.json()["booking_id"], "payment_method": "pm_card_visa"},
        headers=buyer.headers,
    )
    assert paid.status_code == 200, paid.text
    assert paid.json()["status"] == "confirmed"
    shown = await no_search.get(f"/api/v1/events/{event.id}")
    assert shown.status_code == 200, shown.text
