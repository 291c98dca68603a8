"""GET /metrics and the observability middleware, against the real app."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
import structlog
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from evently.infra import metrics
from evently.infra.embedded import free_port
from evently.infra.resources import Resources
from evently.ratelimit import RateLimiter
from evently.settings import Settings
from tests.support.factories import make_account


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _scrape(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


async def test_metrics_endpoint_serves_prometheus_text_with_all_families(
    client: httpx.AsyncClient,
) -> None:
    r = await client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    names = {f.name for f in text_string_to_metric_families(r.text)}
    # counters are exposed without the _total suffix in the family name
    assert {
        "evently_bookings",
        "evently_reserve_requests",
        "evently_reserve_seconds",
        "evently_availability_cache",
        "evently_rate_limited",
        "evently_http_requests",
        "evently_http_request_duration_seconds",
    } <= names


async def test_requests_are_counted_by_route_template_and_status(
    client: httpx.AsyncClient,
) -> None:
    labels = {"method": "GET", "route": "/healthz", "status": "200"}
    before = _sample("evently_http_requests_total", **labels)
    hist_before = _sample(
        "evently_http_request_duration_seconds_count", method="GET", route="/healthz"
    )
    for _ in range(3):
        assert (await client.get("/healthz")).status_code == 200
    assert _sample("evently_http_requests_total", **labels) == before + 3
    assert (
        _sample("evently_http_request_duration_seconds_count", method="GET", route="/healthz")
        == hist_before + 3
    )
    # the scrape shows the same number
    scraped = _scrape((await client.get("/metrics")).text)
    key = ("evently_http_requests_total", frozenset(labels.items()))
    assert scraped[key] == before + 3


async def test_unknown_paths_share_one_label_so_cardinality_stays_bounded(
    client: httpx.AsyncClient,
) -> None:
    labels = {"method": "GET", "route": "unmatched", "status": "404"}
    before = _sample("evently_http_requests_total", **labels)
    paths = [f"/api/v1/nope-{uuid.uuid4().hex}" for _ in range(5)]
    for p in paths:
        r = await client.get(p)
        assert r.status_code == 404
    assert _sample("evently_http_requests_total", **labels) == before + 5
    text = (await client.get("/metrics")).text
    assert not any(p in text for p in paths)

    # made-up methods share one label too
    other = {"method": "OTHER", "route": "/healthz", "status": "405"}
    before = _sample("evently_http_requests_total", **other)
    for verb in ("FOO", "BAR", "PROPFIND"):
        r = await client.request(verb, "/healthz")
        assert r.status_code == 405
    assert _sample("evently_http_requests_total", **other) == before + 3


async def test_request_id_is_echoed_or_generated(client: httpx.AsyncClient) -> None:
    r = await client.get("/healthz", headers={"X-Request-ID": "req-123.abc"})
    assert r.headers["x-request-id"] == "req-123.abc"

    generated = (await client.get("/healthz")).headers["x-request-id"]
    assert len(generated) == 32
    assert int(generated, 16) >= 0

    # hostile ids (too long, odd characters) are replaced, never reflected
    for bad in ["x" * 500, "a b", "<script>", "a;b"]:
        r = await client.get("/healthz", headers={"X-Request-ID": bad})
        assert r.status_code == 200
        assert r.headers["x-request-id"] != bad
        assert len(r.headers["x-request-id"]) == 32

    # errors carry it too (problem+json responses)
    r = await client.get(f"/api/v1/nope-{uuid.uuid4().hex}", headers={"X-Request-ID": "err-1"})
    assert r.status_code == 404
    assert r.headers["x-request-id"] == "err-1"


def test_metric_objects_follow_prometheus_conventions() -> None:
    # callers depend on these names and label sets
    metrics.BOOKINGS.labels(outcome="confirmed")
    metrics.RESERVE_REQUESTS.labels(outcome="held")
    metrics.AVAILABILITY_CACHE.labels(result="hit")
    metrics.RATE_LIMITED.labels(scope="reserve")
    assert metrics.HTTP_REQUESTS._labelnames == ("method", "route", "status")
    assert metrics.HTTP_DURATION._labelnames == ("method", "route")
    before = _sample("evently_reserve_seconds_count")
    metrics.RESERVE_SECONDS.observe(0.01)
    assert _sample("evently_reserve_seconds_count") == before + 1


async def test_routes_with_params_are_labelled_by_their_full_template(
    client: httpx.AsyncClient,
) -> None:
    labels = {"method": "GET", "route": "/api/v1/events/{event_id}", "status": "404"}
    before = _sample("evently_http_requests_total", **labels)
    for _ in range(2):
        r = await client.get(f"/api/v1/events/{uuid.uuid4()}")
        assert r.status_code == 404
    assert _sample("evently_http_requests_total", **labels) == before + 2


async def test_request_logs_carry_request_id_and_user_id(
    client: httpx.AsyncClient, resources: Resources, caplog: pytest.LogCaptureFixture
) -> None:
    staff = await make_account(resources, "support")
    caplog.set_level(logging.INFO, logger="evently.access")
    with structlog.testing.capture_logs(
        processors=[structlog.contextvars.merge_contextvars]
    ) as logs:
        r = await client.get(
            "/api/v1/support/bookings",
            params={"user_id": str(staff.id)},
            headers={**staff.headers, "X-Request-ID": "trace-42"},
        )
    assert r.status_code == 200
    lines = [e for e in logs if e.get("event") == "request"]
    assert len(lines) == 1, logs
    line = lines[0]
    assert line["request_id"] == "trace-42"
    assert line["user_id"] == str(staff.id)
    assert line["route"] == "/api/v1/support/bookings"
    assert line["status"] == 200
    assert line["duration_ms"] >= 0
    # nothing leaks into the next request's context
    assert structlog.contextvars.get_contextvars() == {}

    # ids in the path are logged too (a booking's workflow id with it)
    booking_id = uuid.uuid4()
    with structlog.testing.capture_logs(
        processors=[structlog.contextvars.merge_contextvars]
    ) as logs:
        r = await client.get(
            f"/api/v1/support/bookings/{booking_id}/history", headers=staff.headers
        )
    assert r.status_code == 404
    (line,) = [e for e in logs if e.get("event") == "request"]
    assert line["booking_id"] == str(booking_id)
    assert line["workflow_id"] == f"booking-{booking_id}"
    assert line["route"] == "/api/v1/support/bookings/{booking_id}/history"
    assert line["request_id"]


def test_api_with_several_worker_processes_aggregates_metrics(
    settings: Settings, tmp_path: Path
) -> None:
    """`evently api --workers 2`: GET /metrics sums what every process counted."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTLY_")}
    env.update(
        {
            "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
            "EVENTLY_ENV": "test",
            "EVENTLY_STATE_DIR": str(settings.state_path),
            "EVENTLY_DATABASE_URL": settings.database_url or "",
            "EVENTLY_REDIS_URL": settings.redis_url or "",
            "EVENTLY_TEMPORAL_ADDRESS": settings.temporal_address or "",
        }
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "api", "--port", str(port), "--workers", "2"],
        env=env,
    )
    try:
        deadline = time.monotonic() + 60
        base = f"http://127.0.0.1:{port}"
        while True:
            assert proc.poll() is None, "the API exited"
            assert time.monotonic() < deadline, "the API did not start"
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        for _ in range(30):  # a fresh connection each: the kernel spreads them over workers
            r = httpx.get(f"{base}/metrics", headers={"Connection": "close"}, timeout=5)
            assert r.status_code == 200
        text = httpx.get(f"{base}/metrics", timeout=5).text
        samples = _scrape(text)
        key = (
            "evently_http_requests_total",
            frozenset({"method": "GET", "route": "/metrics", "status": "200"}.items()),
        )
        # 30 finished scrapes, counted by whichever process served them, summed
        assert samples[key] == 30, samples.get(key)
        # ...and both processes did serve some (each writes its own counter file)
        assert len(list(tmp_path.glob("counter_*.db"))) >= 2, list(tmp_path.iterdir())
    finally:
        proc.terminate()
        proc.wait(20)


async def test_rate_limit_refusals_are_counted_by_scope(resources: Resources) -> None:
    limiter = RateLimiter(resources.redis)
    key = f"login:ip:test-{uuid.uuid4().hex}"
    before = _sample("evently_rate_limited_total", scope="login:ip")
    assert not (await limiter.hit(key, limit=2, window_seconds=60)).exceeded
    assert not (await limiter.hit(key, limit=2, window_seconds=60)).exceeded
    assert _sample("evently_rate_limited_total", scope="login:ip") == before
    assert (await limiter.hit(key, limit=2, window_seconds=60)).exceeded
    assert (await limiter.hit(key, limit=2, window_seconds=60)).exceeded
    assert _sample("evently_rate_limited_total", scope="login:ip") == before + 2
