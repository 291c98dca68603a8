"""Search benchmark: index N generated events, then time a mixed query set through the API.

    evently bench search [--events 10000] [--queries 2000] [--concurrency 8] [--configured]

By default everything runs on a fresh embedded stack in a temporary state dir (deleted after);
``--configured`` uses the configured servers instead (EVENTLY_DATABASE_URL, and
EVENTLY_ELASTICSEARCH_URL for the Elasticsearch backend) and adds the events there.
Requests go through the real FastAPI app in process (httpx ASGI transport: no sockets), so the
numbers are API + backend on this machine. Prints ONE JSON line.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import insert

from evently.db.models import Event, Venue
from evently.settings import Settings

CITIES = [
    "Bergen", "Oslo", "Trondheim", "Tromsø", "Stavanger", "Stockholm", "Göteborg", "Malmö",
    "København", "Aarhus", "Helsinki", "Reykjavík", "Berlin", "München", "Köln", "Zürich",
    "Wien", "Praha", "Kraków", "Amsterdam", "Rotterdam", "Bruxelles", "Paris", "Lyon",
    "Montréal", "Québec", "Lisboa", "Porto", "Madrid", "Sevilla", "Barcelona", "Milano",
    "Roma", "Napoli", "Dublin", "Cork", "Edinburgh", "Glasgow", "London", "Manchester",
]  # fmt: skip
TYPES = ["concert", "festival", "theatre", "comedy", "sports", "conference", "opera", "dance"]
GENRES = [
    "Jazz", "Rock", "Blues", "Folk", "Techno", "Classical", "Indie", "Metal", "Soul", "Hip-Hop",
    "Country", "Reggae", "Opera", "Ballet", "Stand-up", "Chamber", "Punk", "Gospel", "Swing",
    "Salsa",
]  # fmt: skip
ADJECTIVES = [
    "Midnight", "Summer", "Winter", "Nordic", "Grand", "Electric", "Acoustic", "Late", "Sunday",
    "Open-air", "Harbour", "Royal", "Underground", "Festive", "Spring", "Northern", "Golden",
]  # fmt: skip
NOUNS = [
    "Festival", "Night", "Sessions", "Weekend", "Gala", "Showcase", "Marathon", "Evening",
    "Live", "Tour", "Celebration", "Revue", "Encounter", "Matinee",
]  # fmt: skip
VENUE_WORDS = ["Hall", "Arena", "Theatre", "Club", "Garden", "House", "Stage", "Kulturhus"]
FILLER = [
    "an", "unforgettable", "night", "of", "live", "music", "with", "local", "and",
    "international", "artists", "food", "drinks", "family", "friendly", "seated", "standing",
    "outdoor", "indoor", "café", "bar", "late", "show", "premiere", "encore",
]  # fmt: skip


def _typo(word: str, rng: random.Random) -> str:
    """Drop one inner letter: the kind of slip suggestions must forgive."""
    if len(word) < 5:
        return word
    i = rng.randrange(1, len(word) - 1)
    return word[:i] + word[i + 1 :]


@dataclass
class GeneratedData:
    venues: list[dict[str, Any]]
    events: list[dict[str, Any]]


def generate(n_events: int, rng: random.Random) -> GeneratedData:
    now = datetime.now(UTC)
    venues = []
    for i in range(max(40, n_events // 50)):
        city = CITIES[i % len(CITIES)]
        venues.append(
            {
                "id": uuid.uuid4(),
                "name": f"{rng.choice(ADJECTIVES)} {rng.choice(VENUE_WORDS)} {city}",
                "address": f"{rng.randint(1, 200)} Main Street",
                "city": city,
                "capacity": 5000,
            }
        )
    events = []
    for _ in range(n_events):
        venue = rng.choice(venues)
        starts = now + timedelta(hours=rng.randint(2, 24 * 365))
        capacity = rng.choice([50, 100, 500, 1000, 5000])
        sold_out = rng.random() < 0.1
        events.append(
            {
                "id": uuid.uuid4(),
                "venue_id": venue["id"],
                "name": f"{rng.choice(ADJECTIVES)} {rng.choice(GENRES)} {rng.choice(NOUNS)}",
                "description": " ".join(rng.choices(FILLER, k=rng.randint(8, 30))),
                "event_type": rng.choice(TYPES),
                "starts_at": starts,
                "ends_at": starts + timedelta(hours=rng.choice([2, 3, 4, 48])),
                "capacity": capacity,
                "available": 0 if sold_out else capacity,
                "held": 0,
                "sold": capacity if sold_out else 0,
                "price": Decimal(rng.randint(100, 50_000)) / 100,
                "currency": "EUR",
                "status": "published" if rng.random() < 0.95 else "draft",
                "published_at": now,
                # written "earlier": the rebuild's catch-up pass only re-reads recent changes
                "created_at": now - timedelta(hours=1),
                "updated_at": now - timedelta(hours=1),
            }
        )
    return GeneratedData(venues, events)


def query_mix(n: int, rng: random.Random) -> list[tuple[str, str, dict[str, Any]]]:
    """(kind, path, params): the searches buyers make, in fixed proportions."""
    now = datetime.now(UTC).date()
    out: list[tuple[str, str, dict[str, Any]]] = []
    kinds = (
        ["one_word"] * 25
        + ["multi_word"] * 20
        + ["text_and_filters"] * 15
        + ["filters_only"] * 10
        + ["date_range_by_price"] * 10
        + ["deep_page"] * 5
        + ["suggest"] * 10
        + ["suggest_typo"] * 5
    )
    for _ in range(n):
        kind = rng.choice(kinds)
        city = rng.choice(CITIES)
        params: dict[str, Any]
        path = "/api/v1/search"
        if kind == "one_word":
            params = {"q": rng.choice(GENRES)}
        elif kind == "multi_word":
            params = {"q": f"{rng.choice(GENRES)} {rng.choice(NOUNS)} {city}"}
        elif kind == "text_and_filters":
            params = {
                "q": rng.choice(GENRES),
                "city": city,
                "available_only": "true",
                "price_max": rng.choice([50, 100, 250]),
            }
        elif kind == "filters_only":
            params = {"city": city, "type": rng.choice(TYPES), "sort": "date"}
        elif kind == "date_range_by_price":
            start = now + timedelta(days=rng.randint(0, 300))
            params = {
                "date_from": start.isoformat(),
                "date_to": (start + timedelta(days=30)).isoformat(),
                "sort": "price",
            }
        elif kind == "deep_page":
            params = {"q": rng.choice(GENRES), "page": 5, "limit": 20}
        elif kind == "suggest":
            path = "/api/v1/search/suggestions"
            word = rng.choice(GENRES + CITIES + ADJECTIVES)
            params = {"q": word[: rng.randint(3, max(3, len(word)))]}
        else:
            path = "/api/v1/search/suggestions"
            params = {"q": _typo(rng.choice(GENRES + CITIES), rng)}
        out.append((kind, path, params))
    return out


async def _load(settings: Settings, data: GeneratedData) -> float:
    from evently.db.session import make_engine
    from evently.infra.endpoints import resolve_endpoints

    engine = make_engine(resolve_endpoints(settings).database_url, settings, pool_size=2)
    started = time.perf_counter()
    try:
        async with engine.begin() as conn:
            await conn.execute(insert(Venue), data.venues)
            for i in range(0, len(data.events), 2000):
                await conn.execute(insert(Event), data.events[i : i + 2000])
    finally:
        await engine.dispose()
    return time.perf_counter() - started


def _percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[k]


async def _measure(
    settings: Settings, n_events: int, n_queries: int, concurrency: int
) -> dict[str, Any]:
    from api.app import create_app
    from evently.infra.resources import open_resources
    from evently.search.reindex import rebuild_index
    from workflows.connection import connect

    rng = random.Random(7)
    data = generate(n_events, rng)
    insert_s = await _load(settings, data)
    async with open_resources(settings) as res:
        t = time.perf_counter()
        indexed = await rebuild_index(res.sessionmaker, res.search, batch_size=1000)
        await res.search.refresh()
        build_s = time.perf_counter() - t

        temporal = await connect(
            res.endpoints.temporal_address, settings.temporal_namespace, lazy=True
        )
        app = create_app(settings, res, temporal)
        transport = httpx.ASGITransport(app=app)
        queries = query_mix(n_queries, rng)
        latencies: list[float] = []
        by_kind: dict[str, list[float]] = {}
        errors: Counter[str] = Counter()
        hits = 0
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            for _, path, params in query_mix(50, random.Random(1)):  # warm caches and pools
                await client.get(path, params=params)
            pending = iter(queries)

            async def worker() -> None:
                nonlocal hits
                for kind, path, params in pending:
                    t0 = time.perf_counter()
                    response = await client.get(path, params=params)
                    elapsed = (time.perf_counter() - t0) * 1000
                    if response.status_code != 200:
                        errors[f"{kind}:{response.status_code}"] += 1
                        continue
                    hits += len(response.json()["items"]) > 0
                    latencies.append(elapsed)
                    by_kind.setdefault(kind, []).append(elapsed)

            t = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            wall = time.perf_counter() - t
        backend = res.search.backend
    return {
        "bench": "search",
        "backend": backend,
        "events": n_events,
        "indexed_documents": indexed,
        "insert_s": round(insert_s, 2),
        "index_build_s": round(build_s, 2),
        "index_docs_per_s": round(indexed / build_s, 1) if build_s else None,
        "queries": len(queries),
        "concurrency": concurrency,
        "queries_per_second": round(len(latencies) / wall, 1),
        "p50_ms": round(statistics.median(latencies), 2),
        "p95_ms": round(_percentile(latencies, 95), 2),
        "p99_ms": round(_percentile(latencies, 99), 2),
        "non_empty_ratio": round(hits / max(1, len(latencies)), 3),
        "errors": dict(errors),
        "p50_ms_by_kind": {
            kind: round(statistics.median(v), 2) for kind, v in sorted(by_kind.items())
        },
    }


def run_search_bench(
    settings: Settings,
    *,
    events: int = 10_000,
    queries: int = 2_000,
    concurrency: int = 8,
    configured: bool = False,
) -> dict[str, Any]:
    """Blocking: start a throwaway embedded stack unless ``configured``, run, clean up."""
    if configured:
        return asyncio.run(_measure(settings, events, queries, concurrency))

    from evently.infra.devstack import EmbeddedStack
    from evently.infra.embedded import free_port
    from evently.infra.migrate import upgrade
    from workflows.common import SEARCH_ATTRIBUTE_TYPES

    with tempfile.TemporaryDirectory(prefix="evently-bench-search-") as tmp:
        base = Settings(
            env="test",
            state_dir=Path(tmp),
            database_url=None,
            redis_url=None,
            temporal_address=None,
            elasticsearch_url=None,
        )
        stack = EmbeddedStack(
            base,
            temporal_ui=False,
            temporal_port=free_port(),
            search_attributes=SEARCH_ATTRIBUTE_TYPES,
            temporal_persist=False,
        )
        info = stack.start()
        try:
            upgrade(info.database_url)
            local = base.model_copy(
                update={
                    "database_url": info.database_url,
                    "redis_url": info.redis_url,
                    "temporal_address": info.temporal_address,
                }
            )
            return asyncio.run(_measure(local, events, queries, concurrency))
        finally:
            stack.stop()
