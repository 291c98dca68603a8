"""What every `evently` command shares: the console, the settings, a short-lived database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import typer
from pydantic import ValidationError
from rich.console import Console
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from evently.settings import Settings

console = Console(stderr=True)


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        console.print(f"[red]configuration error:[/] {exc}")
        raise typer.Exit(2) from exc


@asynccontextmanager
async def database(settings: Settings) -> AsyncIterator[AsyncEngine]:
    """A one-connection engine on the configured (or embedded) Postgres, disposed after."""
    from evently.db.session import make_engine
    from evently.infra.endpoints import resolve_endpoints

    engine = make_engine(resolve_endpoints(settings).database_url, settings, pool_size=1)
    try:
        yield engine
    finally:
        await engine.dispose()


@asynccontextmanager
async def transaction(settings: Settings) -> AsyncIterator[AsyncSession]:
    """A session in one transaction, committed when the block ends without error."""
    from evently.db.session import make_sessionmaker

    async with (
        database(settings) as engine,
        make_sessionmaker(engine)() as session,
        session.begin(),
    ):
        yield session
