"""``Link`` headers on every paged list (api/http/links.py)."""

from __future__ import annotations

import uuid

import httpx
from fastapi import Request, Response

from api.http.links import PageLinks
from evently.infra.resources import Resources
from tests.support.factories import make_account, make_event, make_venue


def links(r: httpx.Response) -> dict[str, str]:
    return {rel: link["url"] for rel, link in r.links.items()}


async def test_events_pages_link_to_their_neighbours(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    city = f"Linkville {uuid.uuid4().hex[:8]}"
    venue = await make_venue(resources, city=city)
    for _ in range(5):
        await make_event(resources, venue=venue)
    base = "/api/v1/events"
    first = await client.get(base, params={"city": city, "limit": 2})
    assert first.json()["total"] == 5
    assert links(first) == {"next": f"{base}?city={city.replace(' ', '+')}&limit=2&page=2"}
    nxt = await client.get(links(first)["next"])  # the link works as given
    assert nxt.json()["page"] == 2
    assert set(links(nxt)) == {"next", "prev"}
    assert "page=1" in links(nxt)["prev"]
    assert "page=3" in links(nxt)["next"]
    last = await client.get(links(nxt)["next"])
    assert [len(last.json()["items"]), set(links(last))] == [1, {"prev"}]
    # past the end: prev points at the last page that has items
    beyond = await client.get(base, params={"city": city, "limit": 2, "page": 9})
    assert links(beyond) == {"prev": f"{base}?city={city.replace(' ', '+')}&limit=2&page=3"}
    single = await client.get(base, params={"city": city, "limit": 10})
    assert "link" not in single.headers  # one page: nothing to link


async def test_every_paged_list_links(client: httpx.AsyncClient, resources: Resources) -> None:
    buyer = await make_account(resources)
    staff = await make_account(resources, "support")
    page_two = {"page": 2, "limit": 1}
    lists = [
        ("/api/v1/users/bookings", page_two, buyer.headers),
        ("/api/v1/users/notifications", page_two, buyer.headers),
        ("/api/v1/support/bookings", {**page_two, "user_id": str(buyer.id)}, staff.headers),
        ("/api/v1/search", {**page_two, "q": uuid.uuid4().hex}, {}),
    ]
    for path, params, headers in lists:
        r = await client.get(path, params=params, headers=headers)
        assert r.status_code == 200, (path, r.text)
        assert r.json()["total"] == 0
        assert set(links(r)) == {"prev"}, path  # nothing here: back to page 1
        assert "page=1" in links(r)["prev"], path
    spec = (await client.get("/openapi.json")).json()
    for path, _, _ in [*lists, ("/api/v1/events", {}, {})]:
        assert "Link" in spec["paths"][path]["get"]["responses"]["200"]["headers"], path


def test_no_next_link_past_the_last_page_an_endpoint_accepts() -> None:
    scope = {
        "type": "http",
        "method": "GET",
        "scheme": "http",
        "server": ("t", 80),
        "path": "/api/v1/search",
        "query_string": b"q=rock&page=2&limit=50",
        "headers": [],
    }
    response = Response()
    PageLinks(Request(scope), response).set(2, 50, 100_000, max_page=2)
    assert response.headers["link"] == '</api/v1/search?q=rock&limit=50&page=1>; rel="prev"'
    response = Response()
    PageLinks(Request(scope), response).set(2, 50, 100_000, max_page=3)
    assert response.headers["link"].startswith(
        '</api/v1/search?q=rock&limit=50&page=3>; rel="next"'
    )
