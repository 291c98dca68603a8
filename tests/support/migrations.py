"""A database of its own for a migration test: created empty, dropped afterwards."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from evently.settings import Settings


@contextlib.asynccontextmanager
async def scratch_database(settings: Settings) -> AsyncIterator[tuple[str, AsyncEngine]]:
    """An empty database on the session's server: its URL (for ``evently.infra.migrate``) and an
    engine on it (dispose it before each migration step: the migration wants no other users)."""
    assert settings.database_url
    name = f"migrate_{uuid.uuid4().hex[:8]}"
    admin = create_async_engine(settings.database_url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(settings.database_url).set(database=name).render_as_string(hide_password=False)
    engine = create_async_engine(url)
    try:
        yield url, engine
    finally:
        await engine.dispose()
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()
