"""Migrations 0013accounttokens, 0014guestcheckout, 0015attendees, 0016transfers and
0017buyergaps (issue 32) on a database of their own: upgrade, downgrade to 0012orders (their
tables and columns gone, accounts kept; a guest's waiting-room place goes with the reference
to users that comes back), upgrade again."""

from __future__ import annotations

import asyncio
import uuid

from alembic import command
from sqlalchemy import text

from evently.infra.migrate import alembic_config, upgrade
from evently.settings import Settings
from tests.support.migrations import scratch_database

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
    async with scratch_database(settings) as (url, engine):
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

        # 0017buyergaps: a guest session's place names no account; the answers' deadline
        await asyncio.to_thread(upgrade, url, "0017buyergaps")
        async with engine.begin() as conn:
            event_id = uuid.uuid4()
            venue_id = uuid.uuid4()
            await conn.execute(
                text(
                    "INSERT INTO venues (id, name, address, city, capacity) "
                    "VALUES (:v, 'v', 'a', 'c', 1)"
                ),
                {"v": venue_id},
            )
            await conn.execute(
                text(
                    "INSERT INTO events (id, venue_id, name, event_type, starts_at, ends_at, "
                    "capacity, available, price, currency, status) VALUES "
                    "(:e, :v, 'm', 'talk', now(), now() + interval '1 hour', 1, 1, 1, 'EUR', "
                    "'published')"
                ),
                {"e": event_id, "v": venue_id},
            )
            await conn.execute(
                text(
                    "INSERT INTO queue_entries (event_id, user_id, position) "
                    "VALUES (:e, gen_random_uuid(), 1)"
                ),
                {"e": event_id},
            )
            await conn.execute(
                text("UPDATE events SET attendee_answers_until = now() WHERE id = :e"),
                {"e": event_id},
            )
        await engine.dispose()

        await asyncio.to_thread(command.downgrade, alembic_config(url), "0012orders")
        async with engine.connect() as conn:
            assert list((await conn.execute(text(_TABLES))).scalars()) == []
            assert await conn.scalar(text(_VERIFIED)) == 0
            assert await conn.scalar(text("SELECT count(*) FROM users")) == 1
            assert await conn.scalar(text("SELECT count(*) FROM queue_entries")) == 0
        await engine.dispose()
        await asyncio.to_thread(upgrade, url, "0017buyergaps")
