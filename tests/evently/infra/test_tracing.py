"""Tracing (evently/infra/tracing.py): reserve → confirm is ONE connected trace, from the
caller's span through the API's server spans, the Temporal client calls, the workflow and its
activities, down to their Postgres statements and Redis commands; and with no
EVENTLY_OTLP_ENDPOINT nothing is installed at all.

The API and the workers are traced like two processes (own tracer provider, service name,
clients), on a private Temporal dev server: the session's workers (untraced) also poll the
production task queues of the session server and could take the tasks.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, set_span_in_context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from api.app import create_app
from evently.infra.embedded import EmbeddedTemporal, free_port
from evently.infra.resources import Resources, open_resources
from evently.infra.tracing import API_SERVICE, WORKER_SERVICE, Tracing, setup_tracing, traces_url
from evently.settings import Settings
from tests.factories import make_account, make_event
from workers.main import build_workers
from workflows import common
from workflows.booking.contract import CHARGE, CONFIRM_BOOKING, RESERVE_SEATS, WORKFLOW_NAME
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
        yield TracedStack(exporter, caller, api_res, app)
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
    assert not getattr(app, "_is_instrumented_by_opentelemetry", False)
    layer: object = app.build_middleware_stack()
    layers = []
    while layer is not None:
        layers.append(type(layer).__name__)
        layer = getattr(layer, "app", None)
    assert not [n for n in layers if "OpenTelemetry" in n], layers
    client = await connect(f"127.0.0.1:{free_port()}", "default", lazy=True)
    assert client.config()["interceptors"] == []


def test_the_endpoint_is_the_collector_base_url() -> None:
    assert traces_url("http://collector:4318") == "http://collector:4318/v1/traces"
    assert traces_url("http://collector:4318/") == "http://collector:4318/v1/traces"
    assert traces_url("https://c.example/v1/traces") == "https://c.example/v1/traces"


def _unused(_: Tracing) -> None:  # keeps the import honest for type checkers
    return None
