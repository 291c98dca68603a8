"""Migration 0006orgs on a database of its own: what existed before joins the default
organization, and the migration goes down and up again."""

from __future__ import annotations

import asyncio
import uuid

from alembic import command
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from evently.db.models import DEFAULT_ORGANIZATION_ID
from evently.infra.migrate import alembic_config, upgrade
from evently.settings import Settings


async def test_existing_venues_and_events_join_the_default_organization(
    settings: Settings,
) -> None:
    assert settings.database_url
    name = f"migrate_{uuid.uuid4().hex[:8]}"
    admin = create_async_engine(settings.database_url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(settings.database_url).set(database=name).render_as_string(hide_password=False)
    engine = create_async_engine(url)
    try:
        await asyncio.to_thread(upgrade, url, "0005tickets")
        async with engine.begin() as conn:
            venue = await conn.scalar(
                text(
                    "INSERT INTO venues (id, name, address, city, capacity) "
                    "VALUES (gen_random_uuid(), 'Old hall', 'a', 'Oslo', 100) RETURNING id"
                )
            )
            event = await conn.scalar(
                text(
                    "INSERT INTO events (id, venue_id, name, event_type, starts_at, ends_at, "
                    "capacity, available, price, currency, status) VALUES (gen_random_uuid(), "
                    ":v, 'Old gig', 'concert', now(), now() + interval '1 hour', 10, 10, 5, "
                    "'EUR', 'published') RETURNING id"
                ),
                {"v": venue},
            )
        await asyncio.to_thread(upgrade, url, "head")
        async with engine.connect() as conn:
            orgs = (
                await conn.execute(text("SELECT id, name, is_default FROM organizations"))
            ).all()
            assert [(o.id, o.is_default) for o in orgs] == [(DEFAULT_ORGANIZATION_ID, True)]
            assert (
                await conn.scalar(
                    text("SELECT organization_id FROM venues WHERE id = :v"), {"v": venue}
                )
                == DEFAULT_ORGANIZATION_ID
            )
            assert (
                await conn.scalar(
                    text("SELECT organization_id FROM events WHERE id = :e"), {"e": event}
                )
                == DEFAULT_ORGANIZATION_ID
            )
        await engine.dispose()

        config = alembic_config(url)
        await asyncio.to_thread(command.downgrade, config, "0005tickets")
        async with engine.connect() as conn:
            assert await conn.scalar(text("SELECT to_regclass('organizations')")) is None
            assert await conn.scalar(text("SELECT count(*) FROM events")) == 1
        await engine.dispose()
        await asyncio.to_thread(upgrade, url, "head")
        async with engine.connect() as conn:
            assert (
                await conn.scalar(
                    text("SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'webhook_%'")
                )
                == 5
            )
    finally:
        await engine.dispose()
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()
