"""Migration 0006orgs on a database of its own: what existed before joins the default
organization, and the migration goes down and up again."""

from __future__ import annotations

import asyncio

from alembic import command
from sqlalchemy import text

from evently.db.models import DEFAULT_ORGANIZATION_ID
from evently.infra.migrate import alembic_config, upgrade
from evently.settings import Settings
from tests.support.migrations import scratch_database


async def test_existing_venues_and_events_join_the_default_organization(
    settings: Settings,
) -> None:
    async with scratch_database(settings) as (url, engine):
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
