"""Shared helpers of the booking benchmarks (flash sale, steady state) and the reliability suite:
a throwaway stack with the API and workers as real subprocesses, fast data setup, CPU
accounting over every process of the stack, and percentiles.

The stack: embedded Postgres/Redis and the FILE-persisted Temporal dev server (as `evently dev`
runs it) in a fresh temporary state dir, unless EVENTLY_DATABASE_URL / EVENTLY_REDIS_URL /
EVENTLY_TEMPORAL_ADDRESS are set (then those servers are used and only the processes this
module starts are measured). The API is `python -m cli.main api` (uvicorn) and the
workers `python -m cli.main worker`, each with its own environment.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import psutil  # type: ignore[import-untyped]
from rich.console import Console

from evently.infra.devstack import EmbeddedStack
from evently.infra.embedded import free_port
from evently.settings import Settings
from workflows.common import SEARCH_ATTRIBUTE_TYPES

console = Console(stderr=True)

PRICE = Decimal("25.00")


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of unsorted values; 0 for an empty list."""
    if not values:
        return 0.0
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[k]


def asyncpg_dsn(url: str) -> str:
    """The asyncpg form of a SQLAlchemy asyncpg URL."""
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


# ---- the stack ---------------------------------------------------------------------------


@dataclass
class BenchStack:
    settings: Settings  # with every URL filled in
    env: dict[str, str]  # the environment the API and worker subprocesses get
    state_dir: Path
    embedded: EmbeddedStack | None
    api_port: int
    api: subprocess.Popen[bytes] | None = None
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    log_dir: Path | None = None

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def database_url(self) -> str:
        assert self.settings.database_url
        return self.settings.database_url

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        assert self.log_dir is not None
        log = (self.log_dir / f"{name}.log").open("ab")
        return subprocess.Popen(
            [sys.executable, "-m", "cli.main", *args],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def start_api(self, processes: int = 1) -> None:
        self.api = self._spawn(
            "api", ["api", "--port", str(self.api_port), "--workers", str(processes)]
        )

    def start_worker(self, queues: str = "booking,search,payments") -> subprocess.Popen[bytes]:
        proc = self._spawn(f"worker-{len(self.workers)}", ["worker", "--queues", queues])
        self.workers.append(proc)
        return proc

    def wait_ready(self, timeout: float = 90) -> None:
        """Until /health/ready answers 200 and the workers are up."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for proc in [self.api, *self.workers]:
                if proc is not None and proc.poll() is not None:
                    raise RuntimeError(f"a stack process exited early; see logs in {self.log_dir}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.api_url}/health/ready", timeout=2).status_code == 200:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"the API was not ready after {timeout}s; see {self.log_dir}")

    def stop_processes(self) -> None:
        procs = [p for p in [self.api, *self.workers] if p is not None]
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    def pids(self) -> dict[str, list[int]]:
        """Root pids of every stack process, by component (children are found at measure time)."""
        out: dict[str, list[int]] = {}
        if self.api is not None:
            out["api"] = [self.api.pid]
        for i, w in enumerate(self.workers):
            out[f"worker{i}"] = [w.pid]
        if self.embedded is not None:
            for name, server in (
                ("temporal", self.embedded.temporal),
                ("postgres", self.embedded.postgres),
                ("redis", self.embedded.redis),
            ):
                pid = server.pid if server is not None else None
                if pid:
                    out[name] = [pid]
        return out


@contextlib.contextmanager
def bench_stack(
    *,
    hold_seconds: int = 300,
    extra_env: dict[str, str] | None = None,
    pg_stat_statements: bool = False,
    keep_state: bool = bool(os.environ.get("EVENTLY_BENCH_KEEP_STATE")),
    force_embedded: bool = False,
) -> Iterator[BenchStack]:
    """Embedded servers (unless configured) + migrations; API/workers are started by the caller
    with ``start_api`` / ``start_worker`` and stopped here. ``force_embedded``: always start
    private servers (the reliability suite stops and restarts them)."""
    base = Settings()
    if force_embedded:
        base = base.model_copy(
            update={"database_url": None, "redis_url": None, "temporal_address": None}
        )
    state = Path(tempfile.mkdtemp(prefix="evently-bench-"))
    settings = base.model_copy(update={"state_dir": state})
    embedded: EmbeddedStack | None = None
    if not (base.database_url and base.redis_url and base.temporal_address):
        embedded = EmbeddedStack(
            settings,
            temporal_ui=False,
            temporal_port=free_port(),
            temporal_persist=True,
            search_attributes=SEARCH_ATTRIBUTE_TYPES,
        )
    stack: BenchStack | None = None
    try:
        if embedded is not None:
            info = embedded.start()
            if pg_stat_statements and embedded.postgres is not None:
                _enable_pg_stat_statements(embedded)
            settings = settings.model_copy(
                update={
                    "database_url": info.database_url,
                    "redis_url": info.redis_url,
                    "temporal_address": info.temporal_address,
                }
            )
        from evently.infra.migrate import upgrade

        assert settings.database_url
        upgrade(settings.database_url)
        env = dict(os.environ)
        env.update(
            {
                "EVENTLY_STATE_DIR": str(state),
                "EVENTLY_DATABASE_URL": settings.database_url,
                "EVENTLY_REDIS_URL": settings.redis_url or "",
                "EVENTLY_TEMPORAL_ADDRESS": settings.temporal_address or "",
                "EVENTLY_HOLD_SECONDS": str(hold_seconds),
                "EVENTLY_RESERVE_RATE_LIMIT": "1000000",
                "EVENTLY_LOG_LEVEL": "WARNING",
                "EVENTLY_ENV": "development",
                "EVENTLY_LOG_FORMAT": "json",  # console tracebacks cost seconds of CPU each
            }
        )
        env.update(extra_env or {})
        settings = settings.model_copy(update={"hold_seconds": hold_seconds})
        log_dir = state / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        stack = BenchStack(
            settings=settings,
            env=env,
            state_dir=state,
            embedded=embedded,
            api_port=free_port(),
            log_dir=log_dir,
        )
        yield stack
    finally:
        if stack is not None:
            stack.stop_processes()
        if embedded is not None:
            embedded.stop()
        if keep_state:
            console.log(f"state and logs kept in {state}")
        else:
            shutil.rmtree(state, ignore_errors=True)


def _enable_pg_stat_statements(embedded: EmbeddedStack) -> None:
    pg = embedded.postgres
    assert pg is not None
    with (pg.data_dir / "postgresql.conf").open("a") as conf:
        conf.write(
            "\nshared_preload_libraries = 'pg_stat_statements'\npg_stat_statements.track = all\n"
        )
    pg.stop()
    pg.start()


# ---- data --------------------------------------------------------------------------------


async def create_event(conn: Any, capacity: int, *, name: str = "Flash sale") -> uuid.UUID:
    """A published event (asyncpg connection): its venue, capacity seats, all available."""
    venue_id, event_id = uuid.uuid4(), uuid.uuid4()
    starts = datetime.now(UTC) + timedelta(days=30)
    await conn.execute(
        "INSERT INTO venues (id, name, address, city, capacity) VALUES ($1, $2, $3, $4, $5)",
        venue_id,
        f"Bench hall {venue_id.hex[:6]}",
        "Main st 1",
        "Bergen",
        max(capacity, 1),
    )
    await conn.execute(
        """INSERT INTO events (id, venue_id, name, description, event_type, starts_at, ends_at,
           capacity, available, held, sold, price, currency, status, published_at)
           VALUES ($1, $2, $3, '', 'concert', $4, $5, $6, $6, 0, 0, $7, 'EUR', 'published',
                   now())""",
        event_id,
        venue_id,
        f"{name} {event_id.hex[:6]}",
        starts,
        starts + timedelta(hours=3),
        capacity,
        PRICE,
    )
    return event_id


async def create_buyers(conn: Any, settings: Settings, n: int) -> list[tuple[uuid.UUID, str]]:
    """n buyer accounts in one bulk INSERT (one precomputed argon2 hash) and their access
    tokens, minted directly: calling /register n times would benchmark argon2, not booking."""
    from evently.security import create_access_token, hash_password

    password_hash = hash_password("bench-password-not-secret")
    ids = [uuid.uuid4() for _ in range(n)]
    tag = uuid.uuid4().hex[:8]
    await conn.copy_records_to_table(
        "users",
        records=[
            (i, f"buyer-{tag}-{k}@bench.example", password_hash, "buyer") for k, i in enumerate(ids)
        ],
        columns=["id", "email", "password_hash", "role"],
    )
    long_lived = settings.model_copy(update={"access_token_minutes": 120})
    return [(i, create_access_token(long_lived, i, "buyer")[0]) for i in ids]


# ---- CPU accounting ----------------------------------------------------------------------


def _tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _own_cpu(p: psutil.Process) -> float:
    t = p.cpu_times()
    return float(t.user + t.system)


def _reaped_cpu(p: psutil.Process) -> float:
    t = p.cpu_times()
    return float(t.children_user + t.children_system)


class CpuMeter:
    """CPU-seconds used by every process of each component between ``start`` and ``stop``:
    live processes by their own counters (new ones fully), exited children through their
    parent's reaped-children counters (Postgres backends are reaped by the postmaster)."""

    def __init__(self, roots: dict[str, list[int]]) -> None:
        self.roots = roots
        self._start: dict[str, dict[tuple[int, float], float]] = {}
        self._start_reaped: dict[str, float] = {}

    def _snapshot(self) -> tuple[dict[str, dict[tuple[int, float], float]], dict[str, float]]:
        own: dict[str, dict[tuple[int, float], float]] = {}
        reaped: dict[str, float] = {}
        for name, pids in self.roots.items():
            own[name] = {}
            reaped[name] = 0.0
            for pid in pids:
                for p in _tree(pid):
                    with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                        own[name][(p.pid, p.create_time())] = _own_cpu(p)
                        reaped[name] += _reaped_cpu(p)
        return own, reaped

    def start(self) -> None:
        self._start, self._start_reaped = self._snapshot()

    def stop(self) -> dict[str, float]:
        own, reaped = self._snapshot()
        out: dict[str, float] = {}
        for name in self.roots:
            before = self._start.get(name, {})
            total = sum(v - before.get(k, 0.0) for k, v in own[name].items())
            total += reaped[name] - self._start_reaped.get(name, 0.0)
            out[name] = round(max(total, 0.0), 3)
        return out


class SelfCpu:
    """This process's CPU (the load generator) over an interval, and its share of one core."""

    def __init__(self) -> None:
        self.proc = psutil.Process()
        self.t0 = 0.0
        self.c0 = 0.0

    def start(self) -> None:
        self.t0, self.c0 = time.monotonic(), _own_cpu(self.proc)

    def stop(self) -> tuple[float, float]:
        cpu = _own_cpu(self.proc) - self.c0
        wall = max(time.monotonic() - self.t0, 1e-9)
        return round(cpu, 3), round(cpu / wall, 3)


# ---- the Postgres ceiling ----------------------------------------------------------------

_CEILING_SQL = """
WITH ins AS (
    INSERT INTO bookings (id, event_id, user_id, quantity, amount, currency, status,
                          workflow_id, hold_expires_at)
    SELECT $1, e.id, $3, 1, e.price, e.currency, 'held', $4, now() + interval '300 seconds'
    FROM events e WHERE e.id = $2
    RETURNING id
)
UPDATE events SET available = available - 1, held = held + 1
WHERE id = $2 AND available >= 1 AND EXISTS (SELECT 1 FROM ins)
RETURNING available
"""


async def pg_ceiling(
    dsn: str, buyers: Sequence[uuid.UUID], seats: int, concurrency: int, rounds: int = 3
) -> dict[str, Any]:
    """The same conditional seat update plus the booking insert, one autocommit statement per
    attempt, driven straight at Postgres with asyncpg at ``concurrency`` connections until
    ``seats`` are held. Each round uses a fresh event; the median holds/s is the ceiling.
    (A failed attempt's insert is rolled back with its statement: the CHECK-free fast path.)"""
    import asyncpg

    pool = await asyncpg.create_pool(dsn, min_size=concurrency, max_size=concurrency)
    assert pool is not None
    results: list[float] = []
    try:
        for _ in range(rounds):
            async with pool.acquire() as c:
                event_id = await create_event(c, seats, name="Ceiling")
            users = iter(list(buyers) * (1 + (seats * 2) // max(len(buyers), 1)))
            held = 0
            done = asyncio.Event()

            async def client(
                event_id: uuid.UUID, users: Iterator[uuid.UUID], done: asyncio.Event
            ) -> None:
                nonlocal held
                async with pool.acquire() as conn:
                    while not done.is_set():
                        bid = uuid.uuid4()
                        row = await conn.fetchval(
                            _CEILING_SQL, bid, event_id, next(users), f"ceiling-{bid}"
                        )
                        if row is None:  # sold out (the data-modifying CTE kept the row)
                            done.set()
                        else:
                            held += 1

            t0 = time.perf_counter()
            await asyncio.gather(*(client(event_id, users, done) for _ in range(concurrency)))
            results.append(held / (time.perf_counter() - t0))
            async with pool.acquire() as c:  # leave nothing behind for the checker
                await c.execute("DELETE FROM bookings WHERE event_id = $1", event_id)
                await c.execute("DELETE FROM ticket_types WHERE event_id = $1", event_id)
                await c.execute("DELETE FROM events WHERE id = $1 RETURNING venue_id", event_id)
    finally:
        await pool.close()
    results.sort()
    return {"pg_ceiling_rps": round(results[len(results) // 2], 1), "pg_ceiling_rounds": results}
