"""Long-lived clients of one process (API or worker): built once, closed once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.client import Client

from evently.db.session import make_engine, make_sessionmaker
from evently.endpoints import Endpoints, resolve_endpoints
from evently.search.base import SearchIndex
from evently.search.factory import make_search_index
from evently.settings import Settings
from evently.temporal import connect


def make_redis(url: str) -> Redis:
    # short timeouts: Redis is an accelerator, a slow or dead Redis must not stall requests
    return Redis.from_url(
        url,
        socket_timeout=0.5,
        socket_connect_timeout=0.5,
        decode_responses=True,
        max_connections=512,
    )


@dataclass
class Resources:
    settings: Settings
    endpoints: Endpoints
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    redis: Redis
    temporal: Client
    search: SearchIndex


@asynccontextmanager
async def open_resources(
    settings: Settings, *, temporal: Client | None = None
) -> AsyncIterator[Resources]:
    endpoints = resolve_endpoints(settings)
    engine = make_engine(endpoints.database_url, settings)
    redis = make_redis(endpoints.redis_url)
    if temporal is None:
        # lazy: the API starts (and reports not-ready) while Temporal is still down
        temporal = await connect(endpoints.temporal_address, settings.temporal_namespace, lazy=True)
    search = make_search_index(settings, engine)
    try:
        yield Resources(
            settings, endpoints, engine, make_sessionmaker(engine), redis, temporal, search
        )
    finally:
        await search.aclose()
        await redis.aclose()
        await engine.dispose()
