"""Prometheus metric objects shared by the API and the workers.

Deliberately light: no application imports, so any module (API handlers, activities,
services) can ``from evently.infra import metrics`` and do e.g.
``metrics.BOOKINGS.labels(outcome="confirmed").inc()``.

Each process exposes its own registry: the API at ``GET /metrics`` (multi-process
aggregation when ``PROMETHEUS_MULTIPROC_DIR`` is set, e.g. ``uvicorn --workers N``) and
each worker on its metrics port (see workers/main.py).
"""

from __future__ import annotations

from typing import Final

from prometheus_client import Counter, Gauge, Histogram

# Label values in use (documented here so dashboards and callers agree).
BOOKING_OUTCOMES: Final = ("reserved", "confirmed", "expired", "cancelled", "rejected", "refunded")
RESERVE_OUTCOMES: Final = ("held", "sold_out", "rejected", "shed", "error", "rate_limited")
CACHE_RESULTS: Final = ("hit", "miss", "error")

# Latency buckets sized for a hot API path: 2.5 ms .. 10 s.
_LATENCY_BUCKETS: Final = (
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    10.0,
)

BOOKINGS: Final = Counter(
    "evently_bookings_total",
    "Booking lifecycle transitions, by outcome "
    "(reserved|confirmed|expired|cancelled|rejected|refunded).",
    ["outcome"],
)

RESERVE_REQUESTS: Final = Counter(
    "evently_reserve_requests_total",
    "Reserve requests answered by the API, by outcome "
    "(held|sold_out|rejected|shed|error|rate_limited).",
    ["outcome"],
)

RESERVE_SECONDS: Final = Histogram(
    "evently_reserve_seconds",
    "Time to answer a reserve request (hold placed or refused), in seconds.",
    buckets=_LATENCY_BUCKETS,
)

AVAILABILITY_CACHE: Final = Counter(
    "evently_availability_cache_total",
    "Availability cache lookups, by result (hit|miss|error).",
    ["result"],
)

RATE_LIMITED: Final = Counter(
    "evently_rate_limited_total",
    "Requests refused by a rate limiter, by limiter scope.",
    ["scope"],
)

HTTP_REQUESTS: Final = Counter(
    "evently_http_requests_total",
    "HTTP requests handled by the API, by method, route template and status code.",
    ["method", "route", "status"],
)

HTTP_DURATION: Final = Histogram(
    "evently_http_request_duration_seconds",
    "HTTP request latency in seconds, by method and route template.",
    ["method", "route"],
    buckets=_LATENCY_BUCKETS,
)

# tickets and mail (issue 16)
CHECKINS: Final = Counter(
    "evently_checkins_total",
    "Ticket scans answered at the door, by result "
    "(admitted|already_checked_in|ticket_revoked|wrong_event|invalid|conflict).",
    ["result"],
)

MAILS: Final = Counter(
    "evently_mails_total",
    "Outbox email deliveries, by outcome (sent|retry|failed|skipped).",
    ["outcome"],
)

# waiting room (issue 33: the on-sale dashboard), set by the admission tick on the worker; the
# gauges' event_id label is removed when the event's admission workflow ends
WAITING_ROOM_WAITING: Final = Gauge(
    "evently_waiting_room_waiting",
    "Buyers in an event's line not admitted yet, at its last admission tick.",
    ["event_id"],
)
WAITING_ROOM_RATE: Final = Gauge(
    "evently_waiting_room_rate",
    "An event's admission rate (admissions per second) chosen at its last admission tick.",
    ["event_id"],
)
WAITING_ROOM_ADMITTED: Final = Counter(
    "evently_waiting_room_admitted_total",
    "Buyers admitted from waiting rooms (all events).",
)

# live streams and rate limits without Redis (issue 28)
LIVE_STREAMS_REFUSED: Final = Counter(
    "evently_live_streams_refused_total",
    "SSE streams refused with 429 too_many_streams, by cap (client|user).",
    ["cap"],
)

RATE_LIMIT_FALLBACK: Final = Counter(
    "evently_rate_limit_fallback_total",
    "Rate-limit hits counted per process because Redis was unavailable, by limiter scope.",
    ["scope"],
)

__all__ = [
    "AVAILABILITY_CACHE",
    "BOOKINGS",
    "BOOKING_OUTCOMES",
    "CACHE_RESULTS",
    "CHECKINS",
    "HTTP_DURATION",
    "HTTP_REQUESTS",
    "LIVE_STREAMS_REFUSED",
    "MAILS",
    "RATE_LIMITED",
    "RATE_LIMIT_FALLBACK",
    "RESERVE_OUTCOMES",
    "RESERVE_REQUESTS",
    "RESERVE_SECONDS",
    "WAITING_ROOM_ADMITTED",
    "WAITING_ROOM_RATE",
    "WAITING_ROOM_WAITING",
]
