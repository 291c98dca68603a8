"""Search: indexing an event, asking the API, the index documents of the contract tests."""

from __future__ import annotations

import random
import string
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
from temporalio.testing import ActivityEnvironment

from activities.search import SearchIndexActivities
from evently.infra.resources import Resources
from evently.search.base import SearchDocument, SearchIndex
from workflows.search_sync.contract import IndexEventInput


def token() -> str:
    """A made-up word only this test's events contain (letters only: stems to itself)."""
    return "zq" + "".join(random.choices(string.ascii_lowercase, k=10))


async def index_event(res: Resources, event_id: uuid.UUID) -> str:
    acts = SearchIndexActivities(res)
    result = await ActivityEnvironment().run(acts.index_event, IndexEventInput(event_id=event_id))
    await res.search.refresh()  # Elasticsearch: make the write visible now, not within 1 s
    return result.action


async def found(client: httpx.AsyncClient, **params: Any) -> list[str]:
    r = await client.get(SEARCH, params=params)
    assert r.status_code == 200, r.text
    return [item["id"] for item in r.json()["items"]]


NOW = datetime.now(UTC).replace(microsecond=0)


def doc(
    name: str,
    *,
    city: str = "Bergen",
    venue: str = "Grieghallen",
    event_type: str = "concert",
    description: str = "",
    starts_in: timedelta = timedelta(days=10),
    hours: int = 3,
    price: str = "25.00",
    has_seats: bool = True,
    event_id: uuid.UUID | None = None,
) -> SearchDocument:
    starts = NOW + starts_in
    return SearchDocument(
        event_id=event_id or uuid.uuid4(),
        name=name,
        description=description,
        event_type=event_type,
        venue_id=uuid.uuid5(uuid.NAMESPACE_DNS, venue),
        venue_name=venue,
        city=city,
        starts_at=starts,
        ends_at=starts + timedelta(hours=hours),
        price=Decimal(price),
        currency="EUR",
        has_seats=has_seats,
    )


async def index_all(index: SearchIndex, *docs: SearchDocument) -> None:
    for d in docs:
        await index.upsert(d)
    await index.refresh()


SEARCH = "/api/v1/search"
