"""OpenTelemetry tracing: one trace from an HTTP request through its workflow to the activities
and their Postgres and Redis calls, exported over OTLP/HTTP (protobuf).

On only when ``EVENTLY_OTLP_ENDPOINT`` is set (or a test passes an exporter): then
:func:`setup_tracing` returns a :class:`Tracing` and the processes wire it in

- the API (api/app.py): a server span per request (FastAPI's built-in OpenTelemetry support,
  around the whole middleware stack, so the reserve fast path and the observability
  middleware run inside it);
- the API and the workers: their Postgres statements (SQLAlchemy events on THEIR engine) and
  Redis commands (their client), through :meth:`Tracing.instrument_resources`;
- the Temporal client (workflows/connection.py ``connect(tracer=...)``): temporalio's
  ``TracingInterceptor``, which carries the context in workflow/update/activity headers and,
  on a worker built on that client, gives the workflow and its activities their spans.

Unset, :func:`setup_tracing` returns None and nothing is installed: no span, no engine
listener, no wrapped Redis client, no interceptor, FastAPI's own telemetry switched off; this
module's OpenTelemetry SDK imports are not even made. Instrumentation is per object (this app,
this engine, this Redis client), never a process-wide patch, and this module sets no global
tracer provider: tests trace one stack without touching the rest of the process. Standard
``OTEL_*`` variables still apply where the SDK reads them (``OTEL_TRACES_SAMPLER``,
``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_BSP_*``).
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from evently.settings import Settings

if TYPE_CHECKING:
    from fastapi.telemetry import TelemetryConfig
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Tracer

    from evently.infra.resources import Resources

API_SERVICE = "evently-api"
WORKER_SERVICE = "evently-worker"
UNTRACED_PATHS = frozenset({"/healthz", "/health/ready", "/metrics"})  # probes and scrapes

# FastAPI's built-in telemetry would trace, meter and log through any GLOBAL provider someone
# configures; EVENTLY_OTLP_ENDPOINT is the one switch, so off means off (and no per-request
# provider look-ups)
TELEMETRY_OFF: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}


def _untraced(scope: MutableMapping[str, Any]) -> bool:
    return scope.get("path") in UNTRACED_PATHS


def traces_url(endpoint: str) -> str:
    """The collector's base URL (``http://collector:4318``) → its traces URL, as the
    ``OTEL_EXPORTER_OTLP_ENDPOINT`` convention has it; a URL ending in /v1/traces is kept."""
    endpoint = endpoint.rstrip("/")
    return endpoint if endpoint.endswith("/v1/traces") else f"{endpoint}/v1/traces"


@dataclass
class Tracing:
    """One process's tracer provider and the instrumentation it hands out."""

    provider: TracerProvider
    service: str

    @property
    def tracer(self) -> Tracer:
        return self.provider.get_tracer("evently")

    def fastapi_telemetry(self) -> TelemetryConfig:
        """FastAPI's own OpenTelemetry support, on this provider: a server span per request
        (continuing the caller's W3C ``traceparent``) with its dependencies, endpoint and
        serialization spans. Probes and scrapes are not traced; metrics stay Prometheus'."""
        return {
            "tracer_provider": self.provider,
            "metrics": False,
            "logs": False,
            "exclude": _untraced,
        }

    def instrument_resources(self, res: Resources) -> None:
        """A span per Postgres statement on this engine and per Redis command on this client."""
        from opentelemetry.instrumentation.redis import RedisInstrumentor
        from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
        from opentelemetry.metrics import NoOpMeter

        # EngineTracer is what SQLAlchemyInstrumentor().instrument(engine=...) builds, minus its
        # process-wide wrapping of create_engine and Engine.connect (every engine of the process
        # would then report): the statements of THIS engine only
        EngineTracer(  # type: ignore[no-untyped-call]
            self.provider.get_tracer("opentelemetry.instrumentation.sqlalchemy"),
            res.engine.sync_engine,
            NoOpMeter("evently").create_up_down_counter("db.client.connections.usage"),
        )
        RedisInstrumentor.instrument_client(res.redis, tracer_provider=self.provider)

    def shutdown(self) -> None:
        """Export what is buffered and stop (end of the process or of a test)."""
        self.provider.shutdown()


def setup_tracing(
    settings: Settings, service: str, *, exporter: SpanExporter | None = None
) -> Tracing | None:
    """The process's tracing, or None (nothing installed) without ``EVENTLY_OTLP_ENDPOINT``.

    ``exporter`` (tests: the SDK's ``InMemorySpanExporter``) replaces the OTLP exporter and
    exports each span as it ends; the OTLP exporter sends batches from a background thread.
    """
    if exporter is None and not settings.otlp_endpoint:
        return None
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    processor: SpanProcessor
    if exporter is not None:
        processor = SimpleSpanProcessor(exporter)
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        assert settings.otlp_endpoint is not None
        processor = BatchSpanProcessor(
            OTLPSpanExporter(endpoint=traces_url(settings.otlp_endpoint), timeout=10)
        )
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(processor)
    return Tracing(provider, service)
