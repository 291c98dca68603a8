"""Typed dependency aliases. One dependency owns the request's session and transaction."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from evently.infra.resources import Resources
from evently.settings import Settings
from workflows.connection import TemporalClient


# async on purpose: FastAPI runs a plain `def` dependency in the thread pool, a thread hop
# per dependency per request (~5% of the API's CPU on the reserve path, docs/performance.md)
async def get_resources(request: Request) -> Resources:
    res: Resources = request.app.state.resources
    return res


ResourcesDep = Annotated[Resources, Depends(get_resources)]


async def get_session(res: ResourcesDep) -> AsyncIterator[AsyncSession]:
    """Commit when the endpoint succeeds, roll back when it raises. Services only flush().

    Scoped to the endpoint function (``scope="function"`` below): the commit runs after the
    endpoint returns and BEFORE the response is sent, so a 2xx means committed and a client
    that acts on it at once sees its write; a commit that fails is a 503/500 problem, never a
    2xx. (With the default request scope, FastAPI runs this exit code after the response has
    gone out.)"""
    async with res.sessionmaker() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


async def end_transaction(session: AsyncSession) -> None:
    """End the request's transaction early: commit what it wrote so far and hand the connection
    back to the pool before a slow call (a Temporal round trip, a payment provider). The only
    commit in ``api/`` besides :func:`get_session`'s: routes and services never call
    ``session.commit()`` themselves. A later read on the same session opens a new transaction,
    which :func:`get_session` commits (or rolls back) as usual."""
    await session.commit()


async def get_settings_dep(res: ResourcesDep) -> Settings:
    return res.settings


async def get_redis(res: ResourcesDep) -> Redis:
    return res.redis


async def get_temporal(request: Request) -> TemporalClient:
    client: TemporalClient = request.app.state.temporal
    return client


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
RedisDep = Annotated[Redis, Depends(get_redis)]
TemporalDep = Annotated[TemporalClient, Depends(get_temporal)]
