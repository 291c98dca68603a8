"""`evently seed`: a demo set of venues and published events, so a new user sees something.

Idempotent: venues are found by name and events by (venue, name) before anything is created,
so running it twice creates nothing the second time. Every event it creates also gets its
search-index write requested (through Temporal, like any other change).
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from evently.enums import EventStatus
from evently.settings import Settings


@dataclass(frozen=True)
class DemoVenue:
    name: str
    address: str
    city: str
    capacity: int


@dataclass(frozen=True)
class DemoEvent:
    name: str
    venue: str
    event_type: str
    in_days: int
    at_hour: int
    hours: int
    capacity: int
    price: str
    currency: str
    description: str


VENUES = (
    DemoVenue("Grieghallen (demo)", "Edvard Griegs plass 1", "Bergen", 1500),
    DemoVenue("Oslo Spektrum (demo)", "Sonja Henies plass 2", "Oslo", 10000),
    DemoVenue("Stavanger Konserthus (demo)", "Sandvigå 1", "Stavanger", 1500),
    DemoVenue("Olavshallen (demo)", "Kjøpmannsgata 44", "Trondheim", 1200),
    DemoVenue("Ulleval Stadion (demo)", "Sognsveien 75", "Oslo", 28000),
)

EVENTS = (
    DemoEvent(
        "Mahler 5 with the Bergen Philharmonic",
        "Grieghallen (demo)",
        "concert",
        14,
        19,
        2,
        1400,
        "450.00",
        "NOK",
        "Mahler's Fifth Symphony, the Adagietto and all.",
    ),
    DemoEvent(
        "Peer Gynt in concert",
        "Grieghallen (demo)",
        "concert",
        35,
        19,
        3,
        1200,
        "390.00",
        "NOK",
        "Grieg's complete incidental music with narrator and choir.",
    ),
    DemoEvent(
        "Aurora: northern lights tour",
        "Oslo Spektrum (demo)",
        "concert",
        21,
        20,
        2,
        9000,
        "690.00",
        "NOK",
        "Arena show with the full band.",
    ),
    DemoEvent(
        "Nordic Game Jam finals",
        "Oslo Spektrum (demo)",
        "conference",
        50,
        10,
        8,
        3000,
        "0.00",
        "NOK",
        "Free entry: watch the teams present their games.",
    ),
    DemoEvent(
        "Stand-up night",
        "Stavanger Konserthus (demo)",
        "comedy",
        9,
        20,
        2,
        800,
        "350.00",
        "NOK",
        "Four comedians, one microphone.",
    ),
    DemoEvent(
        "Swan Lake",
        "Stavanger Konserthus (demo)",
        "theatre",
        28,
        18,
        3,
        1400,
        "520.00",
        "NOK",
        "The classic ballet in four acts.",
    ),
    DemoEvent(
        "PyCon Nordic",
        "Olavshallen (demo)",
        "conference",
        60,
        9,
        9,
        1000,
        "120.00",
        "EUR",
        "Talks, tutorials and sprints for Python people.",
    ),
    DemoEvent(
        "Trondheim Jazz Evening",
        "Olavshallen (demo)",
        "concert",
        17,
        20,
        3,
        600,
        "300.00",
        "NOK",
        "Three trios, one long evening.",
    ),
    DemoEvent(
        "Norway vs Sweden",
        "Ulleval Stadion (demo)",
        "sports",
        42,
        18,
        2,
        25000,
        "400.00",
        "NOK",
        "International friendly.",
    ),
    DemoEvent(
        "Cup final",
        "Ulleval Stadion (demo)",
        "sports",
        80,
        15,
        3,
        27000,
        "650.00",
        "NOK",
        "The season's last match.",
    ),
)


@dataclass
class SeedReport:
    venues_created: int = 0
    events_created: int = 0
    events_existing: int = 0
    index_requested: int = 0
    index_error: str | None = None


async def run_seed(settings: Settings, console: Console) -> SeedReport:
    from evently import events as service
    from evently.db.session import make_engine, make_sessionmaker
    from evently.infra.endpoints import resolve_endpoints

    endpoints = resolve_endpoints(settings)
    engine = make_engine(endpoints.database_url, settings, pool_size=1)
    report = SeedReport()
    to_index: list[uuid.UUID] = []
    today = datetime.combine(datetime.now(UTC).date(), time.min, tzinfo=UTC)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    try:
        with Progress(*columns, console=console, transient=False) as progress:
            task = progress.add_task("venues and events", total=len(VENUES) + len(EVENTS))
            async with make_sessionmaker(engine)() as session, session.begin():
                venue_ids: dict[str, uuid.UUID] = {}
                for v in VENUES:
                    venue = await service.find_venue_by_name(session, v.name)
                    if venue is None:
                        venue = await service.create_venue(
                            session,
                            name=v.name,
                            address=v.address,
                            city=v.city,
                            capacity=v.capacity,
                        )
                        report.venues_created += 1
                    venue_ids[v.name] = venue.id
                    progress.advance(task)
                for e in EVENTS:
                    venue_id = venue_ids[e.venue]
                    if await service.find_event_by_name(session, venue_id, e.name) is not None:
                        report.events_existing += 1
                    else:
                        starts = today + timedelta(days=e.in_days, hours=e.at_hour)
                        event = await service.create_event(
                            session,
                            venue_id=venue_id,
                            name=e.name,
                            description=e.description,
                            event_type=e.event_type,
                            starts_at=starts,
                            ends_at=starts + timedelta(hours=e.hours),
                            capacity=e.capacity,
                            price=Decimal(e.price),
                            currency=e.currency,
                            created_by=None,
                            status=EventStatus.PUBLISHED,
                        )
                        to_index.append(event.id)
                        report.events_created += 1
                    progress.advance(task)
            if to_index:
                await _request_index_writes(
                    settings, endpoints.temporal_address, to_index, progress, report
                )
    finally:
        await engine.dispose()
    return report


async def _request_index_writes(
    settings: Settings,
    address: str,
    event_ids: list[uuid.UUID],
    progress: Progress,
    report: SeedReport,
) -> None:
    from evently.db.models import DEFAULT_ORGANIZATION_ID
    from workflows.connection import connect_configured
    from workflows.search_sync.client import request_index_write

    task = progress.add_task("search index requests", total=len(event_ids))
    try:
        client = await asyncio.wait_for(connect_configured(settings, address), 10)
        for event_id in event_ids:
            # the seed's venues and events are the default organization's
            await asyncio.wait_for(
                request_index_write(client, event_id, organization_id=DEFAULT_ORGANIZATION_ID),
                10,
            )
            report.index_requested += 1
            progress.advance(task)
    except Exception as exc:  # the events exist; the index can be rebuilt any time
        report.index_error = f"{type(exc).__name__}: {exc}"


def seed() -> None:
    """Create demo venues and published events (idempotent; safe to run again)."""
    from cli.common import console, load_settings

    settings = load_settings()
    try:
        report = asyncio.run(run_seed(settings, console))
    except OSError as exc:
        console.print(f"[red]cannot reach the database ({exc}); is `evently dev` running?")
        raise typer.Exit(1) from exc
    console.print(
        f"[green]venues: {report.venues_created} created, "
        f"{len(VENUES) - report.venues_created} already there; "
        f"events: {report.events_created} created, {report.events_existing} already there"
    )
    if report.index_error:
        console.print(
            f"[yellow]search index not updated ({report.index_error}); "
            "run `evently search reindex` once Temporal is up"
        )
