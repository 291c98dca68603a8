"""The HTTP edge over a real server process (`evently api`: uvicorn over TCP), where body
limits, memory and timing are what a client really gets: huge and chunked bodies refused at
once without the process's memory growing, CORS preflights, the security headers on a sample
of every route in the OpenAPI document, a 304 on availability, RateLimit fields."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import psutil
import pytest

from evently.infra.resources import Resources
from evently.settings import Settings
from tests.support.factories import PASSWORD, make_account, make_event
from tests.support.http import SECURITY, SHOP, assert_secure, fields
from tests.support.servers import ApiURL, api_process

BODY = 20 * 1024 * 1024  # 20 MB, against the default 1 MiB limit
FIRST = 2 * 1024 * 1024  # what a client sends before it waits for the answer
PASSWORD_CHECKS = 3  # EVENTLY_LOGIN_RATE_LIMIT of this server: the profile's password quota


@pytest.fixture(scope="module")
def server(settings: Settings) -> Iterator[ApiURL]:
    with api_process(
        settings,
        EVENTLY_CORS_ORIGINS=SHOP,
        EVENTLY_LOGIN_RATE_LIMIT=str(PASSWORD_CHECKS),
        EVENTLY_LOG_LEVEL="ERROR",
    ) as url:
        yield url


@pytest.fixture
def api(server: ApiURL) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server, timeout=30) as client:
        yield client


# ---- body limits ---------------------------------------------------------------------------


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    seconds: float  # from the first byte sent to the whole answer received


def post_huge(url: str, path: str, size: int, *, chunked: bool) -> Answer:
    """POST ``size`` bytes: the head, then the first ``FIRST`` bytes of the body (more than the
    1 MiB limit, far less than ``size``), then nothing until the answer is in: an answer that
    arrives proves the server refused without waiting for the rest (a server that waited for
    the whole body never answers, and the socket's 30 s timeout fails the test; no wall-clock
    bound). The rest is sent afterwards, as fast as the socket takes it (the server discards
    it)."""
    where = urlsplit(url)
    assert where.hostname
    assert where.port
    sock = socket.create_connection((where.hostname, where.port), timeout=30)
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {size}"
    head = f"POST {path} HTTP/1.1\r\nHost: {where.netloc}\r\nContent-Type: application/json\r\n"

    answered = threading.Event()

    def pump() -> None:
        piece = b" " * 65536
        frame = b"%x\r\n" % len(piece) + piece + b"\r\n" if chunked else piece
        try:
            for i in range(size // len(piece)):
                if i == FIRST // len(piece):
                    answered.wait(60)  # the rest only once the answer is in
                sock.sendall(frame)
            if chunked:
                sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the server may stop listening: it has answered

    start = time.perf_counter()
    sock.sendall(f"{head}{framing}\r\n\r\n".encode())
    sender = threading.Thread(target=pump)
    sender.start()
    raw = b""
    while b"\r\n\r\n" not in raw:
        raw += sock.recv(65536)
    top, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = top.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}
    while len(body) < int(headers["content-length"]):
        body += sock.recv(65536)
    seconds = time.perf_counter() - start
    answered.set()
    sender.join(60)
    sock.close()
    return Answer(int(status_line.split()[1]), headers, body, seconds)


def rss(pid: int) -> int:
    return int(psutil.Process(pid).memory_info().rss)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_20_mb_body_is_refused_at_once_without_growing_the_process(
    server: ApiURL, api: httpx.Client, chunked: bool
) -> None:
    # warm: the first requests of a process pay for lazy imports and connections
    for _ in range(3):
        api.post("/api/v1/auth/login", json={"email": "a@example.com", "password": "x" * 12})
    before = rss(server.pid)
    answers = [post_huge(server, "/api/v1/auth/login", BODY, chunked=chunked) for _ in range(3)]
    time.sleep(0.2)  # the server discards what is still arriving
    grown = rss(server.pid) - before
    for answer in answers:
        assert answer.status == 413, answer.body[:300]
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert b'"code":"payload_too_large"' in answer.body
    print(
        f"\n{'chunked' if chunked else 'declared'} 20 MB: 413 in "
        f"{', '.join(f'{a.seconds * 1000:.1f}' for a in answers)} ms; RSS grew {grown / 1e6:.1f} MB"
    )
    # "at once": each answer came while 18 of the 20 MB were still unsent (post_huge waits for
    # it before sending more); the time it took is printed above, not asserted (issue 35: a
    # busy 2-core machine must not fail a wall-clock bound)
    # the limit is 1 MiB: the app never holds more than that (and 60 MB were sent in all)
    assert grown < BODY // 2, grown
    # the connection's neighbours are unaffected
    assert api.get("/healthz").status_code == 200


def test_the_webhook_limit_holds_over_the_wire(server: ApiURL) -> None:
    answer = post_huge(server, "/api/v1/payments/webhook", 128 * 1024, chunked=True)
    assert answer.status == 413
    assert b'"max_bytes":65536' in answer.body


# ---- CORS ----------------------------------------------------------------------------------


def test_a_preflight_is_allowed_for_a_listed_origin_only(api: httpx.Client) -> None:
    ask = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
    }
    allowed = api.options("/api/v1/auth/login", headers={**ask, "Origin": SHOP})
    assert allowed.status_code == 204
    assert allowed.headers["access-control-allow-origin"] == SHOP
    assert allowed.headers["access-control-allow-credentials"] == "true"
    assert "POST" in allowed.headers["access-control-allow-methods"]
    refused = api.options("/api/v1/auth/login", headers={**ask, "Origin": "https://evil.example"})
    assert refused.status_code == 405
    assert not [h for h in refused.headers if h.startswith("access-control-")]
    assert_secure(allowed)
    assert_secure(refused)


# ---- the headers on every route ------------------------------------------------------------


def _sample_path(path: str) -> str:
    """The path with a fresh id for each parameter (every path parameter here is an id)."""
    while "{" in path:
        start, end = path.index("{"), path.index("}")
        path = path[:start] + str(uuid.uuid4()) + path[end + 1 :]
    return path


async def test_every_route_answers_with_the_security_headers(
    api: httpx.Client, resources: Resources
) -> None:
    admin = await make_account(resources, "admin")
    spec: dict[str, Any] = api.get("/openapi.json").json()
    seen = 0
    for path, item in spec["paths"].items():
        for method in item:
            ok = item[method].get("responses", {}).get("200", {}).get("content", {})
            for headers in ({}, admin.headers):  # refused at the door, and let in
                # a live stream (text/event-stream) never ends: read its head, then hang up
                with api.stream(method.upper(), _sample_path(path), headers=headers) as r:
                    if "text/event-stream" not in ok or r.status_code != 200:
                        r.read()
                assert r.status_code < 500 or r.status_code == 503, (method, path, r.text)
                for name, value in SECURITY.items():
                    assert r.headers.get(name) == value, (method, path, r.status_code, name)
                seen += 1
    for extra in ("/openapi.json", "/docs", "/redoc", "/no/such/path", "/metrics"):
        r = api.get(extra)
        assert r.headers["x-content-type-options"] == "nosniff", extra
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"], extra
    assert seen >= 2 * 30  # the API has 30-odd operations


# ---- conditional GETs and rate-limit fields ------------------------------------------------


async def test_a_repeated_availability_read_is_a_304(
    api: httpx.Client, resources: Resources
) -> None:
    event = await make_event(resources, capacity=5)
    url = f"/api/v1/events/{event.id}/availability"
    first = api.get(url)
    assert first.status_code == 200
    again = api.get(url, headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == first.headers["etag"]
    assert_secure(again)


async def test_ratelimit_fields_before_and_at_the_limit(
    api: httpx.Client, resources: Resources
) -> None:
    user = await make_account(resources)
    body = {"full_name": "Ada", "current_password": PASSWORD}
    for left in range(PASSWORD_CHECKS - 1, -1, -1):
        r = api.put("/api/v1/users/profile", json=body, headers=user.headers)
        assert r.status_code == 200, r.text
        policy, limit = fields(r)
        assert policy == {"profile-password:user": {"q": PASSWORD_CHECKS, "w": 60}}
        assert limit["profile-password:user"]["r"] == left
    r = api.put("/api/v1/users/profile", json=body, headers=user.headers)
    assert r.status_code == 429
    policy, limit = fields(r)
    assert policy == {"profile-password:user": {"q": PASSWORD_CHECKS, "w": 60}}
    assert limit["profile-password:user"]["r"] == 0
    assert int(r.headers["retry-after"]) == limit["profile-password:user"]["t"]
