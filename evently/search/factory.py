"""Pick the search backend from settings: Elasticsearch when its URL is set, else Postgres."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from evently.search.base import SearchIndex
from evently.settings import Settings


def make_search_index(settings: Settings, engine: AsyncEngine) -> SearchIndex:
    """Built once per process (see `evently.infra.resources`); backends load lazily."""
    if settings.elasticsearch_url:
        from evently.search.elastic import ElasticsearchIndex, make_client

        return ElasticsearchIndex(
            make_client(settings.elasticsearch_url), settings.elasticsearch_index
        )
    from evently.search.postgres import PostgresSearchIndex

    return PostgresSearchIndex(engine)
