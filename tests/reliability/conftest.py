"""A private stack for the reliability suite: its OWN embedded Postgres, Redis and
file-persisted Temporal dev server, the API as a uvicorn subprocess and a worker subprocess.
Tests here kill and restart these (never the session fixtures' servers other tests use).

Short hold window (HOLD_SECONDS) and reserve timeout, so expiries and failures happen within a
test; every client call is bounded by CALL_TIMEOUT.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bench.common import BenchStack, bench_stack
from tests.support.reliability import CALL_TIMEOUT, HOLD_SECONDS, RESERVE_TIMEOUT


@pytest.fixture(scope="module")
def rstack() -> Iterator[BenchStack]:
    with bench_stack(
        hold_seconds=HOLD_SECONDS,
        force_embedded=True,
        extra_env={
            "EVENTLY_RESERVE_TIMEOUT_SECONDS": str(RESERVE_TIMEOUT),
            "EVENTLY_WORKER_GRACEFUL_SHUTDOWN_SECONDS": "2",
        },
    ) as st:
        st.start_api()
        st.start_worker()
        st.wait_ready()
        yield st
        reconcile(st)


def reconcile(st: BenchStack) -> None:
    """Issue 31: after each module's faults, ``evently check`` over the WHOLE stack (every
    event, booking, payment, invoice and credit note the module made, money to the cent) must
    find 0 mismatches; its counts are printed (``pytest -s``) as the suite's report."""
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "check"],
        env={**st.env, "COLUMNS": "300"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    said = (done.stdout + done.stderr).strip()
    print(f"\nreliability stack reconciled: {said}")
    assert done.returncode == 0, said


@pytest.fixture
async def api(rstack: BenchStack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=rstack.api_url, timeout=CALL_TIMEOUT) as client:
        yield client


@pytest.fixture
async def db(rstack: BenchStack) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(rstack.database_url, pool_pre_ping=True)
    yield engine
    await engine.dispose()
