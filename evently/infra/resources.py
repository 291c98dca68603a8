"""Long-lived clients of one process (API or worker): built once, closed once.

The Temporal client is not here: the core talks to no workflow. The API and the workers
connect it themselves (workflows/connection.py) next to these resources.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from evently.db.session import make_engine, make_sessionmaker
from evently.infra.endpoints import Endpoints, resolve_endpoints
from evently.search.base import SearchIndex
from evently.search.factory import make_search_index
from evently.settings import Settings


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
    search: SearchIndex


@asynccontextmanager
async def open_resources(settings: Settings) -> AsyncIterator[Resources]:
    endpoints = resolve_endpoints(settings)
    engine = make_engine(endpoints.database_url, settings)
    redis = make_redis(endpoints.redis_url)
    search = make_search_index(settings, engine)
    try:
        yield Resources(settings, endpoints, engine, make_sessionmaker(engine), redis, search)
    finally:
        await search.aclose()
        await redis.aclose()
        await engine.dispose()
