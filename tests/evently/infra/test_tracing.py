"""Tracing (evently/infra/tracing.py): reserve → confirm is ONE connected trace, from the
caller's span through the API's server spans, the Temporal client calls, the workflow and its
activities, down to their Postgres statements and Redis commands (with the fast and the strict
workflow runner; a traced history replays without new spans); the real processes export it
over OTLP/HTTP; and with no EVENTLY_OTLP_ENDPOINT nothing is installed at all.

The API and the workers are traced like two processes (own tracer provider, service name,
clients), on a private Temporal dev server: the session's workers (untraced) also poll the
production task queues of the session server and could take the tasks.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, set_span_in_context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from temporalio.client import Client
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from api.app import create_app
from evently.infra.embedded import EmbeddedTemporal, free_port
from evently.infra.resources import Resources, open_resources
from evently.infra.tracing import API_SERVICE, WORKER_SERVICE, Tracing, setup_tracing, traces_url
from evently.settings import Settings
from tests.support.factories import make_account, make_event
from tests.support.servers import api_process
from workers.main import build_workers
from workflows import common
from workflows.booking.contract import (
    CHARGE,
    CONFIRM_BOOKING,
    RESERVE_SEATS,
    WORKFLOW_NAME,
    booking_workflow_id,
)
from workflows.booking.workflow import BookingWorkflow
from workflows.connection import connect


@pytest.fixture(scope="module")
def private_temporal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = EmbeddedTemporal(
        tmp_path_factory.mktemp("temporal-tracing"),
        port=free_port(),
        ui_port=None,
        persist=False,
        search_attributes=common.SEARCH_ATTRIBUTE_TYPES,
    )
    server.start()
    try:
        yield server.address
    finally:
        server.stop()


@dataclass
class TracedStack:
    exporter: InMemorySpanExporter
    caller: TracerProvider  # the client side, whose span the requests continue
    api: Resources
    app: FastAPI
    temporal: Client
    worker_tracing: Tracing


@contextlib.asynccontextmanager
async def traced_stack(
    settings: Settings, temporal_address: str, *, strict_sandbox: bool
) -> AsyncIterator[TracedStack]:
    exporter = InMemorySpanExporter()
    api_tracing = setup_tracing(settings, API_SERVICE, exporter=exporter)
    worker_tracing = setup_tracing(settings, WORKER_SERVICE, exporter=exporter)
    assert api_tracing is not None
    assert worker_tracing is not None
    caller = TracerProvider(resource=Resource.create({"service.name": "buyer-app"}))
    caller.add_span_processor(SimpleSpanProcessor(exporter))
    async with (
        open_resources(settings) as api_res,
        open_resources(settings) as worker_res,
        contextlib.AsyncExitStack() as running,
    ):
        namespace = settings.temporal_namespace
        api_tracing.instrument_resources(api_res)
        worker_tracing.instrument_resources(worker_res)
        api_client = await connect(temporal_address, namespace, tracer=api_tracing.tracer)
        worker_client = await connect(temporal_address, namespace, tracer=worker_tracing.tracer)
        queues = list(common.QUEUES.values())
        for w in build_workers(
            worker_client, worker_res, queues, settings, strict_sandbox=strict_sandbox
        ):
            await running.enter_async_context(w)
        app = create_app(settings, api_res, api_client, tracing=api_tracing)
        yield TracedStack(exporter, caller, api_res, app, api_client, worker_tracing)
    for provider in (api_tracing, worker_tracing, caller):
        provider.shutdown()


def _service(span: ReadableSpan) -> object:
    return span.resource.attributes.get("service.name")


def _named(spans: Sequence[ReadableSpan], name: str) -> ReadableSpan:
    found = [s for s in spans if s.name == name]
    assert len(found) == 1, (name, sorted(s.name for s in spans))
    return found[0]


def _below(spans: Sequence[ReadableSpan], ancestor: ReadableSpan) -> list[ReadableSpan]:
    """Every span under ``ancestor``, at any depth."""
    assert ancestor.context is not None
    children: dict[int, list[ReadableSpan]] = {}
    for s in spans:
        if s.parent is not None:
            children.setdefault(s.parent.span_id, []).append(s)
    out: list[ReadableSpan] = []
    pending = [ancestor.context.span_id]
    while pending:
        for child in children.get(pending.pop(), []):
            assert child.context is not None
            out.append(child)
            pending.append(child.context.span_id)
    return out


def _db(spans: Sequence[ReadableSpan], system: str) -> list[ReadableSpan]:
    return [s for s in spans if (s.attributes or {}).get("db.system") == system]


@pytest.mark.parametrize("strict_sandbox", [False, True], ids=["fast-runner", "strict-runner"])
async def test_reserve_then_confirm_is_one_connected_trace(
    settings: Settings, private_temporal: str, strict_sandbox: bool
) -> None:
    async with traced_stack(settings, private_temporal, strict_sandbox=strict_sandbox) as stack:
        buyer = await make_account(stack.api)
        event = await make_event(stack.api, capacity=5, price=Decimal("30.00"))
        transport = httpx.ASGITransport(app=stack.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            stack.exporter.clear()  # the set-up's statements are not part of the story
            tracer = stack.caller.get_tracer("buyer-app")
            # the caller's span is NOT current here: like a separate process, the API learns
            # of it only from the traceparent header (one traceparent for both calls)
            checkout = tracer.start_span("checkout", kind=SpanKind.CLIENT)
            headers = dict(buyer.headers)
            TraceContextTextMapPropagator().inject(headers, set_span_in_context(checkout))
            r = await http.post(
                "/api/v1/bookings/reserve",
                json={"event_id": str(event.id), "quantity": 2},
                headers=headers,
            )
            assert r.status_code == 201, r.text
            booking_id = r.json()["booking_id"]
            r = await http.post(
                "/api/v1/bookings/confirm",
                json={"booking_id": booking_id, "payment_method": "pm_card_visa"},
                headers=headers,
            )
            assert r.status_code == 200, r.text
            assert r.json()["status"] == "confirmed"
            checkout.end()
            await asyncio.sleep(0.5)  # spans that end just after the answer
            spans = stack.exporter.get_finished_spans()
            # a worker that lost the workflow from its cache replays it with the interceptor:
            # the traced history replays, and a replay makes no spans
            history = await stack.temporal.get_workflow_handle(
                booking_workflow_id(uuid.UUID(booking_id))
            ).fetch_history()
            await Replayer(
                workflows=[BookingWorkflow],
                data_converter=pydantic_data_converter,
                interceptors=[TracingInterceptor(stack.worker_tracing.tracer)],
            ).replay_workflow(history)
            assert len(stack.exporter.get_finished_spans()) == len(spans)

    # one trace ...
    root = checkout.get_span_context()
    assert {s.context.trace_id for s in spans if s.context} == {root.trace_id}
    # ... and one tree: the caller's span is the only root, every other parent is in the set
    ids = {s.context.span_id for s in spans if s.context}
    roots = [s for s in spans if s.parent is None]
    assert [s.name for s in roots] == ["checkout"]
    orphans = [s.name for s in spans if s.parent is not None and s.parent.span_id not in ids]
    assert not orphans, orphans

    reserve_http = _named(spans, "POST /api/v1/bookings/reserve")
    confirm_http = _named(spans, "POST /api/v1/bookings/confirm")
    for server_span in (reserve_http, confirm_http):
        assert server_span.kind is SpanKind.SERVER
        assert server_span.parent is not None
        assert server_span.parent.span_id == root.span_id
        assert _service(server_span) == API_SERVICE
    start = _named(spans, f"StartUpdateWithStartWorkflow:{WORKFLOW_NAME}")
    assert start in _below(spans, reserve_http)
    assert _named(spans, "StartWorkflowUpdate:pay") in _below(spans, confirm_http)

    under_start = _below(spans, start)
    run = _named(spans, f"RunWorkflow:{WORKFLOW_NAME}")
    reserve_seats = _named(spans, f"RunActivity:{RESERVE_SEATS}")  # a local activity
    charge = _named(spans, f"RunActivity:{CHARGE}")  # the payments queue
    confirm_booking = _named(spans, f"RunActivity:{CONFIRM_BOOKING}")
    for span in (run, reserve_seats, charge, confirm_booking):
        assert span in under_start, span.name
        assert _service(span) == WORKER_SERVICE, span.name
    _named(spans, "HandleUpdate:reserve")
    _named(spans, "HandleUpdate:pay")

    # the activities' own Postgres statements and Redis commands
    reserve_sql = _db(_below(spans, reserve_seats), "postgresql")
    assert any("UPDATE events" in str(s.attributes.get("db.statement")) for s in reserve_sql), [
        s.attributes for s in reserve_sql
    ]
    assert _db(_below(spans, confirm_booking), "postgresql")
    assert _db(_below(spans, charge), "postgresql")
    worker_redis = [s for s in _db(spans, "redis") if _service(s) == WORKER_SERVICE]
    assert worker_redis, sorted(s.name for s in spans)
    # and the API's (the sold-out gate, the rate limit)
    assert _db(_below(spans, reserve_http), "redis")
    assert {_service(s) for s in spans} == {"buyer-app", API_SERVICE, WORKER_SERVICE}


async def test_without_an_endpoint_nothing_is_installed(settings: Settings, tmp_path: Path) -> None:
    assert settings.otlp_endpoint is None
    assert setup_tracing(settings, API_SERVICE) is None
    assert setup_tracing(settings, WORKER_SERVICE) is None
    app = create_app(settings)  # the production path: it would set tracing up itself
    # FastAPI's built-in telemetry is off too, even were a global provider configured
    assert not app._native_telemetry.enabled()
    assert app._telemetry["tracer_provider"] is None
    client = await connect(f"127.0.0.1:{free_port()}", "default", lazy=True)
    assert client.config()["interceptors"] == []


def test_the_endpoint_is_the_collector_base_url() -> None:
    assert traces_url("http://collector:4318") == "http://collector:4318/v1/traces"
    assert traces_url("http://collector:4318/") == "http://collector:4318/v1/traces"
    assert traces_url("https://c.example/v1/traces") == "https://c.example/v1/traces"


# ---- the production wiring: real processes exporting over OTLP/HTTP ---------------------------


class Collector:
    """A minimal OTLP/HTTP trace receiver: (service, span name, trace id) of every span."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, str, str]] = []
        self.lock = threading.Lock()
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                request = ExportTraceServiceRequest.FromString(body)
                with collector.lock:
                    for resource_spans in request.resource_spans:
                        service = next(
                            a.value.string_value
                            for a in resource_spans.resource.attributes
                            if a.key == "service.name"
                        )
                        for scope_spans in resource_spans.scope_spans:
                            for span in scope_spans.spans:
                                collector.spans.append((service, span.name, span.trace_id.hex()))
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200 if self.path == "/v1/traces" else 404)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def of(self, trace_id: str) -> set[tuple[str, str]]:
        with self.lock:
            return {(service, name) for service, name, t in self.spans if t == trace_id}


@contextlib.contextmanager
def worker_process(settings: Settings, **env: str) -> Iterator[None]:
    """`evently worker` for the booking and payments queues; ready once the SDK polls."""
    port = free_port()
    full = {k: v for k, v in os.environ.items() if not k.startswith("EVENTLY_")}
    full.update(
        {
            "EVENTLY_ENV": "test",
            "EVENTLY_STATE_DIR": str(settings.state_path),
            "EVENTLY_DATABASE_URL": settings.database_url or "",
            "EVENTLY_REDIS_URL": settings.redis_url or "",
            "EVENTLY_LOG_FORMAT": "json",
            **env,
        }
    )
    cmd = [sys.executable, "-m", "cli.main", "worker", "--queues", "booking,payments"]
    cmd += ["--metrics-port", str(port), "--metrics-host", "127.0.0.1"]
    proc = subprocess.Popen(cmd, env=full)
    try:
        deadline = time.monotonic() + 60
        while "temporal_num_pollers" not in _scrape(port):
            assert proc.poll() is None, "the worker exited"
            assert time.monotonic() < deadline, "the worker did not start"
            time.sleep(0.2)
        yield
    finally:
        proc.send_signal(signal.SIGTERM)  # a graceful stop exports what is buffered
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _scrape(port: int) -> str:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
    except httpx.HTTPError:
        return ""


async def test_api_and_worker_processes_export_one_trace_over_otlp(
    settings: Settings, private_temporal: str, resources: Resources
) -> None:
    collector = Collector()
    env = {
        "EVENTLY_TEMPORAL_ADDRESS": private_temporal,
        "EVENTLY_OTLP_ENDPOINT": collector.url,
        "OTEL_BSP_SCHEDULE_DELAY": "100",  # export batches every 100 ms (default 5 s)
    }
    buyer = await make_account(resources)
    event = await make_event(resources, capacity=5)
    caller = TracerProvider()
    checkout = caller.get_tracer("buyer-app").start_span("checkout")
    headers = dict(buyer.headers)
    TraceContextTextMapPropagator().inject(headers, set_span_in_context(checkout))
    trace_id = f"{checkout.get_span_context().trace_id:032x}"
    with worker_process(settings, **env), api_process(settings, **env) as url:
        r = httpx.post(
            f"{url}/api/v1/bookings/reserve",
            json={"event_id": str(event.id), "quantity": 1},
            headers=headers,
            timeout=30,
        )
        assert r.status_code == 201, r.text
        expected = {
            (API_SERVICE, "POST /api/v1/bookings/reserve"),
            (API_SERVICE, f"StartUpdateWithStartWorkflow:{WORKFLOW_NAME}"),
            (WORKER_SERVICE, f"RunWorkflow:{WORKFLOW_NAME}"),
            (WORKER_SERVICE, f"RunActivity:{RESERVE_SEATS}"),
        }
        deadline = time.monotonic() + 30
        while not expected <= collector.of(trace_id):
            assert time.monotonic() < deadline, sorted(collector.of(trace_id))
            await asyncio.sleep(0.2)
    found = collector.of(trace_id)
    assert {n for s, n in found if s == WORKER_SERVICE} & {"WITH", "UPDATE", "INSERT"}, found
    collector.server.shutdown()
