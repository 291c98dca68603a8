"""Request observability for the API: one pure-ASGI middleware and ``GET /metrics``.

The middleware sits on the hot reserve path, so it does the minimum per request: read or
make a request id, bind it to the structlog context, time the request, and count it by
*route template* (``/api/v1/bookings/{booking_id}``, never the raw path, so label
cardinality stays bounded: unmatched paths share the label ``unmatched``).

``GET /metrics`` serves the Prometheus text format. With ``PROMETHEUS_MULTIPROC_DIR`` set
(``evently api --workers N`` sets it) the numbers of all uvicorn worker processes are
aggregated; otherwise the process registry is served.
"""

from __future__ import annotations

import hmac
import logging
import os
import re
import time
import uuid
from typing import Any
from wsgiref.simple_server import WSGIServer

import structlog
from fastapi import APIRouter, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
    multiprocess,
    start_http_server,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from evently.infra import metrics

REQUEST_ID_HEADER = "x-request-id"
_REQUEST_ID_OK = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
_UNMATCHED = "unmatched"
# routes whose traffic is scraping/probing, not product traffic: still counted, never logged
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_QUIET_ROUTES = frozenset({"/metrics", "/healthz", "/health/ready"})

_access_std = logging.getLogger("evently.access")  # ops tune its level like any stdlib logger
access_log = structlog.stdlib.get_logger("evently.access")


def request_id_from(headers: list[tuple[bytes, bytes]]) -> str:
    """The caller's X-Request-ID when it is sane (bounded, printable), else a fresh one."""
    for name, value in headers:
        if name == b"x-request-id":
            try:
                candidate = value.decode("ascii")
            except UnicodeDecodeError:
                break
            if _REQUEST_ID_OK.match(candidate):
                return candidate
            break
    return uuid.uuid4().hex


def route_template(scope: Scope) -> str:
    """The matched route's template with its router prefix: ``/api/v1/events/{event_id}``.

    ``scope["route"]`` is the route as declared in its router (no include prefix), so the
    prefix is recovered from the raw path: what precedes the route's own part. Path
    parameters are the raw matched strings at this point, so the substitution is exact.
    """
    route = scope.get("route")
    fmt = getattr(route, "path_format", None) or getattr(route, "path", None)
    if not isinstance(fmt, str):
        return _UNMATCHED
    path: str = scope.get("path", "")
    relative = fmt
    for name, value in (scope.get("path_params") or {}).items():
        relative = relative.replace(f"{{{name}}}", str(value))
    if relative and path.endswith(relative):
        return path[: len(path) - len(relative)] + fmt
    return fmt


# label children cached per (method, route[, status]): bounded by the routes and statuses,
# and cheaper than prometheus_client's locked label lookup on every request
_counter_children: dict[tuple[str, str, int], Any] = {}
_histogram_children: dict[tuple[str, str], Any] = {}


def _request_counter(method: str, route: str, status: int) -> Any:
    key = (method, route, status)
    child = _counter_children.get(key)
    if child is None:
        child = _counter_children[key] = metrics.HTTP_REQUESTS.labels(method, route, str(status))
    return child


def _duration_histogram(method: str, route: str) -> Any:
    key = (method, route)
    child = _histogram_children.get(key)
    if child is None:
        child = _histogram_children[key] = metrics.HTTP_DURATION.labels(method, route)
    return child


class ObservabilityMiddleware:
    """Request id + structlog context + Prometheus request metrics, in one cheap layer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        request_id = request_id_from(scope.get("headers") or [])
        header_value = request_id.encode("ascii")
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", header_value))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - start
            method = scope.get("method", "GET")
            if method not in _METHODS:
                method = "OTHER"  # arbitrary method tokens must not grow the label set
            route = route_template(scope)
            _request_counter(method, route, status).inc()
            _duration_histogram(method, route).observe(elapsed)
            if route not in _QUIET_ROUTES and _access_std.isEnabledFor(logging.INFO):
                _log_request(scope, method, route, status, elapsed)
            structlog.contextvars.clear_contextvars()


_ID_PARAMS = ("booking_id", "event_id", "entry_id")


def _log_request(scope: Scope, method: str, route: str, status: int, elapsed: float) -> None:
    # the structlog context (request_id, user_id, ...) is merged by the formatter; ids in the
    # path are added here (a booking's workflow id is derived from its booking id)
    ids: dict[str, str] = {}
    params = scope.get("path_params") or {}
    for name in _ID_PARAMS:
        value = params.get(name)
        if isinstance(value, str) and len(value) <= 64:
            ids[name] = value
    if "booking_id" in ids:
        ids["workflow_id"] = f"booking-{ids['booking_id']}"
    level = logging.ERROR if status >= 500 else logging.INFO
    access_log.log(
        level,
        "request",
        method=method,
        route=route,
        path=scope.get("path", ""),
        status=status,
        duration_ms=round(elapsed * 1000, 2),
        **ids,
    )


def metrics_registry() -> CollectorRegistry:
    """This process's registry, or every uvicorn process's (``PROMETHEUS_MULTIPROC_DIR``)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return registry
    return REGISTRY


def metrics_payload() -> bytes:
    return generate_latest(metrics_registry())


def serve_metrics_port(host: str, port: int) -> WSGIServer:
    """``EVENTLY_METRICS_PORT``: prometheus_client's own HTTP server (a daemon thread) on
    ``host:port``, outside the API's port and its middleware (issue 28)."""
    server, _thread = start_http_server(port, addr=host, registry=metrics_registry())
    return server


router = APIRouter(tags=["ops"])


@router.get(
    "/metrics",
    include_in_schema=False,
    response_class=Response,
    summary="Prometheus metrics (text exposition format)",
)
async def get_metrics(request: Request) -> Response:
    """Off (404) in production without ``EVENTLY_METRICS_TOKEN``, or where a metrics port of
    its own serves them; with a token, only ``Authorization: Bearer <token>`` may read."""
    settings = request.app.state.settings
    if not settings.metrics_route_enabled:
        return Response(status_code=404, content=b"Not Found", media_type="text/plain")
    token = settings.metrics_route_token
    if token is not None:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode(), token.encode()
        ):
            return Response(
                status_code=401,
                content=b"Unauthorized",
                media_type="text/plain",
                headers={"www-authenticate": 'Bearer realm="metrics"'},
            )
    return Response(content=metrics_payload(), media_type=CONTENT_TYPE_LATEST)
