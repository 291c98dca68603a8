"""`evently search ...`: operate the search index."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from cli.common import console
from evently.settings import Settings

search_app = typer.Typer(help="Search index: rebuild it from Postgres.", no_args_is_help=True)


@search_app.command("reindex")
def reindex(
    batch_size: Annotated[int, typer.Option(min=1, max=10_000, help="events per batch")] = 500,
) -> None:
    """Rebuild the search index from Postgres (Elasticsearch: a fresh index, then an atomic alias
    swap; Postgres: in place). Searches keep working throughout."""
    from cli.common import load_settings

    settings = load_settings()
    written, backend = asyncio.run(_reindex(settings, batch_size))
    console.print(f"[green]indexed {written} published events into {backend}")


async def _reindex(settings: Settings, batch_size: int) -> tuple[int, str]:
    from evently.db.session import make_engine, make_sessionmaker
    from evently.infra.endpoints import resolve_endpoints
    from evently.search.factory import make_search_index
    from evently.search.reindex import rebuild_index

    engine = make_engine(resolve_endpoints(settings).database_url, settings, pool_size=2)
    index = make_search_index(settings, engine)
    try:
        with Progress(
            TextColumn("[bold]reindex[/] {task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            task = progress.add_task(index.backend, total=None)
            written = await rebuild_index(
                make_sessionmaker(engine),
                index,
                batch_size=batch_size,
                on_total=lambda total: progress.update(task, total=total),
                on_batch=lambda n: progress.advance(task, n),
            )
        return written, index.backend
    finally:
        await index.aclose()
        await engine.dispose()
