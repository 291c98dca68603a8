"""Migration 0010doorscope on a database of its own: the platform door accounts of an install
from before issue 30 become door members of the default organization (where every event of
that time lives), so their scanners keep working; downgrade removes exactly those."""

from __future__ import annotations

import asyncio

from alembic import command
from sqlalchemy import text

from evently.db.models import DEFAULT_ORGANIZATION_ID
from evently.infra.migrate import alembic_config, upgrade
from evently.settings import Settings
from tests.support.migrations import scratch_database

_USER = (
    "INSERT INTO users (id, email, password_hash, role) "
    "VALUES (gen_random_uuid(), :email, 'x', :role) RETURNING id"
)
_MEMBERS = "SELECT user_id, role FROM organization_members WHERE organization_id = :o"


async def test_platform_door_accounts_become_door_members_of_the_default_organization(
    settings: Settings,
) -> None:
    org = {"o": DEFAULT_ORGANIZATION_ID}
    async with scratch_database(settings) as (url, engine):
        await asyncio.to_thread(upgrade, url, "0009webhooktargets")
        async with engine.begin() as conn:
            gate = await conn.scalar(text(_USER), {"email": "gate@example.com", "role": "door"})
            buyer = await conn.scalar(text(_USER), {"email": "buyer@example.com", "role": "buyer"})
            owner = await conn.scalar(text(_USER), {"email": "boss@example.com", "role": "door"})
            await conn.execute(
                text(
                    "INSERT INTO organization_members (organization_id, user_id, role) "
                    "VALUES (:o, :u, 'owner')"
                ),
                {**org, "u": owner},
            )
        await engine.dispose()
        await asyncio.to_thread(upgrade, url, "0010doorscope")
        async with engine.connect() as conn:
            members = dict((await conn.execute(text(_MEMBERS), org)).tuples().all())
        assert members == {gate: "door", owner: "owner"}  # a membership held stays as it was
        assert buyer not in members
        await engine.dispose()

        await asyncio.to_thread(command.downgrade, alembic_config(url), "0009webhooktargets")
        async with engine.connect() as conn:
            members = dict((await conn.execute(text(_MEMBERS), org)).tuples().all())
        assert members == {owner: "owner"}
