"""Worker entry point: poll the chosen task queues until SIGINT/SIGTERM, then shut down
gracefully (stop polling, let in-flight activities finish within the grace period, exit 0).

Metrics: with a metrics port (``--metrics-port`` / ``EVENTLY_WORKER_METRICS_PORT``) the worker
serves ONE Prometheus endpoint, ``http://<host>:<port>/metrics``, that merges

- the Temporal SDK's runtime metrics (``temporal_*``: task latencies, schedule-to-start,
  slots available/used, poll outcomes, sticky cache), which the SDK's Rust core exports on
  a private loopback port, and
- this process's prometheus_client registry (``evently_*`` counters the activities move,
  e.g. ``evently_bookings_total{outcome}``, plus ``process_*``/``python_*``).

Logs: every log line written while an activity runs carries ``workflow_id``,
``workflow_type``, ``activity``, ``attempt``, ``task_queue`` and, for bookings,
``booking_id`` (structlog contextvars bound by an activity interceptor).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import structlog
import uvloop
from prometheus_client import REGISTRY, generate_latest
from temporalio.client import Client
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
    PollerBehaviorSimpleMaximum,
    UnsandboxedWorkflowRunner,
    Worker,
    WorkflowRunner,
)
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from evently.infra.resources import Resources, open_resources
from evently.infra.tracing import WORKER_SERVICE, setup_tracing
from evently.settings import Settings
from workers.registry import queue_specs
from workflows import common
from workflows.connection import connect_configured

log = logging.getLogger("evently.worker")


def parse_queues(spec: str) -> list[str]:
    names = [q.strip() for q in spec.split(",") if q.strip()]
    unknown = [q for q in names if q not in common.QUEUES]
    if unknown or not names:
        raise ValueError(
            f"unknown queue(s) {unknown or spec!r}; choose from {', '.join(common.QUEUES)}"
        )
    return [common.QUEUES[q] for q in names]


# ---- log context for activities ----------------------------------------------------------


class _ActivityLogContext(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        from temporalio import activity

        info = activity.info()
        context: dict[str, Any] = {
            "workflow_id": info.workflow_id,
            "workflow_type": info.workflow_type,
            "activity": info.activity_type,
            "activity_id": info.activity_id,
            "attempt": info.attempt,
            "task_queue": info.task_queue,
        }
        if info.workflow_id and info.workflow_id.startswith("booking-"):
            context["booking_id"] = info.workflow_id.removeprefix("booking-")
        # each activity runs in its own asyncio task (its own context copy): no leaks
        structlog.contextvars.bind_contextvars(**context)
        return await super().execute_activity(input)


class LogContextInterceptor(Interceptor):
    """Binds workflow/activity identity to structlog's context for every activity."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _ActivityLogContext(next)


# ---- workers -----------------------------------------------------------------------------


# How production runs workflow code (EVENTLY_WORKER_SANDBOX, docs/architecture.md "Changing a
# workflow safely"):
# - "off" (the default): no sandbox at all. Even with our modules passed through, building a
#   sandbox for each new workflow run and running its activations inside it was about a third
#   of the worker's Python time in the flash-sale benchmark, where every booking is a new
#   run with one workflow task (docs/performance.md).
# - "passthrough": the sandbox's restrictions on every other module, our workflow modules
#   (``workflows.*``) passed through (imported once).
# What guards the determinism of the workflow code either way is the STRICT runner below:
# every workflow test and every replay of the recorded histories (tests/workflows/histories/)
# runs them fully sandboxed, re-imported per run; a change that breaks a recorded history
# fails CI.
PASSTHROUGH_RUNNER = SandboxedWorkflowRunner(
    restrictions=SandboxRestrictions.default.with_passthrough_modules("workflows")
)
UNSANDBOXED_RUNNER = UnsandboxedWorkflowRunner()
STRICT_RUNNER = SandboxedWorkflowRunner()


def production_runner(settings: Settings) -> WorkflowRunner:
    return PASSTHROUGH_RUNNER if settings.worker_sandbox == "passthrough" else UNSANDBOXED_RUNNER


def activity_name(fn: Callable[..., Any]) -> str | None:
    """The name an activity is registered under (``@activity.defn(name=...)``), else None."""
    from temporalio import activity

    definition = activity._Definition.from_callable(fn)
    return definition.name if definition is not None else None


def activity_methods(cls: type) -> dict[str, str]:
    """Activity name → method name, for every ``@activity.defn`` method of ``cls``."""
    found = {}
    for attr in dir(cls):
        member = getattr(cls, attr, None)
        name = activity_name(member) if callable(member) else None
        if name is not None:
            found[name] = attr
    return found


def build_workers(
    client: Client,
    res: Resources | None,
    queues: Sequence[str],
    settings: Settings,
    *,
    replace: Mapping[str, Callable[..., Any]] | None = None,
    strict_sandbox: bool = False,
    task_queues: Mapping[str, str] | None = None,
) -> list[Worker]:
    """One worker per task queue, with the workflows and activities of workers/registry.py.
    Tests build theirs here too: ``replace`` swaps activities by name for stand-ins (without
    resources, only the stand-ins are registered: the unit layer), and ``strict_sandbox``
    re-imports the workflow modules per run, so their determinism is checked. ``task_queues``
    polls a registry queue under another name (tests: a private queue per test)."""
    specs = queue_specs()
    replace = dict(replace or {})
    workers = []
    for queue in queues:
        spec = specs[queue]
        activities: list[Callable[..., Any]] = []
        for cls in spec.activity_classes:
            methods = activity_methods(cls)
            if res is None:  # the unit layer: only the stand-ins given run
                activities += [replace.pop(n) for n in methods if n in replace]
                continue
            instance = cls(res, client)
            for name, attr in methods.items():
                activities.append(replace.pop(name) if name in replace else getattr(instance, attr))
        if not spec.workflows and not activities:
            continue
        workers.append(
            Worker(
                client,
                task_queue=(task_queues or {}).get(queue, queue),
                workflows=spec.workflows,
                activities=activities,
                max_concurrent_activities=settings.worker_max_concurrent_activities,
                max_concurrent_workflow_tasks=settings.worker_max_concurrent_workflow_tasks,
                max_cached_workflows=settings.worker_max_cached_workflows,
                graceful_shutdown_timeout=timedelta(
                    seconds=settings.worker_graceful_shutdown_seconds
                ),
                interceptors=[LogContextInterceptor()],
                workflow_runner=STRICT_RUNNER if strict_sandbox else production_runner(settings),
                # every new booking's first (often only) workflow task comes from the normal
                # queue, later ones from the worker's sticky queue: with the SDK's default of
                # 1 normal poller in 5, most first tasks found no poller waiting and were
                # written to the task queue's table and read back (docs/performance.md)
                workflow_task_poller_behavior=PollerBehaviorSimpleMaximum(
                    settings.worker_workflow_task_pollers
                ),
                nonsticky_to_sticky_poll_ratio=settings.worker_nonsticky_poll_ratio,
            )
        )
    if replace:
        raise ValueError(f"no such activity on {list(queues)}: {sorted(replace)}")
    return workers


# ---- metrics -----------------------------------------------------------------------------


def _free_loopback_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class WorkerMetrics:
    """The SDK runtime (exporting on a private port) and our merged scrape endpoint."""

    runtime: Runtime
    sdk_url: str
    server: asyncio.Server

    async def aclose(self) -> None:
        self.server.close()
        await self.server.wait_closed()


def make_sdk_runtime(sdk_port: int) -> Runtime:
    return Runtime(
        telemetry=TelemetryConfig(
            metrics=PrometheusConfig(
                bind_address=f"127.0.0.1:{sdk_port}",
                counters_total_suffix=True,
                unit_suffix=True,
                durations_as_seconds=True,
            ),
            global_tags={"service": "evently-worker"},
        )
    )


async def scrape(sdk_url: str, http: httpx.AsyncClient) -> bytes:
    """Our registry + the SDK's exposition, concatenated (the families never overlap:
    ``evently_*``/``process_*``/``python_*`` here, ``temporal_*`` there)."""
    ours = generate_latest(REGISTRY)
    try:
        sdk = (await http.get(sdk_url)).content
    except httpx.HTTPError as exc:
        log.warning("SDK metrics unavailable: %s", exc)
        sdk = b""
    return ours + (b"\n" if not ours.endswith(b"\n") else b"") + sdk


async def serve_metrics(host: str, port: int, sdk_url: str) -> asyncio.Server:
    http = httpx.AsyncClient(timeout=2.0)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request_line = await asyncio.wait_for(reader.readline(), timeout=5)
            while (await asyncio.wait_for(reader.readline(), timeout=5)) not in (b"\r\n", b""):
                pass  # skip headers
            parts = request_line.decode("latin-1").split()
            if (
                len(parts) >= 2
                and parts[0] == "GET"
                and parts[1].split("?")[0] in ("/metrics", "/")
            ):
                body = await scrape(sdk_url, http)
                head = (
                    "HTTP/1.1 200 OK\r\n"
                    "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
                    f"Content-Length: {len(body)}\r\n"
                    "Connection: close\r\n\r\n"
                )
            else:
                body = b"not found\n"
                head = (
                    "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\n"
                    f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
                )
            writer.write(head.encode("latin-1") + body)
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    server = await asyncio.start_server(handle, host, port)
    return server


async def start_metrics(host: str, port: int) -> WorkerMetrics:
    sdk_port = _free_loopback_port()
    runtime = make_sdk_runtime(sdk_port)
    sdk_url = f"http://127.0.0.1:{sdk_port}/metrics"
    server = await serve_metrics(host, port, sdk_url)
    return WorkerMetrics(runtime=runtime, sdk_url=sdk_url, server=server)


# ---- mail (issue 16) ------------------------------------------------------------------------


def mail_queue_check(res: Resources, queues: Sequence[str]) -> list[str]:
    """No SMTP server configured: the mail queue is not served (notices wait in the outbox
    until a mail worker with EVENTLY_SMTP_URL runs)."""
    if common.MAIL in queues and not (res.settings.smtp_url or res.endpoints.smtp_url):
        log.warning("EVENTLY_SMTP_URL is not set: not serving the mail queue; mail waits")
        return [q for q in queues if q != common.MAIL]
    return list(queues)


async def start_mail_dispatcher(client: Client, settings: Settings) -> None:
    """The outbox dispatcher runs once per namespace; every mail worker makes sure it does."""
    from workflows.mail.client import ensure_outbox
    from workflows.mail.contract import OutboxInput

    await ensure_outbox(client, OutboxInput(wait_seconds=settings.mail_sweep_seconds))


# ---- run ---------------------------------------------------------------------------------


async def run_worker(
    settings: Settings, queues: Sequence[str], *, metrics_host: str = "0.0.0.0"
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    metrics: WorkerMetrics | None = None
    if settings.worker_metrics_port:
        metrics = await start_metrics(metrics_host, settings.worker_metrics_port)
        log.info("metrics on http://%s:%s/metrics", metrics_host, settings.worker_metrics_port)
    tracing = setup_tracing(settings, WORKER_SERVICE)  # None (nothing installed) when unset
    try:
        async with open_resources(settings) as res:
            if tracing is not None:
                tracing.instrument_resources(res)
            client = await connect_configured(
                settings,
                res.endpoints.temporal_address,
                runtime=metrics.runtime if metrics else None,
                # the client's tracing interceptor is also every worker's built on it
                tracer=tracing.tracer if tracing is not None else None,
            )
            queues = mail_queue_check(res, queues)
            workers = build_workers(client, res, queues, settings)
            if common.WEBHOOKS in queues:
                await _ensure_webhook_relay(client)
            if common.BOOKING in queues:
                await _ensure_schedules(client)
            if not workers:
                log.warning("nothing registered on %s", ", ".join(queues))
            log.info(
                "worker %s polling %s (pid %s)", client.identity, ", ".join(queues), os.getpid()
            )
            async with contextlib.AsyncExitStack() as stack:
                for w in workers:
                    await stack.enter_async_context(w)
                if common.MAIL in queues:
                    await start_mail_dispatcher(client, settings)
                await stop.wait()
                log.info(
                    "shutting down: polling stopped, finishing in-flight tasks (grace %ss)",
                    settings.worker_graceful_shutdown_seconds,
                )
                # all queues at once, so the grace period is not paid once per queue
                await asyncio.gather(*(w.shutdown() for w in workers))
    finally:
        if metrics is not None:
            await metrics.aclose()
        if tracing is not None:
            tracing.shutdown()  # export what is buffered
    log.info("worker stopped")


async def _ensure_webhook_relay(client: Client) -> None:
    """The webhooks pool keeps the namespace's outbox relay running (best effort here: with
    Temporal down the worker still starts; the next start or subscription change retries)."""
    from workflows.webhooks.client import ensure_relay

    try:
        await asyncio.wait_for(ensure_relay(client), timeout=10)
    except Exception as exc:
        log.warning("could not start the webhook relay: %r", exc)


async def _ensure_schedules(client: Client) -> None:
    """The periodic jobs' Temporal Schedules (workflows/maintenance/), created by the booking
    pool that runs them; best effort like the relay (the next start retries)."""
    from workflows.maintenance.client import ensure_schedules

    try:
        created = await asyncio.wait_for(ensure_schedules(client), timeout=10)
    except Exception as exc:
        log.warning("could not create the schedules: %r", exc)
        return
    if created:
        log.info("created schedules %s", ", ".join(created))


def serve(settings: Settings, queues: Sequence[str], *, metrics_host: str = "0.0.0.0") -> None:
    """Run the worker until a signal, then end the process with status 0.

    The exit skips interpreter finalization (``os._exit`` after flushing logs and stdio): the
    Temporal SDK's Rust core can still call into Python from its own threads while the
    interpreter tears down, which aborted (SIGABRT, "PyGILState_Release") a few exits in
    tests. All work is finished by then: the workers have shut down gracefully.
    """
    # uvloop (with uvicorn[standard], as the API runs): less CPU per workflow task and activity
    uvloop.run(run_worker(settings, queues, metrics_host=metrics_host))
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(0)
