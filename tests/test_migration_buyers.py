"""Migrations 0013accounttokens, 0014guestcheckout, 0015attendees and 0016transfers (issue
32) on a database of their own: upgrade, downgrade to 0012orders (their tables and columns
gone, accounts kept), upgrade again."""

from __future__ import annotations

import asyncio
import uuid

from alembic import command
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from evently.infra.migrate import alembic_config, upgrade
from evently.settings import Settings

_TABLES = (
    "SELECT table_name FROM information_schema.tables WHERE table_name IN "
    "('account_tokens', 'booking_access_keys', 'event_questions', 'booking_attendees', "
    "'ticket_transfers') "
    "ORDER BY table_name"
)
_VERIFIED = (
    "SELECT count(*) FROM information_schema.columns "
    "WHERE table_name = 'users' AND column_name = 'email_verified_at'"
)


async def test_the_buyer_migrations_upgrade_downgrade_and_upgrade_again(
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
        await asyncio.to_thread(upgrade, url, "0012orders")
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO users (id, email, password_hash, role) "
                    "VALUES (gen_random_uuid(), 'old@example.com', 'x', 'buyer')"
                )
            )
        await engine.dispose()
        await asyncio.to_thread(upgrade, url, "0016transfers")
        async with engine.connect() as conn:
            assert list((await conn.execute(text(_TABLES))).scalars()) == [
                "account_tokens",
                "booking_access_keys",
                "booking_attendees",
                "event_questions",
                "ticket_transfers",
            ]
            assert await conn.scalar(text(_VERIFIED)) == 1
            # an account from before starts unverified
            assert (
                await conn.scalar(
                    text("SELECT email_verified_at FROM users WHERE email = 'old@example.com'")
                )
                is None
            )
        await engine.dispose()

        await asyncio.to_thread(command.downgrade, alembic_config(url), "0012orders")
        async with engine.connect() as conn:
            assert list((await conn.execute(text(_TABLES))).scalars()) == []
            assert await conn.scalar(text(_VERIFIED)) == 0
            assert await conn.scalar(text("SELECT count(*) FROM users")) == 1
        await engine.dispose()
        await asyncio.to_thread(upgrade, url, "0016transfers")
    finally:
        await engine.dispose()
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()
