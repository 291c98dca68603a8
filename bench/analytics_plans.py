"""Analytics at scale: load N synthetic bookings into a THROWAWAY database and record the
query plans and timings of every analytics query.

    python -m bench.analytics_plans --bookings 1000000 --write docs/analytics-plans.md

The database ``evently_analytics_<random>`` is created on the configured Postgres server
(EVENTLY_DATABASE_URL, else the embedded one of ``evently dev``), migrated to head, loaded
with one ``INSERT ... SELECT generate_series`` per table, measured, and dropped (unless
``--keep``). The shared databases are never touched. Prints one JSON line of results.

Data shape: ``--events`` events share the bookings evenly, except one "hot" event that gets
``--hot-share`` of them (a flash sale); statuses cycle confirmed (5 in 10), expired (2 in
10), cancelled (half of them paid then refunded), held, rejected; confirmations spread over
48 hours.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from evently.analytics import ALL_QUERIES, event_analytics
from evently.infra.migrate import upgrade

# bookings' and payments' indexes that an event-keyed query may use
EXPECTED_INDEXES = {
    "bookings": ("ix_bookings_event_status", "ix_bookings_event_created"),
    "payments": ("ix_payments_booking_id", "uq_payments_one_success_per_booking"),
    "waitlist_entries": ("ix_waitlist_event_status_created",),
}


def event_uuid(k: int) -> uuid.UUID:
    """The id of synthetic event k (same formula as the SQL: md5('event-' || k)::uuid)."""
    import hashlib

    return uuid.UUID(hashlib.md5(f"event-{k}".encode()).hexdigest())


@dataclass
class QueryPlan:
    name: str
    plan: str
    execution_ms: float
    index_scans: list[str] = field(default_factory=list)
    seq_scans: list[str] = field(default_factory=list)


@dataclass
class PlanReport:
    bookings: int
    events: int
    load_seconds: float
    typical: list[QueryPlan]
    hot: list[QueryPlan]
    typical_total_ms: float
    hot_total_ms: float

    def summary(self) -> dict[str, Any]:
        return {
            "bench": "analytics_plans",
            "bookings": self.bookings,
            "events": self.events,
            "load_seconds": round(self.load_seconds, 1),
            "typical_event_endpoint_ms": round(self.typical_total_ms, 1),
            "hot_event_endpoint_ms": round(self.hot_total_ms, 1),
            "typical_queries_ms": {q.name: round(q.execution_ms, 2) for q in self.typical},
            "hot_queries_ms": {q.name: round(q.execution_ms, 2) for q in self.hot},
            "typical_seq_scans": sorted({s for q in self.typical for s in q.seq_scans}),
        }


@asynccontextmanager
async def throwaway_database(
    server_url: str, prefix: str = "evently_analytics"
) -> AsyncIterator[str]:
    """CREATE DATABASE on the same server, migrated to head; DROP it afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_async_engine(server_url, isolation_level="AUTOCOMMIT", pool_size=1)
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
        try:
            await asyncio.to_thread(upgrade, url)
            yield url
        finally:
            async with admin.connect() as conn:
                await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()


LOAD_SQL = [
    # buyers
    """
    INSERT INTO users (id, email, password_hash, role)
    SELECT md5('user-' || u)::uuid, 'bench-' || u || '@example.com', 'x', 'buyer'
    FROM generate_series(0, :users - 1) AS u
    """,
    """
    INSERT INTO venues (id, name, address, city, capacity)
    VALUES (md5('venue')::uuid, 'Bench Arena', 'Bench st 1', 'Bergen', 1000000)
    """,
    # event 0 is the hot one; capacity is large and counters balanced (the check constraint)
    """
    INSERT INTO events (id, venue_id, name, event_type, starts_at, ends_at, capacity,
                        available, held, sold, price, currency, status)
    SELECT md5('event-' || e)::uuid, md5('venue')::uuid, 'Bench event ' || e, 'concert',
           now() + interval '30 days', now() + interval '30 days 3 hours',
           10000000, 10000000, 0, 0, 25.00, 'EUR', 'published'
    FROM generate_series(0, :events - 1) AS e
    """,
    # the bookings: one statement, N rows
    """
    INSERT INTO bookings (id, event_id, user_id, quantity, amount, currency, status,
                          workflow_id, hold_expires_at, created_at, updated_at,
                          confirmed_at, ended_at)
    SELECT b.id, md5('event-' || b.ev)::uuid, md5('user-' || (b.i % :users))::uuid,
           b.qty, CASE WHEN b.st = 'rejected' THEN 0 ELSE 25.00 * b.qty END, 'EUR', b.st,
           'booking-' || b.id, b.created + interval '5 minutes', b.created, b.created,
           CASE WHEN b.st = 'confirmed' OR (b.st = 'cancelled' AND (b.i / 10) % 2 = 0)
                THEN b.created + interval '2 minutes' END,
           CASE WHEN b.st IN ('expired', 'cancelled') THEN b.created + interval '5 minutes' END
    FROM (
        SELECT i,
               gen_random_uuid() AS id,
               CASE WHEN i % 1000 < :hot_permille THEN 0
                    ELSE 1 + (i % (:events - 1)) END AS ev,
               1 + (i % 4) AS qty,
               (ARRAY['confirmed','confirmed','confirmed','confirmed','confirmed',
                      'expired','expired','cancelled','held','rejected'])[1 + i % 10] AS st,
               timestamptz '2026-01-10 08:00:00+00' + (i % 172800) * interval '1 second'
                   AS created
        FROM generate_series(0, :bookings - 1) AS i
    ) AS b
    """,
    # a succeeded charge for every booking that was ever confirmed
    """
    INSERT INTO payments (id, booking_id, kind, status, provider, provider_payment_id,
                          idempotency_key, payment_method, amount, currency, created_at)
    SELECT gen_random_uuid(), id, 'charge', 'succeeded', 'simulated', 'pi_' || id, id || '-charge',
           'pm_card_visa', amount, currency, confirmed_at
    FROM bookings WHERE confirmed_at IS NOT NULL
    """,
    # refunds for the confirmed-then-cancelled ones
    """
    INSERT INTO payments (id, booking_id, kind, status, provider, provider_payment_id,
                          idempotency_key, payment_method, amount, currency, created_at)
    SELECT gen_random_uuid(), id, 'refund', 'succeeded', 'simulated', 're_' || id, id || '-refund',
           NULL, amount, currency, ended_at
    FROM bookings WHERE status = 'cancelled' AND confirmed_at IS NOT NULL
    """,
    # a waitlist on every event
    """
    INSERT INTO waitlist_entries (id, event_id, user_id, quantity, status, offer_id)
    SELECT gen_random_uuid(), md5('event-' || (w % :events))::uuid,
           md5('user-' || (w / :events))::uuid, 1,
           (ARRAY['waiting','offered','accepted','expired','left'])[1 + (w / :events) % 5],
           CASE WHEN (w / :events) % 5 IN (1, 2, 3) THEN 'offer-' || w END
    FROM generate_series(0, :events * 5 - 1) AS w
    """,
    "ANALYZE",
]


async def load(engine: AsyncEngine, *, bookings: int, events: int, hot_share: float) -> float:
    params = {
        "bookings": bookings,
        "events": max(events, 2),
        "users": 5000,
        "hot_permille": round(hot_share * 1000),
    }
    start = time.perf_counter()
    async with engine.connect() as conn:
        for sql in LOAD_SQL:
            if sql == "ANALYZE":
                await conn.commit()
                await conn.execute(text(sql))
            else:
                for k, v in params.items():  # trusted ints: inlined so the planner sees constants
                    sql = sql.replace(f":{k}", str(int(v)))
                await conn.execute(text(sql))
        await conn.commit()
    return time.perf_counter() - start


_SCAN = re.compile(
    r"(?P<kind>Index Only Scan|Index Scan|Bitmap Index Scan|Seq Scan)"
    r"(?: Backward)?(?: using (?P<index>\w+))?(?: on (?P<table>\w+))?"
)


async def explain(engine: AsyncEngine, event_id: uuid.UUID) -> list[QueryPlan]:
    plans = []
    async with engine.connect() as conn:
        for name, query in ALL_QUERIES.items():
            rows = await conn.execute(
                text(f"EXPLAIN (ANALYZE, BUFFERS) {query.text}"), {"event_id": event_id}
            )
            plan = "\n".join(r[0] for r in rows)
            qp = QueryPlan(name=name, plan=plan, execution_ms=_execution_ms(plan))
            for m in _SCAN.finditer(plan):
                if m["kind"] == "Seq Scan":
                    qp.seq_scans.append(m["table"] or "?")
                else:  # "Index Scan using IDX on TABLE" / "Bitmap Index Scan on IDX"
                    qp.index_scans.append(m["index"] or m["table"] or "?")
            plans.append(qp)
    return plans


def _execution_ms(plan: str) -> float:
    m = re.search(r"Execution Time: ([0-9.]+) ms", plan)
    return float(m.group(1)) if m else 0.0


async def endpoint_ms(engine: AsyncEngine, event_id: uuid.UUID, repeat: int = 5) -> float:
    """Median wall time of the whole analytics computation (all five queries)."""
    from sqlalchemy.ext.asyncio import async_sessionmaker

    maker = async_sessionmaker(engine, expire_on_commit=False)
    times = []
    for _ in range(repeat):
        async with maker() as session:
            t0 = time.perf_counter()
            result = await event_analytics(session, event_id)
            times.append((time.perf_counter() - t0) * 1000)
            assert result is not None
    return sorted(times)[len(times) // 2]


async def run(
    server_url: str, *, bookings: int, events: int, hot_share: float, keep: bool = False
) -> PlanReport:
    async with throwaway_database(server_url) as url:
        engine = create_async_engine(url, pool_size=2)
        try:
            load_s = await load(engine, bookings=bookings, events=events, hot_share=hot_share)
            typical_event, hot_event = event_uuid(1), event_uuid(0)
            report = PlanReport(
                bookings=bookings,
                events=events,
                load_seconds=load_s,
                typical=await explain(engine, typical_event),
                hot=await explain(engine, hot_event),
                typical_total_ms=await endpoint_ms(engine, typical_event),
                hot_total_ms=await endpoint_ms(engine, hot_event),
            )
        finally:
            await engine.dispose()
        if keep:  # pragma: no cover - manual inspection
            print(f"kept {url}")
            await asyncio.Event().wait()
    return report


def markdown(report: PlanReport, hot_share: float) -> str:
    s = report.summary()
    per_event = (report.bookings * (1 - hot_share)) / max(report.events - 1, 1)
    lines = [
        "# Analytics query plans at scale",
        "",
        "Generated by `python -m bench.analytics_plans --bookings "
        f"{report.bookings} --events {report.events} --write docs/analytics-plans.md` "
        "on the embedded Postgres (throwaway database, dropped afterwards).",
        "",
        f"- bookings: {report.bookings:,} over {report.events:,} events "
        f"(typical event ≈ {per_event:,.0f} bookings; the hot event "
        f"{hot_share:.0%} ≈ {report.bookings * hot_share:,.0f} bookings)",
        f"- load time (INSERT ... SELECT generate_series + ANALYZE): {s['load_seconds']} s",
        f"- whole analytics computation, median of 5: typical event "
        f"**{s['typical_event_endpoint_ms']} ms**, hot event **{s['hot_event_endpoint_ms']} ms**",
        "",
        "| query | typical event (ms) | indexes used | hot event (ms) | hot: indexes / seq scans |",
        "|---|---|---|---|---|",
    ]
    for t, h in zip(report.typical, report.hot, strict=True):
        lines.append(
            f"| {t.name} | {t.execution_ms:.2f} | {', '.join(sorted(set(t.index_scans))) or '-'} "
            f"| {h.execution_ms:.2f} | {', '.join(sorted(set(h.index_scans))) or '-'}"
            f"{' / seq: ' + ', '.join(h.seq_scans) if h.seq_scans else ''} |"
        )
    lines += ["", "## Plans: typical event", ""]
    for q in report.typical:
        lines += [f"### {q.name}", "", "```", q.plan, "```", ""]
    lines += ["## Plans: hot event", ""]
    for q in report.hot:
        lines += [f"### {q.name}", "", "```", q.plan, "```", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--bookings", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=1_000)
    parser.add_argument("--hot-share", type=float, default=0.1)
    parser.add_argument("--write", type=Path, help="write the plans as markdown here")
    parser.add_argument("--keep", action="store_true", help="keep the database (Ctrl-C ends)")
    args = parser.parse_args()

    from evently.infra.endpoints import resolve_endpoints
    from evently.settings import Settings

    server_url = resolve_endpoints(Settings()).database_url
    report = asyncio.run(
        run(
            server_url,
            bookings=args.bookings,
            events=args.events,
            hot_share=args.hot_share,
            keep=args.keep,
        )
    )
    if args.write:
        args.write.parent.mkdir(parents=True, exist_ok=True)
        args.write.write_text(markdown(report, args.hot_share))
    print(json.dumps(report.summary()))


if __name__ == "__main__":
    main()
