"""Migration 0010doorscope on a database of its own: the platform door accounts of an install
from before issue 30 become door members of the default organization (where every event of
that time lives), so their scanners keep working; downgrade removes exactly those."""

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

_USER = (
    "INSERT INTO users (id, email, password_hash, role) "
    "VALUES (gen_random_uuid(), :email, 'x', :role) RETURNING id"
)
_MEMBERS = "SELECT user_id, role FROM organization_members WHERE organization_id = :o"


async def test_platform_door_accounts_become_door_members_of_the_default_organization(
    settings: Settings,
) -> None:
    assert settings.database_url
    name = f"migrate_{uuid.uuid4().hex[:8]}"
    admin = create_async_engine(settings.database_url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(settings.database_url).set(database=name).render_as_string(hide_password=False)
    engine = create_async_engine(url)
    org = {"o": DEFAULT_ORGANIZATION_ID}
    try:
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
    finally:
        await engine.dispose()
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()
