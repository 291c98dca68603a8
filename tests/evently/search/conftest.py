"""The search contract suite runs against every backend that is really available.

Postgres: always (a private copy of the ``search_documents`` table per test, so a reindex or a
count never sees another test's documents). Elasticsearch: only when EVENTLY_ELASTICSEARCH_URL
points at a live cluster (a private alias per test); otherwise those cases are skipped with the
reason shown. Nothing stands in for Elasticsearch.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import text

from evently.infra.resources import Resources
from evently.search.base import SearchDocument, SearchIndex
from evently.search.postgres import PostgresSearchIndex

ES_URL = os.environ.get("EVENTLY_ELASTICSEARCH_URL")
ES_SKIP_REASON = (
    "EVENTLY_ELASTICSEARCH_URL is not set: no Elasticsearch cluster to run the contract suite "
    "against (docs/architecture.md, Search)"
)

BACKENDS = [
    pytest.param("postgres", id="postgres"),
    pytest.param(
        "elasticsearch",
        id="elasticsearch",
        marks=pytest.mark.skipif(not ES_URL, reason=ES_SKIP_REASON),
    ),
]


@pytest.fixture(params=BACKENDS)
async def index(request: pytest.FixtureRequest, resources: Resources) -> AsyncIterator[SearchIndex]:
    if request.param == "postgres":
        table = f"search_test_{uuid.uuid4().hex[:16]}"
        async with resources.engine.begin() as conn:
            await conn.execute(text(f"CREATE TABLE {table} (LIKE search_documents INCLUDING ALL)"))
        try:
            yield PostgresSearchIndex(resources.engine, table=table)
        finally:
            async with resources.engine.begin() as conn:
                await conn.execute(text(f"DROP TABLE {table}"))
        return

    from evently.search.elastic import ElasticsearchIndex, make_client

    assert ES_URL
    client = make_client(ES_URL)
    alias = f"evently-test-{uuid.uuid4().hex[:16]}"
    es_index = ElasticsearchIndex(client, alias)
    try:
        await es_index.ensure()
        yield es_index
    finally:
        # explicit names: wildcard deletes are refused by default (action.destructive_requires_name)
        created = await client.indices.get(index=f"{alias}-*", allow_no_indices=True)
        for name in created.body:
            await client.indices.delete(index=name, ignore_unavailable=True)
        await client.close()


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
