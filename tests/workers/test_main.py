"""Worker pools as ops run them: real `evently worker` processes on the real dev server.

Each test gets its own Temporal namespace, so only the worker processes started here poll
it (the in-process workers of other tests live in the default namespace). The activity is
the product's own `index_event` (search queue), driven by EventIndexSyncWorkflow; to catch it
mid-activity the test holds a row lock on the event's search document, so the activity's
upsert waits inside Postgres until the test lets go.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import httpx
import pytest
import structlog
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from temporalio.api.enums.v1 import EventType, PendingActivityState
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

from activities.search import SearchIndexActivities
from evently.infra.embedded import free_port, port_open
from evently.infra.resources import Resources
from evently.search.postgres import PostgresSearchIndex
from evently.settings import Settings
from tests.support.factories import make_event
from workers.main import LogContextInterceptor
from workflows import common
from workflows.search_sync.client import request_index_write
from workflows.search_sync.contract import search_sync_workflow_id
from workflows.search_sync.workflow import EventIndexSyncWorkflow

HOST = socket.gethostname()


@dataclass
class WorkerProc:
    proc: subprocess.Popen[bytes]
    metrics_port: int

    @property
    def identity(self) -> str:
        return f"{self.proc.pid}@{HOST}"


@dataclass
class Pool:
    settings: Settings
    namespace: str
    procs: list[WorkerProc] = field(default_factory=list)

    def start(self, queues: str, *, grace: float) -> WorkerProc:
        s = self.settings
        env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTLY_")}
        env.update(
            {
                "EVENTLY_ENV": "test",
                "EVENTLY_STATE_DIR": str(s.state_path),
                "EVENTLY_DATABASE_URL": s.database_url or "",
                "EVENTLY_REDIS_URL": s.redis_url or "",
                "EVENTLY_TEMPORAL_ADDRESS": s.temporal_address or "",
                "EVENTLY_TEMPORAL_NAMESPACE": self.namespace,
                "EVENTLY_WORKER_GRACEFUL_SHUTDOWN_SECONDS": str(grace),
                "EVENTLY_LOG_FORMAT": "json",
            }
        )
        port = free_port()
        cmd = [sys.executable, "-m", "cli.main", "worker", "--queues", queues]
        cmd += ["--metrics-port", str(port), "--metrics-host", "127.0.0.1"]
        w = WorkerProc(subprocess.Popen(cmd, env=env), port)
        self.procs.append(w)
        return w

    async def wait_polling(self, w: WorkerProc) -> None:
        """Ready when its metrics port answers (it opens before the workers start polling)
        and the SDK reports pollers."""
        deadline = time.monotonic() + 60
        async with httpx.AsyncClient() as http:
            while True:
                assert w.proc.poll() is None, "the worker process exited"
                assert time.monotonic() < deadline, "the worker did not start"
                if port_open("127.0.0.1", w.metrics_port):
                    # a process still importing on a busy machine may take longer than one
                    # request's timeout to answer: not ready yet, ask again until the deadline
                    with contextlib.suppress(httpx.TimeoutException):
                        r = await http.get(f"http://127.0.0.1:{w.metrics_port}/metrics")
                        if "temporal_num_pollers" in r.text:
                            return
                await asyncio.sleep(0.2)

    async def start_polling(self, queues: str, *, grace: float, n: int = 1) -> list[WorkerProc]:
        """One after the other: each picks its ports while the previous ones hold theirs."""
        out = []
        for _ in range(n):
            for attempt in range(3):
                w = self.start(queues, grace=grace)
                try:
                    await self.wait_polling(w)
                    break
                except AssertionError:
                    # its metrics port taken by another process between the pick and the
                    # bind ("address already in use", seen in CI): again on a fresh port
                    if w.proc.poll() is None or attempt == 2:
                        raise
                    self.procs.remove(w)
            out.append(w)
        return out

    def stop_all(self) -> None:
        for w in self.procs:
            if w.proc.poll() is None:
                w.proc.kill()
                w.proc.wait(10)


@pytest.fixture
def pool(settings: Settings, namespace: str) -> Iterator[Pool]:
    p = Pool(settings, namespace)
    yield p
    p.stop_all()


async def _activity_workers(handle: WorkflowHandle[object, object]) -> list[str]:
    """Identities of the workers that completed `index_event` in this run's history."""
    started: dict[int, str] = {}
    completed = []
    async for e in handle.fetch_history_events():
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            started[e.event_id] = e.activity_task_started_event_attributes.identity
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            a = e.activity_task_completed_event_attributes
            completed.append(a.identity or started[a.started_event_id])
    return completed


@pytest.fixture
async def locked_document(resources: Resources) -> AsyncIterator[object]:
    """Yields a function lock(event_id) that row-locks the event's search document until
    the returned release() is awaited (or the test ends)."""
    conns = []

    async def lock(event_id: uuid.UUID) -> object:
        conn = await resources.engine.connect()
        conns.append(conn)
        await conn.begin()
        row = await conn.execute(
            text("SELECT 1 FROM search_documents WHERE event_id = :id FOR UPDATE"),
            {"id": event_id},
        )
        assert row.one_or_none() is not None, "the document must exist to be locked"

        async def release() -> None:
            await conn.rollback()
            await conn.close()

        return release

    yield lock
    for c in conns:
        if not c.closed:
            await c.close()


async def _indexed_once(ns_client: Client, event_id: uuid.UUID) -> None:
    await request_index_write(ns_client, event_id)
    await asyncio.wait_for(
        ns_client.get_workflow_handle(search_sync_workflow_id(event_id)).result(), 30
    )


async def _wait_activity_started(
    handle: WorkflowHandle[object, object], timeout: float = 20
) -> str:
    """The identity of the worker that is running the pending activity."""
    deadline = time.monotonic() + timeout
    while True:
        desc = await handle.describe()
        for pa in desc.raw_description.pending_activities:
            if pa.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED:
                return pa.last_worker_identity
        assert time.monotonic() < deadline, "the activity never started"
        await asyncio.sleep(0.1)


async def _exit_code(w: WorkerProc, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while (rc := w.proc.poll()) is None:
        assert time.monotonic() < deadline, "the worker did not exit"
        await asyncio.sleep(0.1)
    return rc


async def test_two_workers_on_one_queue_share_the_load(pool: Pool, ns_client: Client) -> None:
    a, b = await pool.start_polling("booking,search", grace=5, n=2)

    # index writes for 40 (unknown) events: the real activity deletes their documents
    ids = [uuid.uuid4() for _ in range(40)]
    await asyncio.gather(*(request_index_write(ns_client, i) for i in ids))
    handles = [ns_client.get_workflow_handle(search_sync_workflow_id(i)) for i in ids]
    await asyncio.wait_for(asyncio.gather(*(h.result() for h in handles)), 60)
    done_by = [who for h in handles for who in await _activity_workers(h)]
    assert len(done_by) == 40
    assert set(done_by) == {a.identity, b.identity}, done_by

    # each worker's metrics port shows the SDK's task metrics and our process registry
    async with httpx.AsyncClient(timeout=30) as http:
        for w in (a, b):
            body = (await http.get(f"http://127.0.0.1:{w.metrics_port}/metrics")).text
            names = {f.name for f in text_string_to_metric_families(body)}
            assert "temporal_activity_execution_latency_seconds" in names, sorted(names)
            assert "temporal_activity_schedule_to_start_latency_seconds" in names
            assert "temporal_worker_task_slots_available" in names
            assert "evently_bookings" in names  # our registry, merged in
            assert "process_cpu_seconds" in names


async def test_sigterm_mid_activity_finishes_it_within_the_grace_period_and_exits_0(
    pool: Pool, ns_client: Client, resources: Resources, locked_document: object
) -> None:
    event = await make_event(resources)
    (a,) = await pool.start_polling("booking,search", grace=20)
    await _indexed_once(ns_client, event.id)

    release = await locked_document(event.id)  # type: ignore[operator]
    await request_index_write(ns_client, event.id)  # a new run: its upsert now waits
    handle = ns_client.get_workflow_handle(search_sync_workflow_id(event.id))
    assert await _wait_activity_started(handle) == a.identity

    a.proc.send_signal(signal.SIGTERM)
    await asyncio.sleep(1.0)
    assert a.proc.poll() is None, "the worker must wait for its in-flight activity"
    await release()
    assert await _exit_code(a, timeout=15) == 0
    # it reported the activity's completion before exiting (the workflow itself finishes
    # when any booking-queue worker picks up its next task)
    assert await _activity_workers(handle) == [a.identity]
    (b,) = await pool.start_polling("booking", grace=5)
    await asyncio.wait_for(handle.result(), 20)
    assert await _activity_workers(handle) == [a.identity]
    b.proc.send_signal(signal.SIGTERM)
    assert await _exit_code(b, timeout=20) == 0


async def test_sigterm_past_the_grace_period_hands_the_activity_to_another_worker(
    pool: Pool, ns_client: Client, resources: Resources, locked_document: object
) -> None:
    event = await make_event(resources)
    a, b = await pool.start_polling("booking,search", grace=1, n=2)
    await _indexed_once(ns_client, event.id)

    release = await locked_document(event.id)  # type: ignore[operator]
    await request_index_write(ns_client, event.id)
    handle = ns_client.get_workflow_handle(search_sync_workflow_id(event.id))
    busy = await _wait_activity_started(handle)
    first, other = (a, b) if busy == a.identity else (b, a)
    assert busy == first.identity

    t0 = time.monotonic()
    first.proc.send_signal(signal.SIGTERM)
    assert await _exit_code(first, timeout=20) == 0
    assert time.monotonic() - t0 >= 0.9  # it waited the grace period for the activity
    await release()
    await asyncio.wait_for(handle.result(), 30)
    assert await _activity_workers(handle) == [other.identity]

    other.proc.send_signal(signal.SIGTERM)
    assert await _exit_code(other, timeout=20) == 0


class _ContextRecorder(logging.Handler):
    """Remembers the structlog context at the moment each record is emitted."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.contexts: list[dict[str, object]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.contexts.append(dict(structlog.contextvars.get_contextvars()))


async def test_activity_log_lines_carry_workflow_and_activity_context(
    ns_client: Client, resources: Resources
) -> None:
    """A real activity failure (its search table does not exist) logged by the SDK carries
    the context our interceptor bound: workflow id, activity, attempt, task queue."""
    event = await make_event(resources)
    broken = SearchIndexActivities(
        dataclasses.replace(
            resources, search=PostgresSearchIndex(resources.engine, table="no_such_table")
        )
    )
    recorder = _ContextRecorder()
    sdk_log = logging.getLogger("temporalio.activity")
    sdk_log.addHandler(recorder)
    workers = [
        Worker(
            ns_client,
            task_queue=common.BOOKING,
            workflows=[EventIndexSyncWorkflow],
            interceptors=[LogContextInterceptor()],
        ),
        Worker(
            ns_client,
            task_queue=common.SEARCH,
            activities=[broken.index_event],
            interceptors=[LogContextInterceptor()],
        ),
    ]
    try:
        async with workers[0], workers[1]:
            await request_index_write(ns_client, event.id)
            deadline = time.monotonic() + 20
            while not recorder.contexts:
                assert time.monotonic() < deadline, "the failing activity was never logged"
                await asyncio.sleep(0.05)
            handle = ns_client.get_workflow_handle(search_sync_workflow_id(event.id))
            await handle.terminate("test over")
    finally:
        sdk_log.removeHandler(recorder)
    ctx = recorder.contexts[0]
    assert ctx["workflow_id"] == search_sync_workflow_id(event.id)
    assert ctx["workflow_type"] == "EventIndexSyncWorkflow"
    assert ctx["activity"] == "index_event"
    assert ctx["attempt"] == 1
    assert ctx["task_queue"] == common.SEARCH
    # and it did not leak into this (the test's) context
    assert "workflow_id" not in structlog.contextvars.get_contextvars()
