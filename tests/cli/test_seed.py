"""`evently seed` against a database of its own (so its fixed demo rows never mix with the
other tests' data): creates the demo set once, and nothing more the second time."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

from cli.seed import EVENTS, VENUES
from evently.infra.migrate import upgrade
from evently.infra.resources import Resources
from evently.settings import Settings


@pytest.fixture
async def seed_database(resources: Resources) -> AsyncIterator[str]:
    name = f"seed_{uuid.uuid4().hex[:12]}"
    admin = resources.engine.execution_options(isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(resources.endpoints.database_url).set(database=name)
    url_str = url.render_as_string(hide_password=False)
    await asyncio.to_thread(upgrade, url_str)
    yield url_str
    async with admin.connect() as conn:
        await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _seed(settings: Settings, database_url: str) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTLY_")}
    env.update(
        {
            "EVENTLY_ENV": "test",
            "EVENTLY_DATABASE_URL": database_url,
            "EVENTLY_REDIS_URL": settings.redis_url or "",
            "EVENTLY_TEMPORAL_ADDRESS": settings.temporal_address or "",
            "COLUMNS": "120",
        }
    )
    proc = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "evently"),
        "seed",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 120)
    return proc.returncode or 0, out.decode()


async def test_seed_creates_the_demo_set_once(settings: Settings, seed_database: str) -> None:
    code, out = await _seed(settings, seed_database)
    assert code == 0, out
    assert f"events: {len(EVENTS)} created" in out
    assert "search index not updated" not in out

    code, out = await _seed(settings, seed_database)
    assert code == 0, out
    assert f"events: 0 created, {len(EVENTS)} already there" in out

    engine = create_async_engine(seed_database)
    try:
        async with engine.connect() as conn:
            venues = await conn.scalar(text("SELECT count(*) FROM venues"))
            rows = (
                await conn.execute(
                    text(
                        "SELECT status, capacity, available, starts_at > now() AS upcoming"
                        " FROM events"
                    )
                )
            ).all()
    finally:
        await engine.dispose()
    assert venues == len(VENUES)
    assert len(rows) == len(EVENTS)
    assert all(r.status == "published" and r.available == r.capacity for r in rows)
    assert all(r.upcoming for r in rows)
